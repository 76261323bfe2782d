"""Crash-safe file primitives: fsync a folder, replace a file atomically.

A rename is only durable once the folder that holds the name is fsynced, and a file's
bytes only once the file is; `write_atomic` does both in the order that leaves either
the old file or the complete new one on disk after a crash at any instant. Errors that
mean "cannot write here" become `StorageError` with a line saying what to do.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import stat
from pathlib import Path

from runner.errors import StorageError

PART_SUFFIX = ".part"  # temporary files; never taken for finished ones, cleaned on start
_PART_NAME = re.compile(r".+\.[0-9a-f]{8}\.part")  # what temp_name makes, and nothing else


class NotRegular(OSError):
    """Raised by `read_regular` for a FIFO, a device, a folder: not a file to read."""


def read_regular(path: Path, limit: int) -> bytes:
    """Return the bytes of the regular file at `path`, reading at most `limit` + 1 bytes.

    A spec folder may hold a FIFO (reading blocks forever) or a link to /dev/zero
    (reading never ends): the file is opened without blocking and checked with fstat
    before a byte is read, and the read is bounded whatever the file claims to be.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            msg = f"{path} is not a regular file"
            raise NotRegular(errno.EINVAL, msg)
        chunks: list[bytes] = []
        left = limit + 1
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def fsync_dir(folder: Path) -> None:
    """Make the names in `folder` (creations, renames) durable."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_name(path: Path) -> Path:
    """Return a fresh `.part` name beside `path`, unique per attempt."""
    return path.with_name(f"{path.name}.{secrets.token_hex(4)}{PART_SUFFIX}")


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data`: temp file in the same folder, fsync, rename, fsync folder."""
    tmp = temp_name(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise storage_error(exc, path) from exc


def storage_error(exc: OSError, path: Path) -> StorageError:
    """Translate an OSError met while writing `path` into one clear line."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        what = "the disk is full (or a file-size limit was hit)"
        todo = "free some space and run again"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        what = "permission denied"
        todo = "make the folder writable or choose another with --output-dir"
    else:
        what = exc.strerror or type(exc).__name__
        todo = "check the output folder and run again"
    msg = f"cannot write {path}: {what} — {todo}; finished records are kept"
    return StorageError(msg)


def remove_partials(folder: Path) -> list[Path]:
    """Delete leftover temp files under `folder` (a crashed writer's); return them."""
    removed = []
    for part in folder.rglob(f"*{PART_SUFFIX}"):
        if _PART_NAME.fullmatch(part.name) and part.is_file():
            part.unlink(missing_ok=True)
            removed.append(part)
    return removed
