"""What a run did: one report per request, the closing summary, the CI reports.

`RunSummary` is plain data the engine returns; `summary_lines` renders it for a person
(the CLI prints them); `write_reports` turns it into `--report` files through
`runner.report`, from the manifest's state on disk.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runner.layout import spec_folder
from runner.manifest import RequestState, read_state
from runner.ownership import check_owner
from runner.progress import format_duration
from runner.report import ReportEntry, RunInfo, charged_usd, entry_from_state, write_report
from runner.request import Request

# Every selected request has its video: here, or kept by the store.
OK_OUTCOMES = frozenset({"done", "already_done", "restored", "adopted", "stored"})


EXIT_BUDGET = 3  # `run` stopped submitting at a budget; everything it sent is in


@dataclass(frozen=True, slots=True)
class RequestReport:
    """One request's end state in this run."""

    id: str
    spec: str
    output: str
    # done | restored | adopted | stored | already_done | failed | unknown | lost |
    # timed_out | not_run
    outcome: str
    reason: str | None = None
    video_seconds: float = 0.0
    paid: bool = False  # this run submitted (and paid for) its generation
    usd: float | None = None  # what that generation was charged (None: not said)
    estimated_usd: float | None = None  # what the price list said it would cost


@dataclass(frozen=True, slots=True)
class SpecOutcome:
    """One spec of a run: where its outputs are and which requests were selected."""

    display: str
    folder: Path
    requests: tuple[Request, ...]


@dataclass(frozen=True, slots=True)
class RunSummary:
    """What a run did."""

    reports: tuple[RequestReport, ...]
    specs: tuple[SpecOutcome, ...]
    started_at: float  # wall clock, epoch seconds
    wall_seconds: float
    notes: tuple[str, ...] = ()
    unstored: tuple[str, ...] = ()  # verified videos the store did not take (why)
    budget: float | None = None  # the run's ceiling in USD (--max-cost / runner.toml)
    budget_stops: tuple[str, ...] = ()  # why submitting stopped at a ceiling, if it did

    def count(self, outcome: str) -> int:
        """Return how many requests ended with `outcome`."""
        return sum(1 for r in self.reports if r.outcome == outcome)

    @property
    def folders(self) -> tuple[Path, ...]:
        return tuple(spec.folder for spec in self.specs)

    @property
    def submissions(self) -> int:
        """Generations this run submitted and the provider accepted (paid)."""
        return sum(1 for r in self.reports if r.paid)

    @property
    def spent_usd(self) -> float:
        """What this run's submissions were charged (failed generations cost nothing)."""
        return round(sum(r.usd or 0.0 for r in self.reports if r.paid), 6)

    @property
    def estimated_usd(self) -> float:
        """What the price list said this run's submissions would cost."""
        return round(sum(r.estimated_usd or 0.0 for r in self.reports if r.paid), 6)

    @property
    def video_seconds(self) -> float:
        """Seconds of video generated (paid for) in this run."""
        return sum(r.video_seconds for r in self.reports if r.outcome == "done" and r.paid)

    @property
    def exit_code(self) -> int:
        """0 when every selected request has its video (and the store has it); 3 when the
        only thing missing is what a budget kept back (still `new`); else 1."""
        missing = [r for r in self.reports if r.outcome not in OK_OUTCOMES]
        if not missing and not self.unstored:
            return 0
        held = set(self.budget_stops)
        if held and not self.unstored and all(r.reason in held for r in missing):
            return EXIT_BUDGET
        return 1


