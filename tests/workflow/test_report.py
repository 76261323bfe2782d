"""Run reports: the JSON summary and the JUnit XML that CI dashboards read."""

from __future__ import annotations

import dataclasses
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema
from click.testing import CliRunner

from runner.cli import cli
from runner.manifest import Manifest, read_state
from runner.report import ReportEntry, RunInfo, entry_from_state, write_report
from runner.sandbox import RunningSandbox

from .conftest import make_request, record_done, record_failed, write_png

# pytest's published JUnit schema (see the header of the file for where it comes from).
JUNIT_XSD = Path(__file__).parent / "schemas" / "junit-10.xsd"

RUN = RunInfo(started_at="2026-11-21T22:00:00.000Z", finished_at="2026-11-21T22:01:00.000Z",
              seconds=60.0)


def sample(tmp_path: Path) -> list[ReportEntry]:
    """Record 2 done, 1 failed (with markup and a control char), 1 unknown in a manifest."""
    folder = tmp_path / "outputs" / "sweep"
    with Manifest.open(folder) as manifest:
        for seed in (1, 2):
            record_done(manifest, make_request("sweep", {"seed": seed}), folder)
        record_failed(manifest, make_request("sweep", {"seed": 3}),
                      'refused: <b>"nsfw"</b> & more\x07')
        lost = make_request("sweep", {"seed": 4})
        manifest.record_submitting(lost)
        manifest.record_unknown(lost.id, "connection dropped after the POST was sent")
    return [entry_from_state(s, folder=folder, this_run=True)
            for s in read_state(folder).values()]


def test_json_report_has_counts_and_one_entry_per_request(tmp_path: Path) -> None:
    """The JSON report counts statuses and lists id/spec/job/status/reason/output/timings."""
    entries = sample(tmp_path)
    path = write_report(tmp_path / "ci" / "report.json", entries, RUN)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["counts"] == {"done": 2, "failed": 1, "pending": 0, "unknown": 1}
    assert data["total"] == len(data["requests"]) == 4 and data["ok"] is False
    assert data["seconds"] == 60.0 and data["started_at"] == RUN.started_at
    required = {"id", "spec", "job", "status", "reason", "output", "timings", "seed", "matrix"}
    for request in data["requests"]:
        assert required <= request.keys()
        assert request["spec"] == "specs/sweep.yaml" and request["job"] == "default"
    done = [r for r in data["requests"] if r["status"] == "done"]
    assert all(Path(r["path"]).is_file() for r in done)  # paths a CI step can open
    assert all(r["timings"]["downloaded_at"] and r["timings"]["submitted_at"] for r in done)
    (failed,) = [r for r in data["requests"] if r["status"] == "failed"]
    assert failed["reason"].startswith('refused: <b>"nsfw"</b>')


def test_junit_report_parses_and_counts_match(tmp_path: Path) -> None:
    """JUnit XML parses with ElementTree; tests/failures/errors match; reasons are kept."""
    entries = sample(tmp_path)
    root = ET.parse(write_report(tmp_path / "junit.xml", entries, RUN)).getroot()
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("4", "1", "1")
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == "specs/sweep.yaml" and suite.get("tests") == "4"
    cases = suite.findall("testcase")
    assert len(cases) == 4
    assert all(c.get("classname") == "sweep.default" for c in cases)
    (failure,) = [c.find("failure") for c in cases if c.find("failure") is not None]
    assert failure.get("message", "").startswith('refused: <b>"nsfw"</b> & more')
    (error,) = [c.find("error") for c in cases if c.find("error") is not None]
    assert error.get("type") == "unknown" and "connection dropped" in error.get("message", "")
    passed = [c for c in cases if len(c.findall("failure") + c.findall("error")) == 0]
    assert len(passed) == 2
    # Each request's facts are lines of its <system-out> (a <testcase> holds no <properties>).
    outs = [dict(line.split(": ", 1) for line in (c.findtext("system-out") or "").splitlines())
            for c in cases]
    assert sorted(out["seed"] for out in outs) == ["1", "2", "3", "4"]
    assert {out["model"] for out in outs} == {"runway/gen4_turbo"}
    assert {out["matrix.seed"] for out in outs} == {"1", "2", "3", "4"}


