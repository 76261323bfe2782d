"""One run per spec: an exclusive `flock` on `outputs/<name>/.lock`.

The kernel holds the lock for as long as the file descriptor is open and drops it when
the process exits for any reason, `kill -9` included, so a lock left by a dead run is
recovered by construction: there is no stale-pid guessing. The file's content (pid,
host, start time) only serves the message a second run prints; it is never trusted to
decide anything, and the file is never deleted (deleting it would let two runs lock
two different inodes of the same name).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from datetime import UTC, datetime
from pathlib import Path

from runner.durable import storage_error
from runner.errors import LockError

LOCK_NAME = ".lock"


class SpecLock:
    """An exclusive, process-lifetime lock on one spec's output folder."""

    def __init__(self, folder: Path, fd: int) -> None:
        self.folder = folder
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, folder: Path, *, now: float | None = None) -> SpecLock:
        """Lock `folder` or raise `LockError` naming the live run that holds it."""
        path = folder / LOCK_NAME
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise storage_error(exc, path) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe_holder(fd)
            os.close(fd)
            msg = (
                f"spec {folder.name!r} is being run by {holder}; wait for it to finish or "
                f"stop it (its lock is {path})"
            )
            raise LockError(msg) from None
        stamp = datetime.now(UTC) if now is None else datetime.fromtimestamp(now, UTC)
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": stamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        except OSError as exc:
            os.close(fd)
            raise storage_error(exc, path) from exc
        return cls(folder, fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Drop the lock (closing the descriptor releases the flock)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _describe_holder(fd: int) -> str:
    """Say who holds the lock, from what it wrote (best effort: it may be mid-write)."""
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        info = {}
    if not isinstance(info, dict) or "pid" not in info:
        return "another process"
    where = "" if info.get("host") in (None, socket.gethostname()) else f" on {info['host']}"
    return f"pid {info['pid']}{where} since {info.get('since', '?')}"
