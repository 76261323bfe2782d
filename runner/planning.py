"""`runner plan`: what a run would do, per request, decided by `runner.decide`.

Each request gets the status, action and reason of the one decision table that `runner
run` also follows (`runner.decide`), from the facts `runner.observe` gathers (manifest,
lock file, files, store); manifest and lock entries the spec no longer produces are
listed as `orphaned`.

Also `select()`, the `--only KEY=VALUE` filter the engine uses too.
"""

from __future__ import annotations

import difflib
import functools
import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.catalog import get_model, seconds_of
from runner.decide import STATUSES, Action, Decision, Flags, decide
from runner.errors import UsageError
from runner.heap import collector_paused
from runner.jsonlines import line_encoder
from runner.layout import display_path, lockfile_of, spec_folder
from runner.lockfile import LockEntry, read_lock
from runner.manifest import RequestState, read_state
from runner.observe import observe
from runner.ownership import check_owner
from runner.pricing import Pricer
from runner.providers import has_usage_logs
from runner.request import Request
from runner.spec import LoadedSpec

# `plan --json` and saved plans (schemas/output/plan.schema.json); a change of meaning of
# a field bumps the version.
FORMAT = "runner-plan"
FORMAT_VERSION = 1

ALWAYS_SELECTABLE = ("job", "id")


# ------------------------------------------------------------------------------ --only


def parse_only(pairs: Iterable[str | tuple[str, str]]) -> list[tuple[str, str]]:
    """Return (key, value) pairs from `KEY=VALUE` strings (tuples pass through)."""
    parsed: list[tuple[str, str]] = []
    for item in pairs:
        if isinstance(item, tuple):
            parsed.append(item)
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            msg = f"--only {item!r} is not KEY=VALUE — write e.g. --only seed=1"
            raise UsageError(msg)
        parsed.append((key.strip(), value))
    return parsed


def select(requests: Sequence[Request], only: Sequence[tuple[str, str] | str]) -> list[Request]:
    """Return the requests matching every `--only KEY=VALUE` (AND across keys).

    A key names a matrix axis, a body parameter, `job` or `id`; values compare as
    strings (numbers as written in JSON, booleans as true/false). Several values for
    one key match either. An unknown key is a `UsageError` with a "did you mean".
    """
    pairs = parse_only(only)
    if not pairs:
        return list(requests)
    known: set[str] = set(ALWAYS_SELECTABLE)
    for request in requests:
        known.update(request.matrix)
        known.update(request.body)
    wanted: dict[str, set[str]] = {}
    for key, value in pairs:
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = (
                f"did you mean {close[0]!r}?"
                if close
                else f"use one of: {', '.join(sorted(known))}"
            )
            msg = f"--only {key}={value}: no request has {key!r} — {hint}"
            raise UsageError(msg)
        wanted.setdefault(key, set()).add(value)
    return [r for r in requests if all(_matches(r, key, values) for key, values in wanted.items())]


def refuse_empty_selection(
    requests: Sequence[Request], only: Sequence[tuple[str, str] | str], chosen: int
) -> None:
    """Raise `UsageError` when `--only` was given and matched no request at all."""
    pairs = parse_only(only)
    if not pairs or chosen:
        return
    shown = " ".join(f"--only {key}={value}" for key, value in pairs)
    hints = []
    for key in dict.fromkeys(key for key, _ in pairs):
        values = sorted({_as_text(v) for r in requests for v in _values_of(r, key)})
        if values:
            more = ", …" if len(values) > 8 else ""
            hints.append(f"{key} takes {', '.join(values[:8])}{more}")
    msg = f"{shown} matches no request — " + ("; ".join(hints) or "check the values")
    raise UsageError(msg)


def _values_of(request: Request, key: str) -> list[Any]:
    if key == "job":
        return [request.job]
    if key == "id":
        return [request.id]
    found = [request.matrix[key]] if key in request.matrix else []
    return found + ([request.body[key]] if key in request.body else [])


def _matches(request: Request, key: str, values: set[str]) -> bool:
    if key == "job":
        return request.job in values
    if key == "id":
        return request.id in values
    if key in request.matrix and _as_text(request.matrix[key]) in values:
        return True
    return key in request.body and _as_text(request.body[key]) in values


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# -------------------------------------------------------------------------------- plan


