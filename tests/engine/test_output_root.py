"""Sandbox runs keep their own output tree, so they never replace a paid video."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from runner.cli import cli
from runner.engine import refuse_escaping_outputs
from runner.errors import UsageError
from runner.layout import spec_folder
from runner.request import Request
from runner.sandbox import RunningSandbox, SandboxConfig, start_in_thread

from .conftest import make_image, make_request


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    """A real sandbox with tiny latency."""
    with start_in_thread(SandboxConfig(latency=0.05, jitter=0.0, scale=8, fps=4)) as running:
        yield running


def test_spec_folders_keep_sandbox_results_apart() -> None:
    """A spec's folder is <root>/<name>/, or <root>/_sandbox/<name>/ for the emulator,
    whatever the root; a paid spec is refused inside a sandbox tree."""
    assert spec_folder(Path("outputs"), "d", sandbox=False) == Path("outputs/d")
    assert spec_folder(Path("outputs"), "d", sandbox=True) == Path("outputs/_sandbox/d")
    assert spec_folder(Path("elsewhere"), "d", sandbox=True) == Path("elsewhere/_sandbox/d")
    with pytest.raises(UsageError, match="sandbox tree"):
        spec_folder(Path("outputs/_sandbox"), "d", sandbox=False)


def test_sandbox_run_writes_beside_not_over_real_outputs(
    sandbox: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A --sandbox run lands in outputs/_sandbox/<name>/ and leaves outputs/<name>/ alone."""
    make_image(tmp_path / "images")
    (tmp_path / "dragon.yaml").write_text(
        "version: 1\nname: dragon\nprovider: aimlapi\nmodel: runway/gen4_turbo\n"
        "params:\n  image_url: images/mountain.png\n  prompt: a dragon\n  seed: 1\n"
        'output: "seed-1.mp4"\n',
        encoding="utf-8",
    )
    real = tmp_path / "outputs" / "dragon"
    real.mkdir(parents=True)
    (real / "seed-1.mp4").write_bytes(b"a paid video")
    monkeypatch.chdir(tmp_path)
    fast = ["--base-url", sandbox.base_url, "--poll-min", "0.02", "--poll-max", "0.1"]

    result = CliRunner().invoke(cli, ["run", "dragon.yaml", "--sandbox", *fast])

    assert result.exit_code == 0, result.output
    assert (tmp_path / "outputs/_sandbox/dragon/seed-1.mp4").stat().st_size > 0
    assert (real / "seed-1.mp4").read_bytes() == b"a paid video"
    assert sorted(os.listdir(real)) == ["seed-1.mp4"]
    plan = CliRunner().invoke(cli, ["plan", "--sandbox", "dragon.yaml"])
    assert plan.exit_code == 0, plan.output
    assert plan.stdout.startswith("done")
    real_plan = CliRunner().invoke(cli, ["plan", "dragon.yaml"])
    assert real_plan.stdout.startswith("new"), real_plan.output
    assert "orphaned" not in real_plan.stdout

    status = CliRunner().invoke(cli, ["status", "--sandbox", "--json", "dragon.yaml"])
    request_id = json.loads(status.stdout)["requests"][0]["id"]
    repro = CliRunner().invoke(
        cli, ["reproduce", request_id[:8], "--sandbox", "--base-url", sandbox.base_url]
    )
    assert repro.exit_code == 0, repro.output  # ids are found under outputs/_sandbox/ too
    assert (tmp_path / "outputs/_sandbox/dragon/seed-1.repro-1.mp4").is_file()


def _requests_for(tmp_path: Path, *outputs: str) -> list[Request]:
    image = make_image(tmp_path / "images")
    return [dataclasses.replace(make_request(image, n), output=o) for n, o in enumerate(outputs)]


def test_a_link_out_of_the_tree_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    """A folder or a file link inside the spec's folder that leads outside it is refused,
    naming the output, the link's target and what to do."""
    folder, outside = tmp_path / "out" / "s", tmp_path / "elsewhere"
    folder.mkdir(parents=True)
    outside.mkdir()
    (folder / "cache").symlink_to(outside)
    (folder / "v.mp4").symlink_to(outside / "v.mp4")
    for output in ("cache/a.mp4", "v.mp4"):
        with pytest.raises(UsageError) as info:
            refuse_escaping_outputs(folder, _requests_for(tmp_path, "ok.mp4", output), "s.yaml")
        assert str(info.value).startswith(
            f"s.yaml: output {output!r} would be written outside {folder} through a symbolic "
            "link (")
        assert str(info.value).endswith(") — remove the link or choose another --output-dir")


def test_links_that_stay_inside_and_a_linked_root_are_fine(tmp_path: Path) -> None:
    """The spec's folder may itself be a link (outputs on another disk), links below it
    may point within it, and a reproduction may write one folder up."""
    disk = tmp_path / "disk" / "s"
    (disk / "real").mkdir(parents=True)
    (tmp_path / "out").mkdir()
    folder = tmp_path / "out" / "s"
    folder.symlink_to(disk)
    (folder / "alias").symlink_to(disk / "real")
    (folder / "l.mp4").symlink_to(disk / "real" / "x.mp4")
    requests = _requests_for(tmp_path, "alias/a.mp4", "real/b.mp4", "l.mp4",
                             ".reproductions/../c.mp4")
    refuse_escaping_outputs(folder, requests, "s.yaml")


def test_a_link_back_inside_from_a_folder_outside_is_still_refused(tmp_path: Path) -> None:
    """A video link pointing into the tree does not excuse its folder leading out: the
    sidecar beside it would be written outside."""
    folder, outside = tmp_path / "s", tmp_path / "elsewhere"
    (folder / "real").mkdir(parents=True)
    outside.mkdir()
    (folder / "cache").symlink_to(outside)
    (outside / "v.mp4").symlink_to(folder / "real" / "v.mp4")
    with pytest.raises(UsageError, match="would be written outside"):
        refuse_escaping_outputs(folder, _requests_for(tmp_path, "cache/v.mp4"), "s.yaml")


def test_a_folder_or_a_file_in_the_way_is_refused_with_what_blocks(tmp_path: Path) -> None:
    """A folder where the video goes, or a file where a folder of its path goes, can never
    be written over: refused before paying, saying which."""
    folder = tmp_path / "s"
    (folder / "a.mp4").mkdir(parents=True)
    (folder / "b").write_bytes(b"")
    with pytest.raises(UsageError, match=r"cannot be written: .*a\.mp4 is a folder — move it"):
        refuse_escaping_outputs(folder, _requests_for(tmp_path, "a.mp4"), "s.yaml")
    with pytest.raises(UsageError, match=r"b is a file, not a folder — move it"):
        refuse_escaping_outputs(folder, _requests_for(tmp_path, "b/c/d.mp4"), "s.yaml")
    refuse_escaping_outputs(folder, _requests_for(tmp_path, "new/deep/e.mp4"), "s.yaml")
    refuse_escaping_outputs(tmp_path / "absent", _requests_for(tmp_path, "x.mp4"), "s.yaml")
