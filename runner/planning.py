"""`runner plan`: what a run would do, per request, joined with the manifest's state.

Statuses (per request):

    new       nothing recorded: a run submits it (paid)
    done      downloaded earlier: a run skips it (or re-downloads a missing file)
    pending   submitted earlier: a run polls it, never resubmits it
    failed    failed earlier: skipped unless --retry-failed
    unknown   the submission's outcome is unknown: reported, not resubmitted
    orphaned  in the manifest, but the spec no longer produces it

Also `select()`, the `--only KEY=VALUE` filter the engine uses too.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from runner.errors import UsageError
from runner.request import Request
from runner.spec import LoadedSpec

STATUSES = ("new", "done", "pending", "failed", "unknown", "orphaned")
ALWAYS_SELECTABLE = ("job", "id")


class StateLike(Protocol):
    """What planning reads from a manifest entry (runner.manifest.RequestState)."""

    @property
    def status(self) -> str: ...
    @property
    def output(self) -> str | None: ...
    @property
    def job(self) -> str | None: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def body(self) -> Mapping[str, Any]: ...
    @property
    def matrix(self) -> Mapping[str, Any]: ...


StatesReader = Callable[[Path], Mapping[str, StateLike]]


def read_manifest_state(folder: Path) -> Mapping[str, StateLike]:
    """Return the manifest's state for one spec folder (empty when none exists)."""
    from runner.manifest import read_state

    return read_state(folder)


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


@dataclass(frozen=True, slots=True)
class PlanEntry:
    """One line of a plan: a request (or an orphaned manifest entry) and its status."""

    id: str
    spec: str  # display path of the spec
    spec_name: str
    job: str
    status: str  # one of STATUSES
    reason: str
    output: str  # <output_root>/<name>/<output>
    payload: Mapping[str, Any]  # the POST body, local images as sha256: references
    matrix: Mapping[str, Any]
    request: Request | None  # None for orphaned entries

    @property
    def seconds(self) -> float:
        """Seconds of video this request makes (0 when the body gives no duration)."""
        duration = self.payload.get("duration")
        return float(duration) if isinstance(duration, int | float) else 0.0

    def to_json(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "id": self.id,
            "spec": self.spec,
            "spec_name": self.spec_name,
            "job": self.job,
            "status": self.status,
            "reason": self.reason,
            "output": self.output,
            "payload": dict(self.payload),
            "matrix": dict(self.matrix),
        }
        if self.request is not None:
            row.update(
                provider=self.request.provider,
                model=self.request.model,
                endpoint=self.request.endpoint,
                seed=self.request.seed,
                seed_derived=self.request.seed_derived,
            )
        return row


@dataclass(frozen=True)
class Plan:
    """What a run would do for a set of specs."""

    entries: tuple[PlanEntry, ...]
    specs: tuple[Mapping[str, Any], ...] = field(default=())  # name, spec, folder, images

    @property
    def counts(self) -> dict[str, int]:
        tally = dict.fromkeys(STATUSES, 0)
        for entry in self.entries:
            tally[entry.status] += 1
        return tally

    @property
    def video_seconds(self) -> float:
        """Seconds of video the specs describe (orphans excluded)."""
        return sum(e.seconds for e in self.entries if e.status != "orphaned")

    @property
    def seconds_to_generate(self) -> float:
        """Seconds of video a run would pay for (the `new` requests)."""
        return sum(e.seconds for e in self.entries if e.status == "new")

    def summary(self) -> dict[str, Any]:
        """Return everything but the per-request list."""
        return {
            "counts": self.counts,
            "total": len(self.entries),
            "video_seconds": self.video_seconds,
            "video_seconds_to_generate": self.seconds_to_generate,
            "specs": [dict(s) for s in self.specs],
        }

    def to_json(self) -> dict[str, Any]:
        """Return the whole plan as one JSON-ready object (`runner plan --json`)."""
        return {**self.summary(), "requests": [e.to_json() for e in self.entries]}

    def iter_json(self) -> Iterator[str]:
        """Yield `to_json()` as text in pieces, one request per line.

        Streaming keeps a 100,000-request plan from becoming one huge string, and the
        C JSON encoder (no indent) keeps it fast.
        """
        head = json.dumps(self.summary(), indent=2, ensure_ascii=False)
        yield head[:-2] + ',\n  "requests": ['
        for i, entry in enumerate(self.entries):
            yield ("\n    " if i == 0 else ",\n    ") + json.dumps(
                entry.to_json(), ensure_ascii=False
            )
        yield ("\n  ]" if self.entries else "]") + "\n}\n"