@dataclass(slots=True)  # not frozen, for the reason `runner.request.Request` gives
class PlanEntry:
    """One line of a plan: a request (or an orphaned record) and what a run does with it
    (read-only by convention)."""

    id: str
    spec: str  # display path of the spec
    spec_name: str
    job: str
    status: str  # one of runner.decide.STATUSES
    reason: str
    output: str | None  # the spec's `output`, relative to the spec's folder (None: unknown)
    path: str | None  # where that file is: <output root>/<spec folder>/<output>
    payload: Mapping[str, Any]  # the POST body, local images as sha256: references
    matrix: Mapping[str, Any]
    request: Request | None  # None for orphaned entries
    action: str = Action.REPORT  # a runner.decide.Action
    paid: bool = False  # a run would pay for a generation
    estimated_usd: float | None = None  # what that would cost (paid only; None: unknown)
    # Orphans: what their record says (provider, model, endpoint, seed), as a request would.
    recorded: Mapping[str, Any] | None = None

    @property
    def seconds(self) -> float:
        """Seconds of video this request makes: its duration, else its model's default
        (0 when neither is known: see `length_known`)."""
        return self.length or 0.0

    @property
    def length(self) -> float | None:
        """Seconds of video this request makes, or None when nothing says how long."""
        return video_seconds(self.payload, self.request.model if self.request else None)

    def to_json(self, *, shared: bool = False) -> dict[str, Any]:
        """Return the entry as JSON-ready data; `shared`: with the request's own body and
        matrix rather than copies, for a caller that encodes the row at once."""
        row: dict[str, Any] = {
            "id": self.id,
            "spec": self.spec,
            "spec_name": self.spec_name,
            "job": self.job,
            "status": self.status,
            "action": self.action,
            "paid": self.paid,
            "estimated_usd": self.estimated_usd,
            # The status says it all when the reason would only repeat it.
            "reason": None if self.reason == self.status else self.reason,
            "orphaned": self.status == "orphaned",
            "output": self.output,
            "path": self.path,
            "payload": self.payload if shared else dict(self.payload),
            "matrix": self.matrix if shared else dict(self.matrix),
        }
        if self.request is not None:
            row.update(
                provider=self.request.provider,
                model=self.request.model,
                endpoint=self.request.endpoint,
                seed=self.request.seed,
                seed_derived=self.request.seed_derived,
            )
        elif self.recorded is not None:
            row.update(self.recorded)
        return row


def video_seconds(payload: Mapping[str, Any], model: str | None) -> float | None:
    """Return the seconds of video a body asks for (the model's default when it names
    none), or None when neither the body nor the model's docs say."""
    duration = payload.get("duration")
    try:
        # A plan's totals ask this three times per request of a sweep with a handful of
        # distinct durations: each (duration, model) is worked out once.
        return _video_seconds(duration, model)
    except TypeError:  # a duration the cache cannot hold (a list): worked out each time
        return _video_seconds.__wrapped__(duration, model)


@functools.lru_cache(maxsize=1024, typed=True)  # typed: True, 1 and 1.0 are kept apart
def _video_seconds(duration: Any, model: str | None) -> float | None:
    seconds = seconds_of(duration)
    if seconds is None and model is not None:
        found = get_model(model)
        seconds = found.expected_duration if found is not None else None
    return None if seconds is None else float(seconds)


@dataclass
class _Totals:
    """A plan's totals, counted in one pass (`Plan._totals`)."""

    counts: dict[str, int]
    work: int = 0
    submissions: int = 0
    unpriced: int = 0
    unknown_length: int = 0
    estimated_usd: float = 0.0
    video_seconds: float = 0.0
    seconds_to_generate: float = 0.0