def _spend_line(summary: RunSummary) -> str:
    """Say what this run's submissions were charged against what the price list said."""
    paid = [r for r in summary.reports if r.paid]
    said = sum(1 for r in paid if r.usd is not None)
    priced = sum(1 for r in paid if r.estimated_usd is not None)
    spent = "spent an amount the provider did not say"
    if said:
        spent = f"spent ${summary.spent_usd:,.2f}"
    if 0 < said < len(paid):
        spent += f" (+ {len(paid) - said} the provider named no cost for)"
    estimate = f" of an estimated ${summary.estimated_usd:,.2f}" if priced else " (no price known)"
    if 0 < priced < len(paid):
        estimate += f" (+ {len(paid) - priced} of unknown price)"
    plural = "s" if len(paid) != 1 else ""
    ceiling = f", budget ${summary.budget:,.2f}" if summary.budget is not None else ""
    return f"{spent}{estimate} on {len(paid)} submission{plural}{ceiling}"


def summary_lines(summary: RunSummary) -> list[str]:
    """Render the end-of-run summary: counts, video seconds, wall time, where things are."""
    new = sum(1 for r in summary.reports if r.outcome == "done" and r.paid)
    fetched = summary.count("done") - new + summary.count("restored")
    kept = summary.count("already_done") + summary.count("adopted") + summary.count("stored")
    detail = [f"{new} new"]
    if fetched:
        detail.append(f"{fetched} fetched again, free")
    detail.append(f"{kept} already")
    parts = [f"{new + fetched + kept} done ({', '.join(detail)})"]
    for outcome, label in (
        ("failed", "failed"),
        ("lost", "lost by the provider"),
        ("unknown", "unknown outcome"),
        ("timed_out", "still pending"),
        ("not_run", "not submitted"),
    ):
        if summary.count(outcome):
            parts.append(f"{summary.count(outcome)} {label}")
    lines = [
        f"summary: {len(summary.reports)} requests — " + ", ".join(parts),
        f"  {summary.video_seconds:.0f} s of video generated in "
        f"{format_duration(summary.wall_seconds)}",
    ]
    if summary.submissions:
        lines.append("  " + _spend_line(summary))
    for stop in summary.budget_stops:
        held = sum(1 for r in summary.reports if r.outcome == "not_run" and r.reason == stop)
        lines.append(f"  {stop} ({held} not submitted)")
    for spec in summary.specs:
        lines.append(f"  outputs: {spec.folder}/ (gallery: {spec.folder / 'index.html'})")
    problems = [r for r in summary.reports if r.outcome not in OK_OUTCOMES]
    # Requests left for one run-wide reason (a quota, an unreachable provider) say it once.
    shared = {r.reason for r in problems if r.outcome == "not_run"} - set(summary.budget_stops)
    for reason in sorted(r for r in shared if r):
        count = sum(1 for r in problems if r.outcome == "not_run" and r.reason == reason)
        lines.append(f"  not_run: {count} request{'s' if count != 1 else ''}: {reason}")
    problems = [r for r in problems if r.outcome != "not_run"]  # each said once above
    for report in problems[:20]:
        lines.append(f"  {report.outcome}: {report.spec}: {report.output}: {report.reason}")
    if len(problems) > 20:
        lines.append(f"  … and {len(problems) - 20} more (runner status --json lists them all)")
    if summary.count("unknown"):
        lines.append(
            "  unknown outcomes are never resubmitted blindly: the next run looks them up in "
            "the provider's usage logs where it has them; otherwise check its dashboard, then "
            "rerun with --resubmit-unknown if they were not created"
        )
    for line in summary.unstored[:5]:
        lines.append(f"  not in the store yet (the next run offers it again): {line}")
    return lines


def write_reports(summary: RunSummary, paths: Sequence[Path], output_root: Path) -> None:
    """Write each `--report` file (JSON, or JUnit XML for .xml) from the manifests."""
    if not paths:
        return
    touched = {r.id for r in summary.reports if r.outcome != "already_done"}
    by_id = {r.id: r for r in summary.reports}
    entries: list[ReportEntry] = []
    for spec in summary.specs:
        states = read_state(spec.folder)
        for request in spec.requests:
            state = states.get(request.id)
            this_run = request.id in touched
            report = by_id.get(request.id)
            # spec.folder is <root>/<name> or <root>/_sandbox/<name>: its parent is the root
            # the entry's <root>/<spec_name>/<output> path is built from.
            root = spec.folder.parent
            if state is None:
                entry = _new_entry(request, root, this_run)
                if report is not None and report.outcome == "stored":
                    entry = replace(entry, status="done", reason="in the store")
            else:
                entry = entry_from_state(state, output_root=root, this_run=this_run)
            if report is not None and report.paid:
                entry = replace(entry, submitted=True)
            entries.append(entry)
    finished = summary.started_at + summary.wall_seconds
    info = RunInfo(_iso(summary.started_at), _iso(finished), round(summary.wall_seconds, 3))
    for path in paths:
        write_report(path, entries, info)


