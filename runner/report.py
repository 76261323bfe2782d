"""Run reports for CI: `--report FILE` writes JSON, or JUnit XML when FILE ends in `.xml`.

The JSON summary is for scripts (`jq '.counts.failed' report.json`); the JUnit XML is for
the dashboards every CI system already has (GitHub test reporters, GitLab, Jenkins): one
`<testsuite>` per spec, one `<testcase>` per request, a `<failure>` for a request the API
failed, an `<error>` for one whose outcome is unknown or that is still pending when the
run ends. `--report` may be given twice to get both. Both are built from the manifest's
folded state of the run's requests, so they say what is true on disk, and are written
atomically: a CI step never reads half a report.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner import __version__
from runner.durable import storage_error, write_atomic
from runner.manifest import RequestState

REPORT_VERSION = 1
# JUnit files a request the API (or the download) refused as a <failure>; any other
# status but done (unknown outcome, still pending) as an <error>: it needs a look.
FAILURE_STATUSES = frozenset({"failed"})
# Characters XML 1.0 cannot carry at all, even escaped (an API's reason may hold them).
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True, slots=True)
class ReportEntry:
    """One request's line in the report."""

    id: str
    spec: str
    spec_name: str
    job: str
    status: str  # done | failed | pending | unknown | new
    reason: str | None
    output: str | None  # path of the video, as the user sees it (output dir included)
    seed: int | None
    matrix: Mapping[str, Any]
    provider: str
    model: str
    this_run: bool  # True when this run submitted, polled or downloaded it
    timings: Mapping[str, Any] = field(default_factory=dict)
    submitted: bool = False  # this run submitted (paid for) its generation
    usd: float | None = None  # what its generation was charged, whichever run paid (None:
    # not said, or nothing submitted); a failed generation costs 0

    def to_dict(self) -> dict[str, Any]:
        """Return the entry as JSON-ready data."""
        return {
            "id": self.id,
            "spec": self.spec,
            "spec_name": self.spec_name,
            "job": self.job,
            "status": self.status,
            "reason": self.reason,
            "output": self.output,
            "seed": self.seed,
            "matrix": dict(self.matrix),
            "provider": self.provider,
            "model": self.model,
            "this_run": self.this_run,
            "submitted": self.submitted,
            "usd": self.usd,
            "timings": dict(self.timings),
        }


@dataclass(frozen=True, slots=True)
class RunInfo:
    """When the run happened and how long it took."""

    started_at: str  # ISO-8601 UTC
    finished_at: str
    seconds: float


def entry_from_state(
    state: RequestState, *, output_root: Path, this_run: bool
) -> ReportEntry:
    """Return the report entry of one request from its manifest state."""
    spec_name = state.spec_name or ""
    generation = state.generation_seconds
    return ReportEntry(
        usd=charged_usd(state),
        id=state.id,
        spec=state.spec or "",
        spec_name=spec_name,
        job=state.job or "default",
        status=state.status,
        reason=state.reason,
        output=(output_root / spec_name / state.output).as_posix() if state.output else None,
        seed=state.seed,
        matrix=state.matrix,
        provider=state.provider or "",
        model=state.model or "",
        this_run=this_run,
        timings={
            "submitted_at": state.submitted_at,
            "completed_at": state.completed_at,
            "downloaded_at": state.downloaded_at,
            "generation_seconds": None if generation is None else round(generation, 3),
            "download_seconds": state.download_seconds,
        },
    )


def charged_usd(state: RequestState) -> float | None:
    """Return what the provider charged for a request's generation (0 when it failed)."""
    if state.status == "failed" and state.stage == "generate":
        return 0.0  # failed generations are not billed
    said = (state.cost or {}).get("usd")
    return float(said) if isinstance(said, int | float) else None


def counts(entries: Iterable[ReportEntry]) -> dict[str, int]:
    """Return how many entries have each status (every status key present, sorted)."""
    found: dict[str, int] = {"done": 0, "failed": 0, "pending": 0, "unknown": 0}
    for entry in entries:
        found[entry.status] = found.get(entry.status, 0) + 1
    return dict(sorted(found.items()))


