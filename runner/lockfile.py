"""The lock file: the record of a spec's paid work, committed to git beside the spec.

`specs/dragon.yaml.lock` (the `package-lock.json` / `dvc.lock` idea). The manifest in
`outputs/` is the local journal a run resumes from; the lock is what travels with the
repository to a teammate's clone or a fresh CI machine, so a request paid for once is
never paid for again there: its video is restored from the store, or fetched again from
its generation, or listed as lost.

    # runner lock file, format 1 — …                       a constant header line
    {"generation_id": "…", "id": "…", "output": "…", …}     one JSON object per request

One line per request that money was spent on, sorted by output path then id, keys sorted,
no timestamps that change (only `requested_at` of an unknown outcome, written once) and no
absolute paths (images are paths relative to the lock's folder). Its `state`:

    done      the video exists: sha256, size and probed facts say which bytes it is
    pending   accepted (generation id known), not yet downloaded: poll it, never resubmit
    unknown   a POST went out without an answer: its `client_request_id` lets the usage
              logs settle it; never resubmitted blindly
    lost      paid, but the provider no longer has it (`reason`): regenerated only when asked

Deterministic: the same results give the same bytes, so an unchanged re-run leaves the
file byte-identical. Merging: two branches that add different requests add different
lines; the `merge=union` attribute (which the runner writes into the folder's
`.gitattributes` when it creates a lock inside a git work tree) keeps both sides' lines,
and the reader takes lines in any order and sorts them again on the next write.
Writing is atomic (temp file, fsync, rename); a run rewrites the lock as results land,
at most as often as keeps the rewriting under a tenth of the run's time, and always when
it ends; the manifest holds every result meanwhile, and the next run brings the lock up
to date from it.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NoReturn

from runner.durable import read_regular, write_atomic
from runner.errors import Problem, SpecError
from runner.manifest import RequestState

FORMAT = 1
HEADER = (
    f"# runner lock file, format {FORMAT} — the paid results of the spec beside it, one JSON "
    "object per line. Written by `runner run`; commit it, do not edit it.\n"
)
GITATTRIBUTES_RULES = ("*.yaml.lock merge=union", "*.yml.lock merge=union")
CONFLICT_MARKERS = ("<<<<<<<", "=======", ">>>>>>>", "|||||||")
MAX_LOCK_BYTES = 2_000_000_000  # a million requests' lines fit; anything bigger is not a lock
FLUSH_SHARE = 10  # rewrite at most once per 10x the last rewrite's duration (<= 10% of time)

LockState = Literal["done", "pending", "unknown", "lost"]
LOCK_STATES = ("done", "pending", "unknown", "lost")
_RANK = {"done": 3, "lost": 2, "pending": 1, "unknown": 0}  # which line of a merge wins
_REQUIRED = ("id", "state", "output", "provider", "model", "endpoint", "payload")


@dataclass(frozen=True)
class LockEntry:
    """One request's paid result as the lock file records it."""

    id: str
    state: LockState
    output: str  # POSIX path relative to the spec's output folder
    provider: str
    model: str
    endpoint: str
    payload: Mapping[str, Any]  # the POST body, local images as sha256: references
    images: Mapping[str, str] = field(default_factory=dict)  # ref -> path from the lock's folder
    seed: int | None = None
    seed_derived: bool = False
    generation_id: str | None = None
    client_request_id: str | None = None
    requested_at: str | None = None  # unknown outcomes only: when the POST went out
    sha256: str | None = None
    size: int | None = None
    video: Mapping[str, Any] | None = None
    cost: Mapping[str, Any] | None = None
    reason: str | None = None  # lost only

    def to_line(self) -> str:
        """Return the entry as one canonical JSON line (None, false and {} fields left out)."""
        # Field by field, not dataclasses.asdict: its deep copy cost 0.4 ms a line.
        data = {name: value for name in _FIELDS if (value := getattr(self, name)) is not None}
        if not data.get("seed_derived"):
            data.pop("seed_derived", None)
        if not data.get("images"):
            data.pop("images", None)
        return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(", ", ": "))


