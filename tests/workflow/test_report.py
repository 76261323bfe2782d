"""Run reports: the JSON summary and the JUnit XML that CI dashboards read."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from runner.manifest import Manifest, read_state
from runner.report import ReportEntry, RunInfo, entry_from_state, write_report

from .conftest import make_request, record_done, record_failed

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
    return [entry_from_state(s, output_root=tmp_path / "outputs", this_run=True)
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
    assert all(Path(r["output"]).is_file() for r in done)  # paths a CI step can open
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
    seeds = [p.get("value") for p in suite.iterfind("testcase/properties/property[@name='seed']")]
    assert sorted(seeds) == ["1", "2", "3", "4"]


def test_report_is_replaced_atomically(tmp_path: Path) -> None:
    """Writing a report over an old one leaves no temp file and the new content whole."""
    entries = sample(tmp_path)
    target = tmp_path / "report.json"
    target.write_text("old", encoding="utf-8")
    write_report(target, entries[:1], RUN)
    assert json.loads(target.read_text(encoding="utf-8"))["total"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outputs", "report.json"]