def build_plan(
    specs: Sequence[LoadedSpec],
    output_root: Path,
    *,
    states: StatesReader = read_manifest_state,
    only: Sequence[tuple[str, str] | str] = (),
    force: bool = False,
    retry_failed: bool = False,
) -> Plan:
    """Join each spec's requests with its manifest state into a `Plan`.

    `only`, `force` and `retry_failed` mean what they mean for `runner run`; orphans are
    judged against every request of the spec, not just the selection.
    """
    entries: list[PlanEntry] = []
    summaries: list[Mapping[str, Any]] = []
    for spec in specs:
        folder = output_root / spec.name
        prefix = f"{folder}/"  # string joins: Path objects cost 100,000 times over
        known = states(folder)
        summaries.append(
            {
                "name": spec.name,
                "spec": spec.display,
                "folder": str(folder),
                "images": {
                    f"sha256:{sha}": _display(image.path) for sha, image in spec.images.items()
                },
            }
        )
        ids = {request.id for request in spec.requests}
        # Which recorded id made each output path, to explain a changed input.
        made_by = {
            state.output: rid for rid, state in known.items() if state.output and rid not in ids
        }
        for request in select(spec.requests, only) if only else spec.requests:
            state = known.get(request.id)
            status, reason = _status(request, state, folder, made_by, force, retry_failed)
            entries.append(
                PlanEntry(
                    id=request.id,
                    spec=spec.display,
                    spec_name=spec.name,
                    job=request.job,
                    status=status,
                    reason=reason,
                    output=prefix + request.output,
                    payload=request.body,
                    matrix=request.matrix,
                    request=request,
                )
            )
        for rid, state in known.items():
            if rid in ids:
                continue
            entries.append(
                PlanEntry(
                    id=rid,
                    spec=spec.display,
                    spec_name=spec.name,
                    job=state.job or "?",
                    status="orphaned",
                    reason="in the manifest, no longer produced by the spec",
                    output=str(folder / state.output) if state.output else "",
                    payload=state.body,
                    matrix=state.matrix,
                    request=None,
                )
            )
    return Plan(tuple(entries), tuple(summaries))


def _display(path: Path) -> str:
    """Return `path` relative to the working folder when it is inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _status(
    request: Request,
    state: StateLike | None,
    folder: Path,
    made_by: Mapping[str, str],
    force: bool,
    retry_failed: bool,
) -> tuple[str, str]:
    if state is None:
        previous = made_by.get(request.output)
        if previous is not None:
            return "new", f"changed input (this output was made by request {previous})"
        return "new", "new"
    status = state.status
    if status == "done":
        if force:
            return "new", "forced (--force regenerates it)"
        if not (folder / request.output).is_file():
            return "done", "done, but the file is missing — a run downloads it again"
        return "done", "done"
    if status == "failed":
        if retry_failed or force:
            return "new", "failed before — retried (--retry-failed)" if retry_failed else "forced"
        return (
            "failed",
            f"failed before: {state.reason or 'no reason recorded'} — use --retry-failed",
        )
    if status == "pending":
        return "pending", "submitted — a run polls it (never resubmits it)"
    if status == "unknown":
        return (
            "unknown",
            f"submission outcome unknown ({state.reason or 'connection lost'}) — not "
            "resubmitted unless --resubmit-unknown",
        )
    return status, state.reason or status
