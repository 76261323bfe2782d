"""What a run does with each selected request, given the manifest and the files.

    new, or --force / --retry-failed / --resubmit-unknown   → submit, then collect
    pending (a generation id is recorded)                   → collect: poll, never resubmit
    done, file verified                                     → nothing (no API call)
    done, file missing or changed                           → collect: poll for a fresh URL
    failed at download/probe, --retry-failed                → collect the paid generation again
    failed, unknown (without the flags above)               → reported, nothing sent

`--force` does not resubmit a pending request: its generation is already under way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from runner.durable import remove_partials
from runner.lifecycle import SpecRun
from runner.manifest import RequestState, verify
from runner.request import Request
from runner.sidecar import sidecar_for, sidecar_path, write_sidecar


class Action:
    """What a run does with one request (plain strings, for messages and tests)."""

    SUBMIT = "submit"  # POST, then collect
    COLLECT = "collect"  # poll the recorded generation, then download
    SKIP = "skip"  # done and verified: nothing to do
    REPORT = "report"  # failed / unknown without a flag: reported, nothing sent


@dataclass(frozen=True, slots=True)
class Flags:
    """The user's say on requests that are not simply new or pending."""

    force: bool = False  # regenerate done, failed and unknown requests
    retry_failed: bool = False
    resubmit_unknown: bool = False  # accept possibly paying twice


def decide(
    state: RequestState | None, refetch: bool, options: Flags
) -> tuple[str, str | None]:
    """Return the action for one request and, for REPORT, why nothing is sent."""
    if state is None:
        return Action.SUBMIT, None
    if state.status == "pending":
        return Action.COLLECT, None
    if state.status == "done":
        if options.force:
            return Action.SUBMIT, None
        return (Action.COLLECT, None) if refetch else (Action.SKIP, None)
    if state.status == "failed":
        if options.retry_failed and state.stage in ("download", "probe") and state.generation_id:
            return Action.COLLECT, None  # the generation was paid for: fetch it again
        if options.retry_failed or options.force:
            return Action.SUBMIT, None
        return Action.REPORT, f"failed earlier: {state.reason} (use --retry-failed to retry)"
    # unknown
    if options.resubmit_unknown or options.force:
        return Action.SUBMIT, None
    why = (
        f"outcome unknown: {state.reason} — check the provider's dashboard; "
        "--resubmit-unknown submits it again (it may be billed twice)"
    )
    return Action.REPORT, why


@dataclass(frozen=True)
class Work:
    """One selected request and what this run does with it."""

    spec: SpecRun
    request: Request
    action: str  # an Action
    why: str | None = None  # for REPORT: why nothing is sent


def prepare(spec_run: SpecRun, requests: Sequence[Request], options: Flags) -> list[Work]:
    """Fold, verify and repair one spec's folder; return the work its requests need."""
    manifest = spec_run.manifest
    remove_partials(spec_run.folder)
    selected = {r.id for r in requests}
    states = {rid: s for rid, s in manifest.state.items() if rid in selected}
    checked = verify(states, spec_run.folder)
    refetch = set(checked.refetch)
    with manifest.group():
        for rid, mtime_ns in checked.touched.items():
            manifest.record_verified(rid, mtime_ns)
    work: list[Work] = []
    for request in requests:
        state = manifest.state.get(request.id)
        action, why = decide(state, request.id in refetch, options)
        if action == Action.SKIP and state is not None and state.output is not None:
            video = spec_run.folder / state.output
            if not sidecar_path(video).exists():  # lost between its record and its write
                write_sidecar(video, sidecar_for(state))
        if state is not None and action == Action.COLLECT and state.status != "pending":
            manifest.record_reset(request.id, "file missing or changed, or --retry-failed")
        if state is not None and action == Action.SUBMIT:
            why = "--force" if state.status == "done" or options.force else "user asked to retry"
            manifest.record_forgotten(request.id, why)
        work.append(Work(spec_run, request, action, why))
    return work
