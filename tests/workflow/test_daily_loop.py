"""The daily loop through the real CLI on a real sandbox: run → gallery + reports → edit →
plan → prune."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from runner.cli import cli
from runner.manifest import read_state
from runner.sandbox import RunningSandbox

from .conftest import write_png
from .htmltree import parse

SPEC = """\
version: 1
name: sweep
provider: sandbox
model: runway/gen4_turbo
matrix:
  seed: {seeds}
  ratio: ["16:9", "9:16"]
params:
  image_url: images/mountain.png
  prompt: '{prompt}'
  duration: 5
output: "{{{{ ratio | replace(':', 'x') }}}}/seed-{{{{ seed }}}}.mp4"
"""
PROMPT = 'A slow push toward the <mountain> & its "peak"'


def write_spec(seeds: str = "[1, 2]", prompt: str = PROMPT) -> Path:
    """Write specs/sweep.yaml (and its image) in the working folder."""
    path = Path("specs/sweep.yaml")
    write_png(Path("specs/images/mountain.png"))
    path.write_text(SPEC.format(seeds=seeds, prompt=prompt), encoding="utf-8")
    return path


def runner(*args: str) -> Result:
    """Invoke the CLI in-process."""
    return CliRunner().invoke(cli, list(args))


def run(sandbox: RunningSandbox, *extra: str) -> Result:
    """`runner run specs/sweep.yaml` against the test's sandbox, polling briskly."""
    return runner("run", "specs/sweep.yaml", "--base-url", sandbox.base_url,
                  "--poll-min", "0.01", "--poll-max", "0.1", *extra)


def test_run_writes_gallery_and_both_reports(in_tmp: Path, sandbox: RunningSandbox) -> None:
    """A run leaves a 2×2 gallery and JSON + JUnit reports whose counts agree."""
    write_spec()
    result = run(sandbox, "--report", "ci/run.json", "--report", "ci/junit.xml")
    assert result.exit_code == 0, result.output
    page = parse(Path("outputs/_sandbox/sweep/index.html").read_text(encoding="utf-8"))
    (section,) = page.find_all("section", "sect")
    assert len(section.find_all("img", "poster")) == 4
    assert PROMPT in page.find_all("p", "prompt")[0].text()
    report = json.loads(Path("ci/run.json").read_text(encoding="utf-8"))
    assert report["counts"]["done"] == report["total"] == 4 and report["ok"] is True
    assert all(r["this_run"] and Path(r["path"]).is_file() for r in report["requests"])
    junit = ET.parse("ci/junit.xml").getroot()
    assert (junit.get("tests"), junit.get("failures"), junit.get("errors")) == ("4", "0", "0")
    # The next night: nothing to do, no API call, and the report says so.
    before = sandbox.stats()["submissions"]
    again = run(sandbox, "--report", "ci/run.json")
    assert again.exit_code == 0 and sandbox.stats()["submissions"] == before
    assert not any(r["this_run"] for r in json.loads(Path("ci/run.json").read_text())["requests"])


def test_failures_reach_report_junit_gallery_and_exit_code(
    in_tmp: Path, sandbox: RunningSandbox
) -> None:
    """A failed generation: exit 1, counted in JSON, a <failure> in JUnit, a cell with why."""
    sandbox.configure(faults={"failed_generation": {"first": 1, "rate": 0.0}})
    write_spec()
    result = run(sandbox, "--report", "run.json", "--report", "junit.xml")
    assert result.exit_code == 1, result.output
    report = json.loads(Path("run.json").read_text(encoding="utf-8"))
    assert report["counts"]["failed"] == 1 and report["counts"]["done"] == 3
    (failed,) = [r for r in report["requests"] if r["status"] == "failed"]
    failures = ET.parse("junit.xml").getroot().findall(".//failure")
    assert [f.get("message") for f in failures] == [failed["reason"]]
    page = parse(Path("outputs/_sandbox/sweep/index.html").read_text(encoding="utf-8"))
    (cell,) = page.find_all("figure", "st-failed")
    assert failed["reason"] in cell.text()