_FIELDS = tuple(LockEntry.__dataclass_fields__)


def entry_from_state(state: RequestState, lock_dir: Path) -> LockEntry | None:
    """Return the lock entry of a manifest state, or None when nothing was paid."""
    lock_state: LockState
    if state.status == "done":
        lock_state = "done"
    elif state.status == "lost":
        lock_state = "lost"
    elif state.status == "unknown":
        lock_state = "unknown"
    elif state.generation_id is not None and state.status in ("pending", "failed"):
        if state.status == "failed" and state.stage not in ("download", "probe"):
            return None  # a failed generation is not billed
        lock_state = "pending"  # accepted and paid; its video is still to be fetched
    else:
        return None
    if state.output is None or state.provider is None or state.model is None:
        return None
    done = lock_state == "done"
    return LockEntry(
        id=state.id,
        state=lock_state,
        output=state.output,
        provider=state.provider,
        model=state.model,
        endpoint=state.endpoint or "",
        payload=dict(state.body),
        images={ref: _relative(path, lock_dir) for ref, path in state.images.items()},
        seed=state.seed,
        seed_derived=state.seed_derived,
        generation_id=state.generation_id,
        client_request_id=state.client_request_id if lock_state == "unknown" else None,
        requested_at=state.requested_at if lock_state == "unknown" else None,
        sha256=state.sha256 if done or lock_state == "lost" else None,
        size=state.size if done or lock_state == "lost" else None,
        video=dict(state.video) if done and state.video else None,
        cost=dict(state.cost) if state.cost else None,
        reason=state.reason if lock_state == "lost" else None,
    )


def state_from_entry(
    entry: LockEntry, *, spec: str, spec_name: str, lock_dir: Path
) -> RequestState:
    """Return the manifest state a lock entry stands for (to adopt or resume it)."""
    status = {"done": "done", "pending": "pending", "unknown": "unknown", "lost": "lost"}
    return RequestState(
        id=entry.id,
        status=status[entry.state],  # type: ignore[arg-type]
        generation_id=entry.generation_id,
        spec=spec,
        spec_name=spec_name,
        provider=entry.provider,
        model=entry.model,
        endpoint=entry.endpoint,
        body=dict(entry.payload),
        images={ref: _shown(lock_dir / path) for ref, path in entry.images.items()},
        seed=entry.seed,
        seed_derived=entry.seed_derived,
        output=entry.output,
        reason=entry.reason,
        client_request_id=entry.client_request_id,
        requested_at=entry.requested_at,
        size=entry.size,
        sha256=entry.sha256,
        video=dict(entry.video) if entry.video else None,
        cost=dict(entry.cost) if entry.cost else None,
    )


def _relative(path: str, lock_dir: Path) -> str:
    """Return an image path (as the manifest shows it) relative to the lock's folder."""
    return Path(os.path.relpath(Path(path).resolve(), lock_dir.resolve())).as_posix()


def _shown(path: Path) -> str:
    """Return `path` relative to the working folder when below it (as the manifest shows)."""
    resolved = Path(os.path.normpath(path.absolute()))
    try:
        return resolved.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return resolved.as_posix()


# ------------------------------------------------------------------------------ reading


