"""Gather the facts `runner.decide` needs about each request of one spec's folder.

This is the only I/O behind a decision: the manifest's and the lock file's records, a
`stat` of each recorded video (its bytes are hashed only when size and mtime do not
vouch for it, like git's index), its sidecar when there is no record to trust, and the
store's inventory. `plan` and `run` call it the same way, so they see the same facts.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.decide import Facts, FileCheck
from runner.layout import sidecar_name, sidecar_of
from runner.lockfile import LockEntry
from runner.manifest import RequestState, sha256_file
from runner.request import Request


@dataclass
class Observation:
    """The facts of each request of a folder, and what was learnt on the way."""

    facts: dict[str, Facts] = field(default_factory=dict)  # by request id
    touched: dict[str, int] = field(default_factory=dict)  # verified under a new mtime_ns
    sidecars: dict[str, Mapping[str, Any]] = field(default_factory=dict)  # adoptable ones


def observe(
    requests: Sequence[Request],
    folder: Path,
    states: Mapping[str, RequestState],
    locked: Mapping[str, LockEntry],
    *,
    inventory: frozenset[str] | None = None,
    has_usage_logs: Callable[[str], bool] = lambda _provider: False,
) -> Observation:
    """Return the facts of every request (no API call; only local files and the store list)."""
    seen = Observation()
    listings = _Listings(folder)
    for request in requests:
        state = states.get(request.id)
        entry = locked.get(request.id)
        if state is None and entry is None and not listings.has_sidecar(request.output):
            seen.facts[request.id] = NOTHING  # nothing recorded, no sidecar to adopt: new
            continue
        facts = Facts(state=state, locked=entry)
        sha = facts.result_sha256
        client_id = (state.client_request_id if state is not None else None) or (
            entry.client_request_id if entry is not None else None
        )
        reconcilable = bool(
            facts.status == "unknown" and client_id and has_usage_logs(request.provider)
        )
        if sha is not None:
            check, moved_from = _with_file(facts, request, folder, sha, seen)
            in_store = inventory is not None and sha in inventory
            facts = Facts(state, entry, check, None, in_store, moved_from, reconcilable)
        elif state is None and entry is None:
            sidecar = _adoptable_sidecar(folder / request.output, request.id)
            if sidecar is not None:
                seen.sidecars[request.id] = sidecar
                facts = Facts(adopt_from="sidecar")
        elif reconcilable:
            facts = Facts(state, entry, reconcilable=True)
        seen.facts[request.id] = facts
    return seen


NOTHING = Facts()


class _Listings:
    """The names in each folder of a spec's tree, listed once (a missing one is empty).

    A 100,000-request plan asks for 100,000 sidecars; most folders do not exist yet or
    hold none, and one listing per folder answers for all the files in it.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._names: dict[str, frozenset[str]] = {}

    def has_sidecar(self, output: str) -> bool:
        """Return whether the sidecar of the video at `output` may exist."""
        parent, _, _ = output.rpartition("/")
        names = self._names.get(parent)
        if names is None:
            try:
                names = frozenset(os.listdir(self.folder / parent if parent else self.folder))
            except OSError:  # absent, not a folder, unreadable: nothing to adopt from it
                names = frozenset()
            self._names[parent] = names
        # A new sweep's folders are absent or empty: no sidecar name to work out then.
        return bool(names) and sidecar_name(output).rpartition("/")[2] in names


def _with_file(
    facts: Facts, request: Request, folder: Path, sha: str, seen: Observation
) -> tuple[FileCheck, str | None]:
    """Check the file at the request's output path against the recorded bytes; return the
    verdict and, when the recorded video sits verified at its old path, that path."""
    state = facts.state
    size = facts.locked.size if facts.locked is not None and facts.locked.state == "done" else None
    if size is None and state is not None:
        size = state.size
    path = folder / request.output
    trusted_mtime = (
        state.mtime_ns
        if state is not None and state.status == "done" and state.sha256 == sha
        and state.output == request.output
        else None
    )
    check = _check(path, sha, size, trusted_mtime)
    if check is FileCheck.MATCHES and trusted_mtime is not None:
        mtime = path.stat().st_mtime_ns
        if mtime != trusted_mtime:
            seen.touched[request.id] = mtime
    moved_from = None
    if check is not FileCheck.MATCHES and state is not None and state.output:
        old = state.output
        if old != request.output and _check(folder / old, sha, size, None) is FileCheck.MATCHES:
            moved_from = old
    return check, moved_from


def _check(path: Path, sha: str, size: int | None, mtime_ns: int | None) -> FileCheck:
    try:
        st = path.stat()
    except FileNotFoundError:
        return FileCheck.ABSENT
    except NotADirectoryError:
        return FileCheck.ABSENT
    if not path.is_file() or (size is not None and st.st_size != size):
        return FileCheck.DIFFERS
    if mtime_ns is not None and st.st_mtime_ns == mtime_ns:
        return FileCheck.MATCHES
    return FileCheck.MATCHES if sha256_file(path) == sha else FileCheck.DIFFERS


def _adoptable_sidecar(video: Path, rid: str) -> Mapping[str, Any] | None:
    """Return the sidecar beside `video` when it names `rid` and the video's bytes match."""
    try:
        data = json.loads(sidecar_of(video).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("id") != rid:
        return None
    if not isinstance(data.get("sha256"), str):
        return None
    try:
        if not video.is_file() or video.stat().st_size != data.get("size"):
            return None
    except OSError:
        return None
    return data if sha256_file(video) == data["sha256"] else None
