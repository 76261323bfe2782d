"""Output paths that could never be written are refused before anything is paid for."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.errors import UsageError
from runner.layout import (
    files_of,
    is_reproduction_name,
    manifest_of,
    output_clashes,
    poster_of,
    sidecar_of,
    spec_folder,
)


def test_distinct_outputs_in_shared_folders_do_not_clash() -> None:
    """Videos side by side and in common folders are fine."""
    assert output_clashes(["a/b/1.mp4", "a/b/2.mp4", "a/c.mp4", "d.mp4"]) == {}


def test_a_video_that_is_another_videos_folder_clashes_caselessly() -> None:
    """`X.mp4` is the folder of `x.mp4/y.mp4` on a caseless disk: both are named."""
    assert output_clashes(["X.mp4", "x.mp4/y.mp4"]) == {
        0: "is also a folder of 'x.mp4/y.mp4' — rename one of them",
        1: "runs through 'x.mp4', a file of 'X.mp4' (a video or its sidecar) — rename one "
           "of them",
    }


def test_a_folder_named_like_a_sidecar_clashes_at_any_depth() -> None:
    """`a.mp4`'s sidecar `a.json` cannot be the folder of `a.json/b/c.mp4`."""
    assert output_clashes(["k/a.mp4", "k/a.json/b/c.mp4"]) == {
        0: "has a sidecar that is also a folder of 'k/a.json/b/c.mp4' — rename one of them",
        1: "runs through 'k/a.json', a file of 'k/a.mp4' (a video or its sidecar) — rename "
           "one of them",
    }


def test_unicode_forms_of_one_name_clash() -> None:
    """A composed and a decomposed é are the same name to macOS."""
    composed, decomposed = "caf\u00e9.mp4", "cafe\u0301.mp4/x.mp4"
    assert set(output_clashes([composed, decomposed])) == {0, 1}


@pytest.mark.parametrize("first", ["manifest.jsonl", "Manifest.JSONL", ".posters", "index.html"])
def test_paths_through_the_runners_own_files_are_refused(first: str) -> None:
    """The manifest, lock, gallery and posters are the runner's: no video goes there."""
    assert output_clashes([f"{first}/b.mp4"]) == {
        0: f"runs through the runner's own {first!r} — choose another name"}


def test_reproduction_and_temporary_names_are_kept_for_the_runner() -> None:
    """`x.repro-2.mp4` is `runner reproduce`'s; `v.mp4.0123abcd.part` a writer's temp."""
    assert output_clashes(["a/x.repro-2.mp4", "v.mp4.0123abcd.part/y.mp4", "ok.mp4"]) == {
        0: "is named like a reproduction (.repro-N) — that name is kept for `runner "
           "reproduce`; rename it",
        1: "is named like one of the runner's temporary .part files — rename it",
    }


@pytest.mark.parametrize(
    ("name", "kept"),
    [
        ("x.repro-3.mp4", True),
        ("a.repro-1.repro-12.mp4", True),
        ("x.repro-.mp4", False),
        (".repro-3.mp4", False),
        ("x.repro-3a.mp4", False),
        ("x.mp4", False),
        ("x.repro-3", True),
    ],
)
def test_what_counts_as_a_reproduction_name(name: str, kept: bool) -> None:
    """A stem, then `.repro-` and digits (the last such infix counts)."""
    assert is_reproduction_name(name) is kept


def test_each_request_writes_its_video_and_its_sidecar() -> None:
    """A request's files: the video and the `.json` beside it."""
    assert files_of("a/seed-1.mp4") == ("a/seed-1.mp4", "a/seed-1.json")
    assert sidecar_of(Path("a/seed-1.mp4")) == Path("a/seed-1.json")
    with pytest.raises(ValueError, match="a video named .json would collide"):
        sidecar_of(Path("a/x.json"))
    assert poster_of(Path("o"), "r1") == Path("o/.posters/r1.jpg")
    assert manifest_of(Path("o")) == Path("o/manifest.jsonl")


@pytest.mark.parametrize("root", ["outputs/_sandbox", "outputs/_sandbox/x", "_sandbox"])
def test_paid_results_never_go_inside_a_sandbox_tree(root: str) -> None:
    """An --output-dir in or under `_sandbox/` is refused for real runs, with the fix."""
    with pytest.raises(UsageError) as info:
        spec_folder(Path(root), "s", sandbox=False)
    assert str(info.value).endswith(
        "which holds emulator results only — give the root of the output tree (e.g. outputs)")
    assert spec_folder(Path(root), "s", sandbox=True) == Path(root) / "_sandbox" / "s"