def read_lock(path: Path) -> dict[str, LockEntry]:
    """Return the entries of the lock file at `path` (none when it does not exist).

    Raises `SpecError` with one `file:line:col` problem for a conflicted, hand-broken or
    unreadable lock: paid results must never be guessed at.
    """
    try:
        data = read_regular(path, MAX_LOCK_BYTES)
        text = data.decode("utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        _fail(path, 1, f"cannot read the lock file ({exc}) — restore it from git")
    if len(data) > MAX_LOCK_BYTES:
        _fail(path, 1, f"the lock file is over {MAX_LOCK_BYTES:,} bytes — is it a lock file?")
    entries: dict[str, LockEntry] = {}
    lines: dict[str, int] = {}
    for lineno, written in enumerate(text.splitlines(), 1):
        line = written.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(CONFLICT_MARKERS):
            _fail(
                path,
                lineno,
                "the lock file has a merge conflict — keep the lines of both sides (each is "
                "its own request) and delete the <<<<<<< ======= >>>>>>> markers; add "
                "'*.yaml.lock merge=union' to .gitattributes so git merges locks by itself",
            )
        entry = _parse(path, lineno, line)
        other = entries.get(entry.id)
        if other is not None and other != entry:
            entry = _merge(path, lines[entry.id], lineno, other, entry)
        entries[entry.id] = entry
        lines[entry.id] = lineno
    return entries


def _parse(path: Path, lineno: int, line: str) -> LockEntry:
    try:
        data = json.loads(line)
    except ValueError as exc:
        _fail(path, lineno, f"not a JSON object ({exc.args[0]}) — restore the lock from git")
    if not isinstance(data, dict):
        _fail(path, lineno, "each line is one JSON object — restore the lock from git")
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        _fail(path, lineno, f"an entry lacks {', '.join(missing)} — restore the lock from git")
    if data["state"] not in LOCK_STATES:
        known = ", ".join(LOCK_STATES)
        _fail(path, lineno, f"unknown state {data['state']!r} — use one of {known}")
    fields = set(LockEntry.__dataclass_fields__)
    unknown = sorted(set(data) - fields)
    if unknown:
        _fail(path, lineno, f"unknown field {unknown[0]!r} — a newer runner wrote it; upgrade")
    if data["state"] == "done" and not (
        isinstance(data.get("sha256"), str) and isinstance(data.get("size"), int)
    ):
        _fail(path, lineno, "a done entry needs its sha256 and size — restore the lock from git")
    if data["state"] == "pending" and not data.get("generation_id"):
        _fail(path, lineno, "a pending entry needs its generation_id — restore the lock from git")
    try:
        return LockEntry(**data)
    except TypeError as exc:
        _fail(path, lineno, f"malformed entry ({exc}) — restore the lock from git")


def _merge(path: Path, first: int, second: int, a: LockEntry, b: LockEntry) -> LockEntry:
    """Return the line to keep of two for one request (after a union merge of branches)."""
    if a.state == b.state == "done" and a.sha256 != b.sha256:
        _fail(
            path,
            second,
            f"request {a.id} has two different videos (lines {first} and {second}) — both "
            "branches paid for it; keep the line of the one you want",
        )
    return a if _RANK[a.state] >= _RANK[b.state] else b


def _fail(path: Path, line: int, message: str) -> NoReturn:
    raise SpecError([Problem(str(path), line, 1, message)])


# ------------------------------------------------------------------------------ writing


def render(entries: Iterable[LockEntry]) -> bytes:
    """Return the lock file's bytes for `entries`: header, then lines by output then id."""
    ordered = sorted(entries, key=lambda e: (e.output, e.id))
    return (HEADER + "".join(e.to_line() + "\n" for e in ordered)).encode("utf-8")


class LockWriter:
    """Keep one spec's lock file up to date with its manifest during a run."""

    def __init__(self, path: Path, *, clock: Any = time.monotonic) -> None:
        self.path = path
        self.entries: dict[str, LockEntry] = read_lock(path)
        try:
            self._written = path.read_bytes()
        except FileNotFoundError:
            self._written = b""
        self._clock = clock
        self._mutex = threading.Lock()
        self._dirty = False
        self._last_flush = float("-inf")
        self._background: ThreadPoolExecutor | None = None  # inside `in_background()`
        self._queued: Future[None] | None = None  # the rewrite handed to it last
        self._last_cost = 0.0

    def put(self, state: RequestState, *, catch_up: bool = False) -> None:
        """Take a request's new manifest state (ignored when nothing was paid).

        `catch_up` (a run bringing the lock up to date from a manifest it did not just
        write): a done line in the lock is newer than a manifest that has less, as when
        a restored cache predates the lock a teammate committed, so it is kept.
        """
        entry = entry_from_state(state, self.path.parent)
        with self._mutex:
            held = self.entries.get(state.id)
            if catch_up and held is not None and held.state == "done" and (
                entry is None or entry.state != "done"
            ):
                return
            if entry is not None and held != entry:
                self.entries[state.id] = entry
                self._dirty = True

    def forget(self, rid: str) -> None:
        """Drop the line of a request the manifest forgot, unless it records a video.

        A POST refused without effect leaves nothing paid; a done (or lost) result stays
        until a new one replaces it (`--force` regenerates, and may not get that far).
        """
        with self._mutex:
            entry = self.entries.get(rid)
            if entry is not None and entry.state in ("pending", "unknown"):
                del self.entries[rid]
                self._dirty = True

    def remove(self, rid: str) -> None:
        """Drop a request's line (its files were pruned)."""
        with self._mutex:
            if self.entries.pop(rid, None) is not None:
                self._dirty = True

    def maybe_flush(self) -> None:
        """Rewrite the file if changed, unless the last rewrite was too recent to repeat."""
        if self._dirty and self._clock() - self._last_flush >= FLUSH_SHARE * self._last_cost:
            if self._background is None:
                self.flush()
                return
            queued = self._queued
            if queued is not None and queued.done():
                queued.result()  # a rewrite that failed stops the run, as one in line would
            if queued is None or queued.done():
                self._queued = self._background.submit(self.flush)

    @contextlib.contextmanager
    def in_background(self) -> Iterator[None]:
        """Rewrite the file in one worker thread while inside (a run's workers), so its
        two fsyncs never hold up the event loop; rewrites stay one at a time, in order."""
        self._background = ThreadPoolExecutor(1, thread_name_prefix="lockfile")
        try:
            yield
        finally:
            pool, self._background = self._background, None
            pool.shutdown(wait=True)
            queued, self._queued = self._queued, None
        if queued is not None:
            queued.result()  # on a clean exit only: an error already on its way wins
        self.flush()  # what came in while the last rewrite was out

    def flush(self, *, final: bool = False) -> None:
        """Rewrite the file atomically if its content changed.

        `final` (the end of a run) also puts back in order a lock that git merged line by
        line, so the committed file is canonical again.
        """
        with self._mutex:
            if not (self._dirty or (final and self._written)):
                return
            data = render(self.entries.values())
            self._dirty = False
        if data == self._written or (not self.entries and not self._written):
            return  # unchanged, or nothing paid yet: no lock file for an empty record
        started = self._clock()
        creating = not self.path.exists()
        write_atomic(self.path, data)
        self._written = data
        if creating:
            ensure_union_merge(self.path.parent)
        self._last_flush = self._clock()
        self._last_cost = self._last_flush - started


def ensure_union_merge(folder: Path) -> None:
    """Add the `merge=union` rule for locks to `folder/.gitattributes` inside a git tree."""
    if not _in_git_tree(folder):
        return
    attributes = folder / ".gitattributes"
    try:
        current = attributes.read_text(encoding="utf-8")
    except FileNotFoundError:
        current = ""
    except OSError:
        return  # an unreadable .gitattributes is the user's; leave it alone
    missing = [rule for rule in GITATTRIBUTES_RULES if rule not in current.splitlines()]
    if not missing:
        return
    head = current if not current or current.endswith("\n") else current + "\n"
    note = "# runner: lock files keep both sides' lines when branches merge\n"
    write_atomic(attributes, (head + note + "\n".join(missing) + "\n").encode("utf-8"))


def _in_git_tree(folder: Path) -> bool:
    for parent in (folder.resolve(), *folder.resolve().parents):
        if (parent / ".git").exists():
            return True
    return False