@dataclass(frozen=True)
class Plan:
    """What a run would do for a set of specs."""

    entries: tuple[PlanEntry, ...]
    specs: tuple[Mapping[str, Any], ...] = field(default=())  # name, spec, folder, images
    prices: str | None = None  # which price lists the estimate comes from, and how old

    @functools.cached_property
    def _totals(self) -> _Totals:
        # Every total in one pass (a plan's summary and its lines ask for each of them,
        # some twice): 100,000 entries are walked once, not a dozen times.
        totals = _Totals(dict.fromkeys(STATUSES, 0))
        for entry in self.entries:
            totals.counts[entry.status] += 1
            if entry.action not in (Action.SKIP, Action.REPORT):
                totals.work += 1
            orphan = entry.status == "orphaned"  # an orphan's video is no longer described
            length = None if orphan and not entry.paid else entry.length
            if not orphan:
                totals.video_seconds += length or 0.0
            if entry.paid:
                totals.submissions += 1
                totals.seconds_to_generate += length or 0.0
                if length is None:
                    totals.unknown_length += 1
                if entry.estimated_usd is None:
                    totals.unpriced += 1
                else:
                    totals.estimated_usd += entry.estimated_usd
        return totals

    @property
    def counts(self) -> dict[str, int]:
        return dict(self._totals.counts)

    @property
    def submissions(self) -> int:
        """How many requests a run would submit, i.e. pay for."""
        return self._totals.submissions

    @property
    def video_seconds(self) -> float:
        """Seconds of video the specs describe (orphans excluded)."""
        return self._totals.video_seconds

    @property
    def estimated_usd(self) -> float:
        """What a run would pay, for the submissions whose price is known."""
        return round(self._totals.estimated_usd, 6)

    @property
    def work(self) -> int:
        """Requests a run would do something for (submit, poll, download, restore, record)."""
        return self._totals.work

    @property
    def unpriced(self) -> int:
        """Submissions whose model has no known price (never counted as free)."""
        return self._totals.unpriced

    @property
    def unknown_length(self) -> int:
        """Requests a run would pay for whose length neither the body nor the docs give."""
        return self._totals.unknown_length

    @property
    def seconds_to_generate(self) -> float:
        """Seconds of video a run would pay for."""
        return self._totals.seconds_to_generate

    def summary(self, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Return everything but the per-request list (`extra` keys after the format's)."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            **(extra or {}),
            "counts": self.counts,
            "total": len(self.entries),
            "submissions": self.submissions,
            "estimated_usd": self.estimated_usd,
            "unpriced": self.unpriced,
            "prices": self.prices,
            "video_seconds": self.video_seconds,
            "video_seconds_to_generate": self.seconds_to_generate,
            "unknown_length": self.unknown_length,
            "specs": [dict(s) for s in self.specs],
        }

    def to_json(self) -> dict[str, Any]:
        """Return the whole plan as one JSON-ready object (`runner plan --json`)."""
        return {**self.summary(), "requests": [e.to_json() for e in self.entries]}

    def iter_json(self, extra: Mapping[str, Any] | None = None) -> Iterator[str]:
        """Yield `to_json()` as text in pieces, one request per line (`extra` keys in
        the head, as a saved plan has them).

        Streaming keeps a 100,000-request plan from becoming one huge string, and
        `runner.jsonlines` (orjson, compact lines) keeps it fast.
        """
        head = json.dumps(self.summary(extra), indent=2, ensure_ascii=False)
        yield head[:-2] + ',\n  "requests": ['
        encode = line_encoder()
        for i, entry in enumerate(self.entries):
            yield ("\n    " if i == 0 else ",\n    ") + encode(entry.to_json(shared=True))
        yield ("\n  ]" if self.entries else "]") + "\n}\n"


@dataclass(frozen=True)
class SpecRecords:
    """What is recorded about one spec: where its folder is, its manifest and lock file."""

    folder: Path
    states: Mapping[str, RequestState]
    locked: Mapping[str, LockEntry]  # empty for sandbox specs: they never write a lock


def records_of(spec: LoadedSpec, output_root: Path) -> SpecRecords:
    """Read one spec's manifest and lock file (no lock taken, no API call)."""
    folder = spec_folder(output_root, spec.name, sandbox=spec.sandbox)
    check_owner(folder, spec.path, spec.display)
    locked = {} if spec.sandbox else read_lock(lockfile_of(spec.path))
    return SpecRecords(folder, read_state(folder), locked)


NO_FLAGS = Flags()


@collector_paused()  # a plan entry per request: runner.heap says why
def build_plan(
    specs: Sequence[LoadedSpec],
    output_root: Path,
    *,
    only: Sequence[tuple[str, str] | str] = (),
    flags: Flags = NO_FLAGS,
    inventory: frozenset[str] | None = None,
    pricer: Pricer | None = None,
) -> Plan:
    """Decide what a run would do with every request of `specs`; return it as a `Plan`.

    `only` and `flags` mean what they mean for `runner run`; `inventory` is the store's
    (None without a store). Orphans are judged against every request of the spec, not
    just the selection.
    """
    entries: list[PlanEntry] = []
    summaries: list[Mapping[str, Any]] = []
    chosen_total = 0
    for spec in specs:
        records = records_of(spec, output_root)
        folder = records.folder
        prefix = f"{folder}/"  # string joins: Path objects cost 100,000 times over
        summaries.append(
            {
                "name": spec.name,
                "spec": spec.display,
                "folder": str(folder),
                "images": {
                    f"sha256:{sha}": display_path(image.path) for sha, image in spec.images.items()
                },
            }
        )
        chosen = select(spec.requests, only) if only else list(spec.requests)
        chosen_total += len(chosen)
        seen = observe(
            chosen, folder, records.states, records.locked,
            inventory=inventory, has_usage_logs=has_usage_logs,
        )
        made_by = _made_by(spec, records)
        for request in chosen:
            decision = decide(seen.facts[request.id], flags)
            usd = pricer.usd(request) if pricer is not None and decision.paid else None
            entries.append(_entry(spec, request, decision, prefix, made_by, usd))
        entries.extend(orphans(spec, records))
    refuse_empty_selection([r for s in specs for r in s.requests], only, chosen_total)
    prices = pricer.describe(time.time()) if pricer is not None and pricer.lists else None
    return Plan(tuple(entries), tuple(summaries), prices)


def _made_by(spec: LoadedSpec, records: SpecRecords) -> dict[str, str]:
    """Return which recorded request (gone from the spec) made each output path."""
    ids = {request.id for request in spec.requests}
    made = {e.output: rid for rid, e in records.locked.items() if rid not in ids}
    made.update(
        {s.output: rid for rid, s in records.states.items() if s.output and rid not in ids}
    )
    return made


def _entry(
    spec: LoadedSpec,
    request: Request,
    decision: Decision,
    prefix: str,
    made_by: Mapping[str, str],
    usd: float | None,
) -> PlanEntry:
    reason = decision.reason
    if decision.status == "new" and reason == "new":
        previous = made_by.get(request.output)
        if previous is not None:
            reason = f"changed input (this output was made by request {previous})"
    return PlanEntry(
        id=request.id,
        spec=spec.display,
        spec_name=spec.name,
        job=request.job,
        status=decision.status,
        reason=reason,
        output=request.output,
        path=prefix + request.output,
        payload=request.body,
        matrix=request.matrix,
        request=request,
        action=decision.action,
        paid=decision.paid,
        estimated_usd=usd,
    )


def orphans(spec: LoadedSpec, records: SpecRecords) -> list[PlanEntry]:
    """Return the recorded requests (manifest or lock) that the spec no longer produces."""
    ids = {request.id for request in spec.requests}
    found: list[PlanEntry] = []
    for rid, state in records.states.items():
        if rid not in ids:
            recorded = {"provider": state.provider, "model": state.model,
                        "endpoint": state.endpoint, "seed": state.seed}
            found.append(_orphan(spec, records.folder, rid, state.job, state.output,
                                 state.body, state.matrix, recorded))
    for rid, entry in records.locked.items():
        if rid not in ids and rid not in records.states:
            recorded = {"provider": entry.provider, "model": entry.model,
                        "endpoint": entry.endpoint, "seed": entry.seed}
            found.append(_orphan(spec, records.folder, rid, None, entry.output,
                                 entry.payload, {}, recorded))
    return found


def _orphan(
    spec: LoadedSpec,
    folder: Path,
    rid: str,
    job: str | None,
    output: str | None,
    payload: Mapping[str, Any],
    matrix: Mapping[str, Any],
    recorded: Mapping[str, Any],
) -> PlanEntry:
    return PlanEntry(
        id=rid,
        spec=spec.display,
        spec_name=spec.name,
        job=job or "?",
        status="orphaned",
        reason="recorded, no longer produced by the spec (`runner prune` removes its files)",
        output=output or None,
        path=str(folder / output) if output else None,
        payload=payload,
        matrix=matrix,
        request=None,
        recorded=recorded,
    )



