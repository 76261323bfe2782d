"""What the gallery remembers between builds: new/changed badges, the chosen layout; the CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from runner.cli import cli
from runner.gallery import build_gallery, gallery_for
from runner.gallery_history import HISTORY_FILE
from runner.manifest import Manifest
from runner.sandbox import RunningSandbox, SandboxConfig, start_in_thread

from .conftest import make_request, record_done, record_failed, write_png
from .htmltree import parse


def badges(folder: Path) -> dict[str, str]:
    """Return figure id -> badge text for every badged figure of the folder's page."""
    page = parse((folder / "index.html").read_text(encoding="utf-8"))
    return {
        f.attrs["id"] or "": f.find_all("span", "badge")[0].text()
        for f in page.find_all("figure") if f.find_all("span", "badge")
    }


def test_the_first_build_badges_nothing_and_a_rebuild_keeps_the_badges(tmp_path: Path) -> None:
    """Nothing is new on a first build; videos added later are; rebuilding keeps that."""
    folder = tmp_path / "s"
    first, later = make_request("s", {"seed": 1}), make_request("s", {"seed": 2})
    with Manifest.open(folder) as manifest:
        record_done(manifest, first, folder)
    gallery_for(folder)
    assert badges(folder) == {} and (folder / HISTORY_FILE).is_file()
    with Manifest.open(folder) as manifest:
        record_done(manifest, later, folder)
    build = build_gallery(folder)
    assert badges(folder) == {f"r-{later.id}": "new"} and build.badges == {"new": 1}
    gallery_for(folder)  # `runner gallery` again, or a run with nothing to do
    assert badges(folder) == {f"r-{later.id}": "new"}


def test_new_bytes_for_the_same_request_are_changed_and_a_new_request_is_new(
    tmp_path: Path,
) -> None:
    """A re-made video (other sha256) is `changed`; an edited spec's request at a path is `new`."""
    folder = tmp_path / "s"
    kept, remade = make_request("s", {"seed": 1}), make_request("s", {"seed": 2})
    with Manifest.open(folder) as manifest:
        record_done(manifest, kept, folder)
        record_done(manifest, remade, folder)
    gallery_for(folder)
    edited = make_request("s", {"seed": 1}, prompt="an edited prompt")  # same output path
    assert edited.output == kept.output and edited.id != kept.id
    with Manifest.open(folder) as manifest:
        record_done(manifest, remade, folder, hue=120)  # --force: same request, new bytes
        record_done(manifest, edited, folder, hue=200)
    gallery_for(folder)
    assert badges(folder) == {f"r-{remade.id}": "changed", f"r-{edited.id}": "new"}


def test_a_retried_failure_that_now_has_its_video_is_changed(tmp_path: Path) -> None:
    """A request that failed before and has its video now is badged `changed`."""
    folder = tmp_path / "s"
    request = make_request("s", {"seed": 1})
    with Manifest.open(folder) as manifest:
        record_failed(manifest, request, "generation failed")
    gallery_for(folder)
    with Manifest.open(folder) as manifest:
        record_done(manifest, request, folder)
    gallery_for(folder)
    assert badges(folder) == {f"r-{request.id}": "changed"}


def test_removing_requests_keeps_the_badges_of_the_last_change(tmp_path: Path) -> None:
    """A build that only loses items (a prune) compares with the same view as before."""
    folder = tmp_path / "s"
    old, gone, added = (make_request("s", {"seed": s}) for s in (1, 2, 3))
    with Manifest.open(folder) as manifest:
        record_done(manifest, old, folder)
        record_done(manifest, gone, folder)
    gallery_for(folder)
    with Manifest.open(folder) as manifest:
        record_done(manifest, added, folder)
    gallery_for(folder)
    with Manifest.open(folder) as manifest:
        manifest.record_orphan_removed(gone.id, gone.output)
    gallery_for(folder)
    assert badges(folder) == {f"r-{added.id}": "new"}


def test_an_unreadable_history_is_a_first_build(tmp_path: Path) -> None:
    """A damaged .gallery.json is replaced, never fatal: the build just badges nothing."""
    folder = tmp_path / "s"
    with Manifest.open(folder) as manifest:
        record_done(manifest, make_request("s", {"seed": 1}), folder)
    folder.mkdir(exist_ok=True)
    (folder / HISTORY_FILE).write_text("{not json", encoding="utf-8")
    gallery_for(folder)
    assert badges(folder) == {}
    assert json.loads((folder / HISTORY_FILE).read_text(encoding="utf-8"))["v"] == 1