def test_report_is_replaced_atomically(tmp_path: Path) -> None:
    """Writing a report over an old one leaves no temp file and the new content whole."""
    entries = sample(tmp_path)
    target = tmp_path / "report.json"
    target.write_text("old", encoding="utf-8")
    write_report(target, entries[:1], RUN)
    assert json.loads(target.read_text(encoding="utf-8"))["total"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outputs", "report.json"]


@pytest.fixture(scope="module")
def junit_schema() -> xmlschema.XMLSchema:
    """pytest's junit-10.xsd, vendored in tests/workflow/schemas/."""
    return xmlschema.XMLSchema(JUNIT_XSD)


def schema_errors(schema: xmlschema.XMLSchema, path: Path) -> list[tuple[str, str]]:
    """Return every way the file at `path` breaks the schema: (reason, element path)."""
    return [(str(error.reason), str(error.path)) for error in schema.iter_errors(str(path))]


def test_junit_report_validates_against_pytests_schema(
    tmp_path: Path, junit_schema: xmlschema.XMLSchema
) -> None:
    """Done, failed (markup, a control character) and unknown cases: junit-10.xsd accepts it."""
    path = write_report(tmp_path / "junit.xml", sample(tmp_path), RUN)
    assert schema_errors(junit_schema, path) == []


def test_the_schema_refuses_what_the_report_used_to_write(
    tmp_path: Path, junit_schema: xmlschema.XMLSchema
) -> None:
    """<properties> in a <testcase>, timestamp or skipped on <testsuites>: each is refused."""
    path = write_report(tmp_path / "junit.xml", sample(tmp_path), RUN)
    old = {"props": tmp_path / "props.xml", "stamp": tmp_path / "stamp.xml"}
    tree = ET.parse(path)
    ET.SubElement(ET.SubElement(tree.getroot().find("testsuite/testcase"), "properties"),
                  "property", name="seed", value="1")
    tree.write(old["props"])
    tree = ET.parse(path)
    tree.getroot().set("timestamp", RUN.started_at)
    tree.getroot().set("skipped", "0")
    tree.write(old["stamp"])
    refused = "Unexpected child with tag 'properties' at position 2."
    assert schema_errors(junit_schema, old["props"]) == [
        (refused, "/testsuites/testsuite/testcase[1]")]
    assert sorted(schema_errors(junit_schema, old["stamp"])) == [
        ("'skipped' attribute not allowed for element", "/testsuites"),
        ("'timestamp' attribute not allowed for element", "/testsuites"),
    ]


def test_suite_time_is_the_runs_wall_clock_not_the_sum_of_its_cases(tmp_path: Path) -> None:
    """Four 45 s generations in a 60 s run: every suite and the whole file say 60 s."""
    slow = [dataclasses.replace(e, timings={**e.timings, "generation_seconds": 45.0})
            for e in sample(tmp_path)]
    two_specs = slow[:2] + [dataclasses.replace(e, spec="specs/other.yaml") for e in slow[2:]]
    root = ET.parse(write_report(tmp_path / "junit.xml", two_specs, RUN)).getroot()
    assert root.get("time") == "60.000"
    assert [s.get("time") for s in root.findall("testsuite")] == ["60.000", "60.000"]
    assert {c.get("time") for c in root.iter("testcase")} == {"45.000"}  # per case: its own
    assert [s.get("timestamp") for s in root.findall("testsuite")] == [RUN.started_at] * 2


def test_a_real_runs_junit_file_validates_and_its_times_agree(
    in_tmp: Path, sandbox: RunningSandbox, junit_schema: xmlschema.XMLSchema
) -> None:
    """`runner run --report` on a sandbox with a failed generation: valid, wall-clock times."""
    write_png(Path("specs/images/mountain.png"))
    Path("specs/sweep.yaml").write_text(
        "version: 1\nname: sweep\nprovider: sandbox\nmodel: runway/gen4_turbo\n"
        "matrix:\n  seed: [1, 2, 3, 4]\nparams:\n  image_url: images/mountain.png\n"
        "  prompt: A push toward the peak\n  duration: 5\n"
        "output: \"seed-{{ seed }}.mp4\"\n", encoding="utf-8")
    sandbox.configure(faults={"failed_generation": {"first": 1, "rate": 0.0}})
    result = CliRunner().invoke(cli, [
        "run", "specs/sweep.yaml", "--base-url", sandbox.base_url, "--poll-min", "0.01",
        "--poll-max", "0.1", "--report", "run.json", "--report", "junit.xml"])
    assert result.exit_code == 1, result.output
    assert schema_errors(junit_schema, Path("junit.xml")) == []
    root = ET.parse("junit.xml").getroot()
    seconds = json.loads(Path("run.json").read_text(encoding="utf-8"))["seconds"]
    (suite,) = root.findall("testsuite")
    assert root.get("time") == suite.get("time") == f"{seconds:.3f}"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("4", "1", "0")
