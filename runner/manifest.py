"""The manifest: an append-only JSON Lines log of what happened to each request.

`outputs/<name>/manifest.jsonl` is the single source of truth for resume. Each line is
one complete JSON object `{"v": 1, "event": …, "id": …, "ts": …, …fields}`:

    submitting      intent, durable BEFORE the POST is sent; carries everything needed to
                    reproduce the request without the spec (spec, job, provider, model,
                    endpoint, body with images as sha256: refs, seed, matrix, output) and
                    the `client_request_id` sent with it (the key to the usage logs)
    submitted       the generation id; durable before anything else happens (`evidence`
                    says how it was learnt when not from the POST's answer: the usage logs)
    unknown         the POST's outcome is unknown (sent, then timeout / lost connection)
    completed       the API reported the generation done (the URL itself is not kept:
                    it is signed and expires; it is fetched again when needed)
    failed          with reason, stage (submit|generate|download|probe) and retryable
    downloaded      the video is in place: output, size, sha256, mtime_ns, video facts
                    (`source`: "api", or "store" / "local" for a free restore)
    adopted         a video already in place, taken over without any API call from the
                    lock file or its sidecar: the request's whole state (like `snapshot`)
    lost            a paid generation the provider no longer has (polls answer 404, or its
                    file is gone): listed, never paid for again without the user's say
    verified        the file's content was re-checked and its new mtime_ns recorded
    reset           back to pending if a generation id is known (poll, don't pay
                    again), otherwise forgotten
    forgotten       drop the request: the next run submits it anew (--force, a
                    user-approved resubmission of an unknown outcome, or an unknown outcome
                    the usage logs showed was never received: then with its `evidence`)
    orphan_removed  a request gone from the spec, whose files were removed
    snapshot        a request's whole folded state (written only by compaction)

Folding the events in order gives each request a `RequestState` whose status is
`pending` (has, or is about to get, a generation id: poll it, never resubmit), `done`,
`failed`, `lost` or `unknown` (a `submitting` with no `submitted` after it means the run
stopped after announcing the POST: the API may have accepted it, so it is never
resubmitted without evidence or the user's say-so).

Durability: each append is one `os.write` of complete lines on an `O_APPEND` descriptor
followed by `fsync`, so its cost does not depend on the batch size. `Manifest.group()`
batches several records into one write and one fsync; `submitting` and `submitted`
always flush at once, so nothing that money depends on waits in a buffer. During a run
(`Manifest.off_loop()`) the writes happen in a worker thread, one at a time, each taking
every record buffered by then, and each task awaits its record before acting on it (the
intent before the POST): the event loop never waits on an fsync. A write that
fails half-way (full disk) is truncated back, so the file keeps every complete line and
only complete lines. A crash can still leave a torn last line (or, after a power loss,
a zero-filled tail): loading ignores an unparseable tail, and `Manifest.open` truncates
it away before appending. An unparseable line followed by good ones is corruption and
is reported, not skipped.

Compaction: when the log holds more than 4 lines per live request and more than 1000
lines, `Manifest.open` rewrites it as one `snapshot` per request, atomically (temp file,
fsync, rename, fsync folder), under the lock, never per event.

Locking: `Manifest.open` holds `runner.lock.SpecLock` until `close()`; `read_state` takes
no lock (a concurrent append is either wholly visible or a torn tail, which is ignored).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import threading
import types
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from runner.clock import Clock, SystemClock
from runner.durable import fsync_dir, storage_error, write_atomic
from runner.errors import StorageError
from runner.layout import MANIFEST
from runner.lock import SpecLock
from runner.request import Request

MANIFEST_NAME = MANIFEST
FORMAT_VERSION = 1
COMPACT_MIN_LINES = 1000
COMPACT_LINES_PER_REQUEST = 4

Status = Literal["pending", "done", "failed", "unknown", "lost"]
Stage = Literal["submit", "generate", "download", "probe"]

EVENTS = frozenset(
    {
        "submitting",
        "submitted",
        "unknown",
        "completed",
        "failed",
        "downloaded",
        "adopted",
        "lost",
        "verified",
        "reset",
        "forgotten",
        "orphan_removed",
        "snapshot",
    }
)

INTERRUPTED_SUBMIT = (
    "the run stopped after sending the request and before recording its generation id; "
    "the API may have accepted (and billed) it"
)


@dataclass(frozen=True)
class RequestState:
    """What the manifest knows about one request, folded from its events."""

    id: str
    status: Status
    generation_id: str | None = None
    spec: str | None = None  # the spec file as the user named it
    spec_name: str | None = None
    job: str | None = None
    provider: str | None = None
    model: str | None = None
    endpoint: str | None = None
    body: Mapping[str, Any] = field(default_factory=dict)  # images as sha256: refs
    images: Mapping[str, str] = field(default_factory=dict)  # "sha256:…" -> display path
    seed: int | None = None
    seed_derived: bool = False
    matrix: Mapping[str, Any] = field(default_factory=dict)
    output: str | None = None  # POSIX path relative to the spec's output folder
    reason: str | None = None  # why failed / unknown
    stage: Stage | None = None  # where it failed
    retryable: bool | None = None
    size: int | None = None
    sha256: str | None = None
    mtime_ns: int | None = None
    video: Mapping[str, Any] | None = None  # duration, width, height, codec
    client_request_id: str | None = None  # sent with the latest POST (X-Client-Request-Id)
    attempts: int = 0  # POSTs announced for this request (`submitting` records)
    requested_at: str | None = None  # when the latest POST was announced (ISO-8601 UTC)
    cost: Mapping[str, Any] | None = None  # what the provider charged: {"usd", "credits"}
    submitted_at: str | None = None  # ISO-8601 UTC
    completed_at: str | None = None
    downloaded_at: str | None = None
    download_seconds: float | None = None

    @property
    def generation_seconds(self) -> float | None:
        """Seconds from submission to the API reporting completion, when both are known."""
        if self.submitted_at is None or self.completed_at is None:
            return None
        return (parse_ts(self.completed_at) - parse_ts(self.submitted_at)).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        """Return the state as plain JSON-ready data (for `status --json`, snapshots)."""
        data = asdict(self)
        data["body"] = dict(self.body)
        data["images"] = dict(self.images)
        data["matrix"] = dict(self.matrix)
        data["video"] = None if self.video is None else dict(self.video)
        data["cost"] = None if self.cost is None else dict(self.cost)
        return data


_STATE_FIELDS = frozenset(RequestState.__dataclass_fields__)
_SUBMIT_FIELDS = (
    "spec",
    "spec_name",
    "job",
    "provider",
    "model",
    "endpoint",
    "body",
    "images",
    "seed",
    "seed_derived",
    "matrix",
    "output",
    "client_request_id",
)


def format_ts(epoch: float) -> str:
    """Format epoch seconds as ISO-8601 UTC with milliseconds."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_ts(text: str) -> datetime:
    """Parse a timestamp written by `format_ts`."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --------------------------------------------------------------------------- folding


Fields = dict[str, Any]  # a request's state while folding: RequestState's fields


def fold(states: dict[str, Fields], record: Mapping[str, Any]) -> None:
    """Apply one manifest record to `states` (request id -> fields) in place.

    Folding works on plain dicts and builds each `RequestState` once at the end
    (`freeze`): copying a frozen dataclass per event made loading 10,000 requests 2x slower.
    """
    event = record["event"]
    rid = record["id"]
    ts = record.get("ts")
    if event in ("snapshot", "adopted"):
        states[rid] = {k: v for k, v in record.items() if k in _STATE_FIELDS}
        states[rid]["id"] = rid
        return
    if event == "submitting":
        attempts = states.get(rid, {}).get("attempts", 0) + 1
        current = {k: record[k] for k in _SUBMIT_FIELDS if k in record}
        current.update(
            id=rid, status="unknown", reason=INTERRUPTED_SUBMIT, attempts=attempts,
            requested_at=ts,
        )
        states[rid] = current
        return
    if event in ("forgotten", "orphan_removed"):
        states.pop(rid, None)
        return
    # An event for a request with no intent recorded (a hand-edited manifest) still
    # counts rather than being lost; it cannot happen through `Manifest`.
    current = states.setdefault(rid, {"id": rid, "status": "pending"})
    if event == "submitted":
        current.update(
            status="pending",
            generation_id=record["generation_id"],
            submitted_at=record.get("submitted_at", ts),
            reason=None,
        )
        if record.get("cost") is not None:
            current["cost"] = record["cost"]
    elif event == "unknown":
        current.update(status="unknown", reason=record.get("reason"))
    elif event == "completed":
        current.update(status="pending", completed_at=ts)
    elif event == "failed":
        current.update(
            status="failed",
            reason=record.get("reason"),
            stage=record.get("stage"),
            retryable=record.get("retryable"),
        )
    elif event == "downloaded":
        current.update(
            status="done",
            output=record.get("output", current.get("output")),
            size=record["size"],
            sha256=record["sha256"],
            mtime_ns=record["mtime_ns"],
            video=record.get("video"),
            downloaded_at=ts,
            download_seconds=record.get("download_seconds"),
            reason=None,
            stage=None,
            retryable=None,
        )
    elif event == "lost":
        current.update(status="lost", reason=record.get("reason"), stage=None, retryable=None)
    elif event == "verified":
        current["mtime_ns"] = record["mtime_ns"]
    elif event == "reset":
        if current.get("generation_id") is None:
            del states[rid]
        else:
            current.update(status="pending", reason=None, stage=None, retryable=None)
    else:  # pragma: no cover - guarded by EVENTS in _parse_line
        msg = f"unhandled manifest event {event!r}"
        raise AssertionError(msg)


def freeze(fields: Fields) -> RequestState:
    """Build the immutable state of one request from its folded fields."""
    return RequestState(**fields)


@dataclass(frozen=True)
class _Loaded:
    """A manifest file read from disk."""

    fields: dict[str, Fields]  # folded, still mutable: what appends fold into
    states: dict[str, RequestState]
    lines: int  # complete, valid lines
    good_bytes: int  # length of the valid prefix; anything after it is a torn tail
    total_bytes: int


def _parse_line(raw: bytes, path: Path, lineno: int) -> dict[str, Any] | None:
    """Return the record on one line, or None when the line is not a valid record."""
    try:
        record = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(record, dict) or "event" not in record or "id" not in record:
        return None
    if record.get("v") != FORMAT_VERSION:
        msg = (
            f"{path}:{lineno}: manifest format v{record.get('v')} is not v{FORMAT_VERSION} — "
            f"use the runner version that wrote it"
        )
        raise StorageError(msg)
    if record["event"] not in EVENTS:
        msg = f"{path}:{lineno}: unknown manifest event {record['event']!r}"
        raise StorageError(msg)
    return record


def _load(path: Path) -> _Loaded:
    """Read and fold the manifest at `path`, tolerating a torn tail."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return _Loaded({}, {}, 0, 0, 0)
    except OSError as exc:
        msg = f"cannot read {path}: {exc.strerror} — check its permissions"
        raise StorageError(msg) from exc
    folded: dict[str, Fields] = {}
    lines = 0
    offset = 0
    bad_at: tuple[int, int] | None = None  # (line number, byte offset) of the first bad line
    lineno = 0
    while offset < len(data):
        end = data.find(b"\n", offset)
        complete = end != -1
        raw = data[offset : end if complete else len(data)]
        lineno += 1
        record = _parse_line(raw, path, lineno) if complete else None
        if record is None:
            if complete and not raw.strip():
                pass  # a blank line (a human's edit) is harmless anywhere
            elif bad_at is None:
                bad_at = (lineno, offset)  # fine only as a torn tail: no good line may follow
        else:
            if bad_at is not None:
                msg = (
                    f"{path}:{bad_at[0]}: not a valid manifest record, but valid records "
                    f"follow it — repair or delete that line, then run again"
                )
                raise StorageError(msg)
            fold(folded, record)
            lines += 1
        offset = end + 1 if complete else len(data)
    good = bad_at[1] if bad_at is not None else len(data)
    states = {rid: freeze(fields) for rid, fields in folded.items()}
    return _Loaded(folded, states, lines, good, len(data))