def report_json(entries: Sequence[ReportEntry], run: RunInfo) -> dict[str, Any]:
    """Return the JSON summary of a run."""
    return {
        "report_version": REPORT_VERSION,
        "runner_version": __version__,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "seconds": round(run.seconds, 3),
        "total": len(entries),
        "submissions": sum(1 for e in entries if e.submitted),
        "spent_usd": round(sum(e.usd or 0.0 for e in entries if e.submitted), 6),
        "counts": counts(entries),
        "ok": all(e.status == "done" for e in entries),
        "requests": [e.to_dict() for e in entries],
    }


def report_junit(entries: Sequence[ReportEntry], run: RunInfo) -> ET.Element:
    """Return the JUnit XML tree of a run: a suite per spec, a test case per request."""
    root = ET.Element("testsuites", name="runner", timestamp=run.started_at)
    suites: dict[str, list[ReportEntry]] = {}
    for entry in entries:
        suites.setdefault(entry.spec or entry.spec_name, []).append(entry)
    for spec, members in suites.items():
        suite = ET.SubElement(root, "testsuite", name=_text(spec), timestamp=run.started_at)
        for entry in members:
            _testcase(suite, entry)
        _tally(suite, members)
    _tally(root, entries)
    root.set("time", f"{run.seconds:.3f}")
    return root


def write_report(path: Path, entries: Sequence[ReportEntry], run: RunInfo) -> Path:
    """Write the report to `path`: JUnit XML if it ends in .xml, JSON otherwise."""
    if path.suffix.lower() == ".xml":
        tree = report_junit(entries, run)
        ET.indent(tree)
        data = ET.tostring(tree, encoding="utf-8", xml_declaration=True) + b"\n"
    else:
        text = json.dumps(report_json(entries, run), indent=2, ensure_ascii=False)
        # A lone surrogate (an API sent "\ud800") is written back as that same JSON escape.
        data = (text + "\n").encode("utf-8", "backslashreplace")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise storage_error(exc, path.parent) from exc
    write_atomic(path, data)
    return path


def _testcase(suite: ET.Element, entry: ReportEntry) -> None:
    """Add one request's <testcase>, with <failure> or <error> when it did not finish."""
    name = entry.output or entry.id
    case = ET.SubElement(
        suite,
        "testcase",
        classname=_text(f"{entry.spec_name}.{entry.job}"),
        name=_text(f"{name} [{entry.id}]"),
        time=f"{entry.timings.get('generation_seconds') or 0:.3f}",
    )
    reason = _text(entry.reason or entry.status)
    if entry.status in FAILURE_STATUSES:
        failure = ET.SubElement(case, "failure", message=reason, type=entry.status)
        failure.text = reason
    elif entry.status != "done":
        error = ET.SubElement(case, "error", message=reason, type=entry.status)
        error.text = _text(_unfinished_hint(entry))
    props = ET.SubElement(case, "properties")
    for key, value in (("seed", entry.seed), ("provider", entry.provider),
                       ("model", entry.model), ("this_run", entry.this_run),
                       ("submitted", entry.submitted), ("usd", entry.usd)):
        ET.SubElement(props, "property", name=key, value=_text(value))
    for axis, value in entry.matrix.items():
        ET.SubElement(props, "property", name=f"matrix.{axis}", value=_text(value))


def _unfinished_hint(entry: ReportEntry) -> str:
    """Return what a user can do about a request that did not finish."""
    if entry.status == "unknown":
        return f"{entry.reason or 'outcome unknown'} — check the provider's dashboard"
    if entry.status == "pending":
        return "still generating when the run ended — run the same command again to collect it"
    return entry.reason or entry.status


def _tally(element: ET.Element, entries: Sequence[ReportEntry]) -> None:
    """Set the tests/failures/errors/skipped attributes JUnit readers expect."""
    element.set("tests", str(len(entries)))
    element.set("failures", str(sum(e.status in FAILURE_STATUSES for e in entries)))
    element.set(
        "errors", str(sum(e.status not in FAILURE_STATUSES and e.status != "done" for e in entries))
    )
    element.set("skipped", "0")
    seconds = sum(float(e.timings.get("generation_seconds") or 0) for e in entries)
    element.set("time", f"{seconds:.3f}")


def _text(value: Any) -> str:
    """Return a value as XML-safe text (strings bare, the rest as JSON)."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return _NOT_XML.sub("\ufffd", text)