def _new_entry(request: Request, output_root: Path, this_run: bool) -> ReportEntry:
    """A request the manifest does not hold (never submitted, e.g. a quota stopped it)."""
    return ReportEntry(
        id=request.id,
        spec=request.spec,
        spec_name=request.spec_name,
        job=request.job,
        status="new",
        reason="not submitted",
        output=(output_root / request.spec_name / request.output).as_posix(),
        seed=request.seed,
        matrix=request.matrix,
        provider=request.provider,
        model=request.model,
        this_run=this_run,
    )


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def status_rows(
    requests: Sequence[Request], states: Mapping[str, RequestState]
) -> list[dict[str, object]]:
    """Return `runner status` rows: each request of the spec joined with its state
    (`new` when the manifest has none), then manifest entries gone from the spec."""
    rows: list[dict[str, object]] = []
    seen: set[str] = set()
    for request in requests:
        seen.add(request.id)
        state = states.get(request.id)
        rows.append(_row(request.id, request.spec, request.job, request.output, state))
    for rid, state in states.items():
        if rid not in seen:
            rows.append(_row(rid, state.spec, state.job, state.output, state, orphaned=True))
    return rows


def _row(
    rid: str,
    spec: str | None,
    job: str | None,
    output: str | None,
    state: RequestState | None,
    *,
    orphaned: bool = False,
) -> dict[str, object]:
    return {
        "id": rid,
        "spec": spec,
        "job": job,
        "status": state.status if state is not None else "new",
        "orphaned": orphaned,  # in the manifest, gone from the spec
        "output": output,
        "generation_id": state.generation_id if state else None,
        "reason": state.reason if state else None,
        "seed": state.seed if state else None,
        "submitted_at": state.submitted_at if state else None,
        "downloaded_at": state.downloaded_at if state else None,
        "video": dict(state.video) if state and state.video else None,
        "usd": charged_usd(state) if state else None,  # what its generation was charged
    }


def spec_status(
    paths: Sequence[Path], output_root: Path, *, sandbox: bool = False
) -> dict[str, Any]:
    """Return `runner status`: every request of the specs at `paths` with its state."""
    from runner.spec import load_specs

    rows: list[dict[str, object]] = []
    specs: list[dict[str, object]] = []
    for spec in load_specs(list(paths), provider_override="sandbox" if sandbox else None):
        folder = spec_folder(output_root, spec.name, sandbox=spec.sandbox)
        check_owner(folder, spec.path, spec.display)
        states = read_state(folder)
        mine = status_rows(spec.requests, states)
        rows.extend(mine)
        specs.append({
            "spec": spec.display, "name": spec.name, "folder": str(folder),
            "requests": len(mine), "counts": _tally(mine), "spent_usd": _spent(mine),
        })
    return {
        "requests": rows, "counts": _tally(rows), "spent_usd": _spent(rows), "specs": specs,
    }


def _tally(rows: Sequence[Mapping[str, object]]) -> dict[str, int]:
    tally: dict[str, int] = {}
    for row in rows:
        tally[str(row["status"])] = tally.get(str(row["status"]), 0) + 1
    return dict(sorted(tally.items()))


def _spent(rows: Sequence[Mapping[str, object]]) -> float:
    """What the recorded generations were charged (each request's latest generation)."""
    return round(sum(float(u) for r in rows if isinstance(u := r["usd"], int | float)), 6)
