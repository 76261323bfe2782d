"""Turn the decision table's verdicts into a run's work, recording what is decided.

`runner.decide` says what happens to each request (the same verdict `runner plan`
prints); `prepare` gathers the facts (`runner.observe`), asks it, and does the part that
needs no API call at once, under the spec's lock:

    skip      rewrite a sidecar lost between its record and its write
    adopt     record the video already in place (from the lock file or its sidecar)
    collect   a done/failed request goes back to pending (its generation is polled for a
              fresh URL), a request known only from the lock file enters the manifest
    restore, reconcile           a lock-only record enters the manifest first

The rest (submit, collect, restore, reconcile) is the workers' (`runner.engine`); a
submission forgets what an earlier attempt recorded only once it is sure to be sent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from runner.decide import Action, Decision, Facts, Flags, decide
from runner.durable import remove_partials
from runner.lifecycle import SpecRun
from runner.lockfile import state_from_entry
from runner.manifest import RequestState
from runner.observe import observe
from runner.request import Request
from runner.sidecar import sidecar_for, sidecar_path, write_sidecar

# During `runner pull` only what needs no API call is done; the rest is reported.
PULL_ONLY = frozenset({Action.SKIP, Action.ADOPT, Action.RESTORE, Action.REPORT})


@dataclass(frozen=True)
class Work:
    """One selected request and what this run does with it."""

    spec: SpecRun
    request: Request
    decision: Decision
    facts: Facts

    @property
    def action(self) -> str:
        return self.decision.action

    @property
    def why(self) -> str:
        return self.decision.reason


def decisions(
    spec_run: SpecRun,
    requests: Sequence[Request],
    flags: Flags,
    *,
    inventory: frozenset[str] | None,
    has_usage_logs: Callable[[str], bool],
    pull: bool = False,
) -> list[Work]:
    """Decide every request of one spec (no writes); `pull` keeps only free actions."""
    manifest = spec_run.manifest
    locked = spec_run.lock.entries if spec_run.lock is not None else {}
    seen = observe(
        requests, spec_run.folder, manifest.state, locked,
        inventory=inventory, has_usage_logs=has_usage_logs,
    )
    spec_run.observation = seen
    work: list[Work] = []
    for request in requests:
        facts = seen.facts[request.id]
        decision = decide(facts, flags)
        if pull and decision.action not in PULL_ONLY:
            decision = Decision(
                decision.status, Action.REPORT, f"{decision.reason} — `runner pull` only "
                "fetches what the store holds; `runner run` does the rest"
            )
        work.append(Work(spec_run, request, decision, facts))
    return work


def prepare(work: Sequence[Work]) -> None:
    """Record what the decisions imply before any API call (see the module docstring)."""
    by_spec: dict[int, list[Work]] = {}
    for item in work:
        by_spec.setdefault(id(item.spec), []).append(item)
    for items in by_spec.values():
        spec_run = items[0].spec
        manifest = spec_run.manifest
        remove_partials(spec_run.folder)
        seen = spec_run.observation
        with manifest.group():
            for rid, mtime_ns in (seen.touched.items() if seen is not None else ()):
                manifest.record_verified(rid, mtime_ns)
        for item in items:
            _apply(item, seen.sidecars if seen is not None else {})


def _apply(item: Work, sidecars: Mapping[str, Mapping[str, Any]]) -> None:
    spec_run, request, decision, facts = item.spec, item.request, item.decision, item.facts
    manifest = spec_run.manifest
    state = manifest.state.get(request.id)
    action = decision.action
    if action == Action.SUBMIT:
        return  # what it recorded is forgotten when it is sent (lifecycle.submit), not
        # before: one a budget keeps back stays as it was
    if action == Action.ADOPT:
        adopted = _adopted(spec_run, request, facts, sidecars.get(request.id))
        manifest.record_adopted(adopted, "sidecar" if facts.adopt_from == "sidecar" else "lock")
        write_sidecar(spec_run.folder / request.output, sidecar_for(manifest.state[request.id]))
        return
    needs_record = action in (Action.COLLECT, Action.RESTORE, Action.RECONCILE)
    if state is None and facts.locked is not None and needs_record:
        # Known only from the lock file (a fresh clone), and the work reads the manifest:
        # it takes the request over first. A `stored` one stays in the lock alone.
        manifest.record_adopted(_from_lock(spec_run, request, facts), "lock")
        state = manifest.state[request.id]
    if action == Action.SKIP and state is not None and state.status == "done":
        video = spec_run.folder / request.output
        if video.is_file() and not sidecar_path(video).exists():
            write_sidecar(video, sidecar_for(state))  # lost between its record and its write
    elif action == Action.COLLECT and state is not None and state.status != "pending":
        manifest.record_reset(request.id, decision.reason)


def _from_lock(spec_run: SpecRun, request: Request, facts: Facts) -> RequestState:
    """Return the manifest state a lock entry stands for, with this spec's names."""
    assert facts.locked is not None and spec_run.lock is not None
    state = state_from_entry(
        facts.locked, spec=request.spec, spec_name=request.spec_name,
        lock_dir=spec_run.lock.path.parent,
    )
    return replace(state, job=request.job, matrix=dict(request.matrix))


def _adopted(
    spec_run: SpecRun, request: Request, facts: Facts, sidecar: Mapping[str, Any] | None
) -> RequestState:
    """Return the done state of a video taken over from the lock file or its sidecar."""
    if facts.adopt_from == "sidecar" and sidecar is not None and facts.locked is None:
        timings = sidecar.get("timings") or {}
        return RequestState(
            id=request.id,
            status="done",
            generation_id=sidecar.get("generation_id"),
            spec=request.spec,
            spec_name=request.spec_name,
            job=request.job,
            provider=request.provider,
            model=request.model,
            endpoint=request.endpoint,
            body=dict(request.body),
            images=spec_run.image_refs(request),
            seed=request.seed,
            seed_derived=request.seed_derived,
            matrix=dict(request.matrix),
            output=request.output,
            size=sidecar.get("size"),
            sha256=sidecar.get("sha256"),
            mtime_ns=(spec_run.folder / request.output).stat().st_mtime_ns,
            video=sidecar.get("video"),
            cost=sidecar.get("cost"),
            submitted_at=timings.get("submitted_at"),
            completed_at=timings.get("completed_at"),
            downloaded_at=timings.get("downloaded_at"),
        )
    state = _from_lock(spec_run, request, facts)
    mtime = (spec_run.folder / request.output).stat().st_mtime_ns
    return replace(state, status="done", output=request.output, mtime_ns=mtime)