def read_state(folder: Path) -> dict[str, RequestState]:
    """Return each request's folded state from `folder`/manifest.jsonl (no lock taken)."""
    return _load(folder / MANIFEST_NAME).states


# --------------------------------------------------------------------------- writing


def _encode(record: Mapping[str, Any]) -> bytes:
    """Encode one record as one complete UTF-8 JSON line."""
    return (json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def _check_body(body: Mapping[str, Any]) -> None:
    """Refuse to write image bytes into the manifest (they belong in sha256: refs)."""
    for key, value in body.items():
        if isinstance(value, str) and value.startswith("data:"):
            msg = f"body field {key!r} holds a data: URI; record the sha256: reference instead"
            raise ValueError(msg)


class Written:
    """What a record method returns: awaiting it returns once the record is durable.

    Outside `Manifest.off_loop()` the record already is (the method wrote it, or its
    group will), so synchronous callers ignore it; inside, the caller must await it.
    """

    __slots__ = ("_manifest", "_seq")

    def __init__(self, manifest: Manifest | None, seq: int = 0) -> None:
        self._manifest = manifest
        self._seq = seq

    def __await__(self) -> Generator[Any, None, None]:
        if self._manifest is not None:
            yield from self._manifest.commit(self._seq).__await__()


_WRITTEN = Written(None)


class Manifest:
    """The locked, appendable manifest of one spec's output folder."""

    def __init__(self, folder: Path, lock: SpecLock, fd: int, loaded: _Loaded, clock: Clock):
        self.folder = folder
        self.path = folder / MANIFEST_NAME
        self._lock = lock
        self._fd: int | None = fd
        self._size = loaded.good_bytes
        self._lines = loaded.lines
        self._fields = loaded.fields
        self._states = loaded.states
        self._clock = clock
        self._mutex = threading.Lock()  # appends may come from worker threads
        self._group_depth = 0
        self._off_loop = False  # inside `off_loop()`: records are written by `commit()`
        self._appended = 0  # records appended so far (numbers them for `commit`)
        self._durable = 0  # records written and folded so far (when written off the loop)
        self._writing: asyncio.Future[None] | None = None  # the one write out at a time
        self._buffer: list[dict[str, Any]] = []
        self._observers: list[Callable[[set[str]], None]] = []

    # -- lifecycle

    @classmethod
    def open(cls, folder: Path, *, clock: Clock | None = None, compact: bool = True) -> Manifest:
        """Lock `folder`, load its manifest, repair a torn tail and compact if due."""
        clock = clock or SystemClock()
        try:
            if not folder.is_dir():
                folder.mkdir(parents=True)
                fsync_dir(folder.parent)  # the new folder's name must survive a crash
        except OSError as exc:
            raise storage_error(exc, folder) from exc
        lock = SpecLock.acquire(folder, now=clock.wall())
        try:
            path = folder / MANIFEST_NAME
            loaded = _load(path)
            if compact and _compaction_due(loaded):
                _compact(path, loaded.states, clock)
                loaded = _load(path)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
                if loaded.good_bytes < loaded.total_bytes:
                    os.ftruncate(fd, loaded.good_bytes)  # drop the torn tail before appending
                    os.fsync(fd)
                if loaded.total_bytes == 0:
                    fsync_dir(folder)  # the new file's name must survive a crash too
            except OSError as exc:
                raise storage_error(exc, path) from exc
        except BaseException:
            lock.release()
            raise
        return cls(folder, lock, fd, loaded, clock)

    def close(self) -> None:
        """Flush any grouped records, close the file and release the lock."""
        try:
            if self._buffer:
                self._flush()
        finally:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            self._lock.release()

    def __enter__(self) -> Manifest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def state(self) -> Mapping[str, RequestState]:
        """The folded state of every request, as durable on disk (read-only view)."""
        return types.MappingProxyType(self._states)

    @property
    def lines(self) -> int:
        """Complete records in the file."""
        return self._lines

    # -- group commit

    @contextlib.contextmanager
    def group(self) -> Iterator[None]:
        """Batch the records written inside into one write and one fsync at exit.

        Records inside a group are not durable (nor in `.state`) until the group ends;
        act on them only after it. `submitting` and `submitted` flush immediately anyway.
        """
        self._group_depth += 1
        try:
            yield
        finally:
            self._group_depth -= 1
            if self._group_depth == 0 and self._buffer and not self._off_loop:
                self._flush()

    # -- one method per event

    def record_submitting(
        self,
        request: Request,
        images: Mapping[str, str] | None = None,
        *,
        client_request_id: str | None = None,
    ) -> Written:
        """Record the intent to POST `request`; returns once it is durable."""
        _check_body(request.body)
        extra: dict[str, Any] = {}
        if client_request_id is not None:
            extra["client_request_id"] = client_request_id
        return self._append(
            "submitting",
            request.id,
            durable_now=True,
            spec=request.spec,
            spec_name=request.spec_name,
            job=request.job,
            provider=request.provider,
            model=request.model,
            endpoint=request.endpoint,
            body=dict(request.body),
            images=dict(images or {}),
            seed=request.seed,
            seed_derived=request.seed_derived,
            matrix=dict(request.matrix),
            output=request.output,
            **extra,
        )

    def record_submitted(
        self,
        rid: str,
        generation_id: str,
        *,
        cost: Mapping[str, Any] | None = None,
        evidence: Mapping[str, Any] | None = None,
        submitted_at: str | None = None,
    ) -> Written:
        """Record the generation id the API returned (or the usage logs named); durable."""
        extra: dict[str, Any] = {}
        if cost is not None:
            extra["cost"] = dict(cost)
        if evidence is not None:
            extra["evidence"] = dict(evidence)
        if submitted_at is not None:
            extra["submitted_at"] = submitted_at
        return self._append(
            "submitted", rid, durable_now=True, generation_id=generation_id, **extra
        )

    def record_unknown(self, rid: str, reason: str) -> Written:
        """Record that a POST's outcome is unknown (never resubmitted automatically)."""
        return self._append("unknown", rid, durable_now=True, reason=reason)

    def record_completed(self, rid: str) -> Written:
        """Record that the API reports the generation finished."""
        return self._append("completed", rid)

    def record_failed(self, rid: str, reason: str, *, stage: Stage, retryable: bool) -> Written:
        """Record a failure at `stage`, with the reason a user will read."""
        return self._append("failed", rid, reason=reason, stage=stage, retryable=retryable)

    def record_downloaded(
        self,
        rid: str,
        *,
        output: str,
        size: int,
        sha256: str,
        mtime_ns: int,
        video: Mapping[str, Any],
        download_seconds: float,
        source: str = "api",
    ) -> Written:
        """Record a verified video in place (after rename and folder fsync)."""
        return self._append(
            "downloaded",
            rid,
            output=output,
            size=size,
            sha256=sha256,
            mtime_ns=mtime_ns,
            video=dict(video),
            download_seconds=round(download_seconds, 3),
            source=source,
        )

    def record_adopted(self, state: RequestState, source: str) -> Written:
        """Take over a request's whole state from the lock file or a video's sidecar."""
        _check_body(state.body)
        data = state.to_dict()
        data.pop("id")
        return self._append("adopted", state.id, durable_now=True, source=source, **data)

    def record_lost(self, rid: str, reason: str) -> Written:
        """Record that the provider no longer has this paid generation (or its file)."""
        return self._append("lost", rid, durable_now=True, reason=reason)

    def record_verified(self, rid: str, mtime_ns: int) -> Written:
        """Record that the file's content still matches, under a new mtime."""
        return self._append("verified", rid, mtime_ns=mtime_ns)

    def record_reset(self, rid: str, reason: str) -> Written:
        """Send a request back to pending (poll its generation) or, without one, to new."""
        return self._append("reset", rid, reason=reason)

    def record_forgotten(
        self, rid: str, reason: str, *, evidence: Mapping[str, Any] | None = None
    ) -> Written:
        """Drop a request so the next run submits it anew (with the evidence that allows it)."""
        extra: dict[str, Any] = {} if evidence is None else {"evidence": dict(evidence)}
        return self._append("forgotten", rid, reason=reason, **extra)

    def record_orphan_removed(self, rid: str, output: str | None) -> Written:
        """Record that a request gone from the spec was removed with its files."""
        return self._append("orphan_removed", rid, output=output)

    # -- internals

    def _append(
        self, event: str, rid: str, *, durable_now: bool = False, **fields: Any
    ) -> Written:
        record: dict[str, Any] = {
            "v": FORMAT_VERSION,
            "event": event,
            "id": rid,
            "ts": format_ts(self._clock.wall()),
        }
        record.update(fields)
        with self._mutex:
            self._buffer.append(record)
            self._appended += 1
            seq = self._appended
        if self._off_loop:
            return Written(self, seq)  # the caller awaits it: written in a thread
        if durable_now or self._group_depth == 0:
            self._flush()
        return _WRITTEN

    def _flush(self) -> None:
        """Write the buffered records as one write, fsync, then fold them into `.state`."""
        with self._mutex:  # held from write to fold: the state follows the file's order
            records, self._buffer = self._buffer, []
            if not records:
                return
            changed = self._fold(records, self._write(records))
        self._notify(changed)

    def _write(self, records: list[dict[str, Any]]) -> bytes:
        """Append `records` as one write and fsync them; on failure leave only what was
        durable before (called with `_mutex` held, or from the one writing thread)."""
        if self._fd is None:
            msg = "the manifest is closed"
            raise RuntimeError(msg)
        data = b"".join(_encode(r) for r in records)
        try:
            view = memoryview(data)
            while view:  # one write in practice; a short write is finished or undone
                view = view[os.write(self._fd, view) :]
            os.fsync(self._fd)
        except OSError as exc:
            # Leave only complete lines behind: cut back to what was durable before.
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._size)
                os.fsync(self._fd)
            raise storage_error(exc, self.path) from exc
        return data

    def _fold(self, records: list[dict[str, Any]], data: bytes) -> set[str]:
        """Fold records just made durable into `.state` (under `_mutex`); return their ids."""
        self._size += len(data)
        self._lines += len(records)
        for record in records:
            fold(self._fields, record)
        changed = {record["id"] for record in records}
        for rid in changed:
            if rid in self._fields:
                self._states[rid] = freeze(self._fields[rid])
            else:
                self._states.pop(rid, None)
        return changed

    def _notify(self, changed: set[str]) -> None:
        for observer in self._observers:  # outside the mutex: an observer may write files
            observer(changed)

    # -- writing off the event loop

    @contextlib.asynccontextmanager
    async def off_loop(self) -> AsyncIterator[None]:
        """Write records in a worker thread while the event loop runs on (a run's workers).

        Inside, a record method buffers its record and returns a `Written` that the
        caller awaits: it resolves once the record is durable and folded into `.state`.
        Records that tasks append while a write is out go together in the next one, so
        a wave of 40 generations ending at once costs a few fsyncs, not 40 of them, and
        no fsync (~4 ms here) stops every other request's polls and POSTs. At exit every
        record is durable.
        """
        self._off_loop = True
        try:
            yield
        finally:
            try:
                await self.commit()
            finally:
                self._off_loop = False
                if self._buffer:  # a write failed at the end: try once more, in line
                    self._flush()

    async def commit(self, upto: int | None = None) -> None:
        """Return once the records appended so far (or up to number `upto`) are durable.

        One write is out at a time; it takes every record buffered when it starts. A
        failed write raises its storage error in every task waiting on it.
        """
        target = self._appended if upto is None else upto
        while self._durable < target:
            if self._writing is None:
                self._writing = asyncio.ensure_future(self._write_batch())
            # Shielded: a waiter cancelled (Ctrl-C) must not cancel others' records.
            await asyncio.shield(self._writing)

    async def _write_batch(self) -> None:
        try:
            with self._mutex:
                records, self._buffer = self._buffer, []
                upto = self._appended
            if records:
                data = await asyncio.to_thread(self._write, records)
                with self._mutex:
                    changed = self._fold(records, data)
                self._notify(changed)
            self._durable = upto
        finally:
            self._writing = None

    def observe(self, observer: Callable[[set[str]], None]) -> None:
        """Call `observer(ids)` after every durable write, with the ids it changed."""
        self._observers.append(observer)