def test_the_chosen_layout_is_remembered_until_auto(tmp_path: Path) -> None:
    """rows/cols given once are kept by later plain rebuilds (a run's end); `auto` forgets."""
    folder = tmp_path / "s"
    with Manifest.open(folder) as manifest:
        for seed in (1, 2, 3):
            for ratio in ("16:9", "9:16"):
                record_done(manifest, make_request("s", {"seed": seed, "ratio": ratio}), folder)

    def row_heads() -> list[str]:
        page = parse((folder / "index.html").read_text(encoding="utf-8"))
        return ["".join(h.texts).strip() for h in page.find_all("div", "rhead")]

    gallery_for(folder)
    assert row_heads() == ["16:9", "9:16"]  # default: seeds across, ratios down
    gallery_for(folder, rows="seed", cols="ratio")
    assert row_heads() == ["1", "2", "3"]
    gallery_for(folder)
    assert row_heads() == ["1", "2", "3"]
    build = build_gallery(folder, rows="auto", cols="auto")
    assert row_heads() == ["16:9", "9:16"] and (build.rows, build.cols) == (None, None)


def test_a_remembered_axis_the_spec_dropped_falls_back_to_the_default(tmp_path: Path) -> None:
    """When the remembered row axis no longer varies, the page (and its switch) use auto."""
    folder = tmp_path / "s"
    with Manifest.open(folder) as manifest:
        for seed in (1, 2):
            for ratio in ("16:9", "9:16"):
                record_done(manifest, make_request("s", {"seed": seed, "ratio": ratio}), folder)
    gallery_for(folder, rows="ratio", cols="seed")
    with Manifest.open(folder) as manifest:  # the spec now makes 16:9 only
        for seed in (1, 2):
            manifest.record_orphan_removed(make_request("s", {"seed": seed, "ratio": "9:16"}).id,
                                           None)
    page_text = gallery_for(folder).read_text(encoding="utf-8")
    page = parse(page_text)
    (rows_select,) = [s for s in page.find_all("select") if s.attrs.get("id") == "rows"]
    selected = [o.attrs["value"] for o in rows_select.find_all("option") if "selected" in o.attrs]
    assert selected == ["auto"] and '"layout":{"rows":null,"cols":"seed"}' in page_text


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    """A real sandbox on loopback that answers at once."""
    with start_in_thread(SandboxConfig(latency=0.0, jitter=0.0, scale=8, fps=4)) as running:
        yield running


def test_runner_gallery_lays_out_again_and_refuses_a_typo(
    sandbox: RunningSandbox, in_tmp: Path
) -> None:
    """`runner gallery` rebuilds with --rows/--cols and prints what it wrote; a typo exits 2."""
    write_png(in_tmp / "images" / "mountain.png")
    spec = in_tmp / "pair.yaml"
    spec.write_text(
        "version: 1\nname: pair\nprovider: aimlapi\nmodel: runway/gen4_turbo\n"
        'matrix:\n  seed: [1, 2]\n  ratio: ["16:9", "9:16"]\n'
        "params:\n  image_url: images/mountain.png\n  prompt: a slow push\n  duration: 5\n",
        encoding="utf-8",
    )
    ran = CliRunner().invoke(cli, ["run", "--sandbox", "--base-url", sandbox.base_url,
                                   "--poll-min", "0.02", "--poll-max", "0.1", str(spec)])
    assert ran.exit_code == 0, ran.output
    done = CliRunner().invoke(
        cli, ["gallery", "--sandbox", str(spec), "--rows", "seed", "--cols", "ratio"])
    assert done.exit_code == 0, done.output
    page = Path("outputs/_sandbox/pair/index.html")
    assert done.stdout == f"wrote {page} (4 done; rows seed, columns ratio)\n"
    assert "".join(parse(page.read_text()).find_all("div", "rhead")[0].texts).strip() == "1"
    typo = CliRunner().invoke(cli, ["gallery", "--sandbox", str(spec), "--cols", "ration"])
    assert typo.exit_code == 2
    assert typo.stderr.splitlines() == [
        "error: --cols 'ration': no such axis (did you mean 'ratio'?) — the axes are: "
        "ratio, seed, or 'auto' for the default layout"]