def test_dropped_seed_is_orphaned_then_pruned_only_with_yes(
    in_tmp: Path, sandbox: RunningSandbox
) -> None:
    """Dropping a seed orphans its requests; prune lists their files, --yes removes them."""
    write_spec("[1, 2]")
    assert run(sandbox).exit_code == 0
    assert runner("reproduce", "outputs/_sandbox/sweep/16x9/seed-2.mp4", "--base-url",
                  sandbox.base_url).exit_code == 0
    write_spec("[1]")
    plan = json.loads(runner("plan", "specs/sweep.yaml", "--json").output)
    orphaned = {r["id"] for r in plan["requests"] if r["status"] == "orphaned"}
    assert len(orphaned) == 2
    folder = Path("outputs/_sandbox/sweep")
    expected = {folder / p for p in (
        "16x9/seed-2.mp4", "16x9/seed-2.json", "16x9/seed-2.repro-1.mp4",
        "16x9/seed-2.repro-1.json", "9x16/seed-2.mp4", "9x16/seed-2.json")}
    expected |= {folder / ".posters" / f"{rid}.jpg" for rid in orphaned}
    assert all(p.is_file() for p in expected)

    dry = runner("prune", "specs/sweep.yaml")
    assert dry.exit_code == 0, dry.output
    assert {Path(line.split("would remove ")[1]) for line in dry.output.splitlines()
            if "would remove " in line} == expected
    assert all(p.is_file() for p in expected) and set(read_state(folder)) >= orphaned

    done = runner("prune", "specs/sweep.yaml", "--yes")
    assert done.exit_code == 0, done.output
    assert f"removed {len(expected)} files of 2 orphaned requests" in done.output
    assert not any(p.exists() for p in expected)
    assert orphaned.isdisjoint(read_state(folder))
    events = [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]
    assert {e["id"] for e in events if e["event"] == "orphan_removed"} == orphaned
    assert (folder / "16x9/seed-1.mp4").is_file() and (folder / "9x16/seed-1.mp4").is_file()
    assert "seed-2" not in (folder / "index.html").read_text(encoding="utf-8")
    assert runner("prune", "specs/sweep.yaml").output.startswith("no orphaned requests")


def test_edited_prompt_prune_keeps_the_new_videos_at_the_same_paths(
    in_tmp: Path, sandbox: RunningSandbox
) -> None:
    """After a prompt edit and a rerun, prune removes old posters but not the new videos."""
    write_spec("[1]")
    assert run(sandbox).exit_code == 0
    write_spec("[1]", prompt="A fast push toward the mountain")
    plan = runner("plan", "specs/sweep.yaml").output
    assert "changed input" in plan and "orphaned" in plan
    assert run(sandbox).exit_code == 0
    folder = Path("outputs/_sandbox/sweep")
    gallery = parse((folder / "index.html").read_text(encoding="utf-8"))
    assert len(gallery.find_all("figure")) == 2  # the new videos, not old and new side by side
    assert all("fast push" in p.text() for p in gallery.find_all("p", "prompt"))
    videos = {p: p.read_bytes() for p in folder.glob("*/seed-1.mp4")}
    result = runner("prune", "specs/sweep.yaml", "--yes")
    assert result.exit_code == 0, result.output
    assert result.output.count("keep ") == 4  # two videos and two sidecars, now the new ones'
    assert {p: p.read_bytes() for p in folder.glob("*/seed-1.mp4")} == videos
    live = {json.loads(p.read_text())["id"] for p in folder.glob("*/seed-1.json")}
    assert set(read_state(folder)) == live
    posters = {p.stem for p in (folder / ".posters").iterdir() if not p.stem.startswith("input-")}
    assert posters == live  # (input-<sha256>.jpg: the input image's thumbnail, shared)


@pytest.mark.parametrize("command", ["prune", "plan"])
def test_bad_spec_path_is_one_line_exit_2(in_tmp: Path, command: str) -> None:
    """A missing spec file: exit 2 with an error line, no traceback, nothing written."""
    result = runner(command, "specs/missing.yaml")
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and "Traceback" not in result.output
    assert not Path("outputs").exists()