def _compaction_due(loaded: _Loaded) -> bool:
    per_request = COMPACT_LINES_PER_REQUEST * max(1, len(loaded.states))
    return loaded.lines > COMPACT_MIN_LINES and loaded.lines > per_request


def _compact(path: Path, states: Mapping[str, RequestState], clock: Clock) -> None:
    """Atomically replace the log with one `snapshot` line per live request."""
    ts = format_ts(clock.wall())
    parts = []
    for state in states.values():
        data = state.to_dict()
        rid = data.pop("id")
        record = {"v": FORMAT_VERSION, "event": "snapshot", "id": rid, "ts": ts, **data}
        parts.append(_encode(record))
    write_atomic(path, b"".join(parts))


# --------------------------------------------------------------------------- verifying


@dataclass(frozen=True)
class Verification:
    """Which finished videos are still what the manifest says they are."""

    ok: tuple[str, ...]  # ids whose file matches
    missing: tuple[str, ...]  # ids whose file is gone
    changed: tuple[str, ...]  # ids whose file's size or content differs
    touched: Mapping[str, int]  # ids whose content matched under a new mtime_ns

    @property
    def refetch(self) -> tuple[str, ...]:
        """Ids to fetch again (poll the generation for a fresh URL, download)."""
        return self.missing + self.changed


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Return the hex sha256 of a file, reading it in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify(states: Mapping[str, RequestState], folder: Path, *, full: bool = False) -> Verification:
    """Check every done request's file against its recorded size and checksum.

    Fast path (default), like git's index: a file whose size and mtime_ns both match the
    record is trusted without reading it, so a nightly no-op over 10,000 videos costs
    10,000 `stat`s instead of rehashing gigabytes. A size mismatch is a change without
    reading; a same-size file with a new mtime is rehashed, and reported in `touched`
    when its content still matches (record it with `Manifest.record_verified` so it is
    not rehashed every night after a `git checkout`). The trade-off: an edit that keeps
    both size and mtime_ns (deliberately restored mtime, or coarse-timestamp file
    systems) goes unnoticed; `full=True` rehashes everything and catches it.
    """
    ok: list[str] = []
    missing: list[str] = []
    changed: list[str] = []
    touched: dict[str, int] = {}
    for rid, state in states.items():
        if state.status != "done" or state.output is None:
            continue
        path = folder / state.output
        try:
            st = path.stat()
        except FileNotFoundError:
            missing.append(rid)
            continue
        if st.st_size != state.size:
            changed.append(rid)
        elif not full and st.st_mtime_ns == state.mtime_ns:
            ok.append(rid)
        elif sha256_file(path) == state.sha256:
            ok.append(rid)
            if st.st_mtime_ns != state.mtime_ns:
                touched[rid] = st.st_mtime_ns
        else:
            changed.append(rid)
    return Verification(tuple(ok), tuple(missing), tuple(changed), types.MappingProxyType(touched))
