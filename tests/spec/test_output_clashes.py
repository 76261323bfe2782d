"""Output paths that could never be written are refused before anything is paid for."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

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
@pytest.mark.parametrize("rest", ["b.mp4", "x/b.mp4", "x/y/b.mp4"])
def test_paths_through_the_runners_own_files_are_refused(first: str, rest: str) -> None:
    """The manifest, lock, gallery and posters are the runner's: no video goes there, at
    any depth below them."""
    assert output_clashes([f"{first}/{rest}"]) == {
        0: f"runs through the runner's own {first!r} — choose another name"}


def test_reproduction_and_temporary_names_are_kept_for_the_runner() -> None:
    """`x.repro-2.mp4` is `runner reproduce`'s; `v.mp4.0123abcd.part` a writer's temp."""
    assert output_clashes(["a/x.repro-2.mp4", "v.mp4.0123abcd.part/y.mp4", "ok.mp4"]) == {
        0: "is named like a reproduction (.repro-N) — that name is kept for `runner "
           "reproduce`; rename it",
        1: "is named like one of the runner's temporary .part files — rename it",
    }


@pytest.mark.parametrize("output", ["x.repro-1.mp4", "a/b/x.repro-3.mp4", "A/X.repro-12.mp4"])
def test_a_reproduction_name_is_refused_at_any_depth(output: str) -> None:
    assert output_clashes([output]) == {
        0: "is named like a reproduction (.repro-N) — that name is kept for `runner "
           "reproduce`; rename it"}


def test_names_that_only_look_like_the_runners_are_fine() -> None:
    """`.repro-` without its digits and `.part` that is no temporary file's name are
    ordinary names: only the exact shapes are kept for the runner."""
    assert output_clashes(["a/x.repro-final.mp4", "a.part/x.mp4", "b/clip.part-2.mp4"]) == {}
    # A folder named like a reproduction holds ordinary videos: only the file name counts.
    assert output_clashes(["a.repro-1.d/x.mp4", "b.repro-2/c/y.mp4"]) == {}


def test_beside_a_clash_the_other_outputs_are_walked_and_stay_fine() -> None:
    """One name that is both a file and a folder makes every output's folders be walked;
    the outputs that run through no file are still fine, at any depth."""
    clashes = output_clashes(["X.mp4", "x.mp4/y.mp4", "k/z.mp4", "k/l/m/n.mp4", "top.mp4"])
    assert set(clashes) == {0, 1}


def test_a_name_of_the_runners_own_does_not_hide_a_later_file_folder_clash() -> None:
    """A reserved name is said first for its own output; the outputs after it are still
    checked against each other's files and folders."""
    clashes = output_clashes(["manifest.jsonl/a.mp4", "x.mp4", "x.mp4/y.mp4"])
    assert clashes == {
        0: "runs through the runner's own 'manifest.jsonl' — choose another name",
        1: "is also a folder of 'x.mp4/y.mp4' — rename one of them",
        2: "runs through 'x.mp4', a file of 'x.mp4' (a video or its sidecar) — rename one "
           "of them",
    }


def test_every_video_through_a_file_is_refused_not_only_the_first() -> None:
    """Two videos inside a folder that is another video's path are both named (the folder
    is looked up once and the answer reused)."""
    assert output_clashes(["A.mp4", "a.mp4/x.mp4", "a.mp4/y.mp4"]) == {
        0: "is also a folder of 'a.mp4/x.mp4' — rename one of them",
        1: "runs through 'a.mp4', a file of 'A.mp4' (a video or its sidecar) — rename one "
           "of them",
        2: "runs through 'a.mp4', a file of 'A.mp4' (a video or its sidecar) — rename one "
           "of them",
    }


@pytest.mark.parametrize(
    ("name", "kept"),
    [
        ("x.repro-3.mp4", True),
        ("a.repro-1.repro-12.mp4", True),
        ("a.repro-x.repro-3.mp4", True),
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


@pytest.mark.parametrize(
    "output",
    ["seed-1.mp4", "a/b/c.mp4", "v1.2/clip.mp4", "v1.2/take.3/clip", "a.b/c.d/e", "d.e.f.mp4",
     "a/b.", "a/.mp4", ".x/y.mp4", "noext", "x/y.z/w.mp4", "k/a.repro-1.mp4", "a/clip.v",
     # .mp4 names are sliced, the others split at their last dot: both ways, every edge.
     ".mp4", "x.mp4", "a.b", "x.tar.gz", "k/a.b.c", "a.mp4.b", "mp4", "a/x.MP4"],
)
def test_a_sidecar_is_named_as_pathlib_names_the_video_with_suffix_json(output: str) -> None:
    """The sidecar's name is `PurePosixPath(output).with_suffix(".json")` for every shape
    of name: dots in folders, several or a trailing one, none, a leading one."""
    video, sidecar = files_of(output)
    assert video == output
    assert sidecar == str(PurePosixPath(output).with_suffix(".json"))


@pytest.mark.parametrize("root", ["outputs/_sandbox", "outputs/_sandbox/x", "_sandbox"])
def test_paid_results_never_go_inside_a_sandbox_tree(root: str) -> None:
    """An --output-dir in or under `_sandbox/` is refused for real runs, with the fix."""
    with pytest.raises(UsageError) as info:
        spec_folder(Path(root), "s", sandbox=False)
    assert str(info.value).endswith(
        "which holds emulator results only — give the root of the output tree (e.g. outputs)")
    assert spec_folder(Path(root), "s", sandbox=True) == Path(root) / "_sandbox" / "s"


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("a/b/seed-1.mp4", None),
        ("Café 1.mp4", None),
        ("", "is empty — give a file name ending in .mp4"),
        ("   ", "is empty — give a file name ending in .mp4"),
        ("a/" * 510 + "b.mp4", "is longer than 1024 characters — shorten the template"),
        ("a/" * 509 + "bc.mp4", None),  # 1024 characters: the longest allowed
        ("a\x07.mp4", "contains control characters — remove them"),
        ("a\\b.mp4", "contains a backslash — use / between folders"),
        ("/etc/x.mp4", "is absolute — it must stay inside the spec's output folder (write a "
                       "relative path)"),
        ("C:x.mp4", "is absolute — it must stay inside the spec's output folder (write a "
                    "relative path)"),
        ("a/../../x.mp4", "leaves the output folder ('..') — write a path inside it"),
        ("a//x.mp4", "has an empty or '.' folder name — remove the extra '/'"),
        ("./x.mp4", "has an empty or '.' folder name — remove the extra '/'"),
        (".hidden/x.mp4", "has a name starting with '.' (hidden files are reserved) — rename it"),
        ("a/" + "n" * 197 + ".mp4", "has a name longer than 200 characters — shorten it"),
        ("a/" + "n" * 196 + ".mp4", None),
        ("a/x.mov", "does not end in .mp4 — add the extension"),
        ("c:x.mp4", "is absolute — it must stay inside the spec's output folder (write a "
                    "relative path)"),
        # Past the one-pass check for plain paths (an accented name), the limits' edges:
        ("é/" + "a/" * 508 + "bc.mp4", None),  # 1024 characters
        ("é/" + "n" * 196 + ".mp4", None),  # a 200-character name
    ],
)
def test_each_unwritable_output_path_is_refused_with_its_reason(
    path: str, problem: str | None
) -> None:
    """Every way a rendered output path can be unwritable or escape has its own words."""
    from runner.expand import _output_problem  # the rule the spec layer applies per path

    assert _output_problem(path) == problem
