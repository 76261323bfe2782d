"""What every store shares: the `Store` protocol, the object layout, `StoreError`, and the
verified writer that both backends use to put bytes under a final name.

Layout inside a store (a folder, or a bucket under an optional prefix):

    <prefix>/videos/<sha[:2]>/<sha>.mp4     the video, named by the sha256 of its bytes
    <prefix>/sidecars/<sha>.json            its sidecar JSON

The two-character fan-out keeps any one folder of a local store small; S3 does not need
it but shares the layout, so a folder copied to a bucket (or back) is still a store.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol

from runner.durable import fsync_dir, temp_name
from runner.errors import RunnerError

CHUNK = 1 << 20  # bytes per read and write when streaming a video
_SHA256 = re.compile(r"[0-9a-f]{64}")
_VIDEO_KEY = re.compile(r"videos/([0-9a-f]{2})/([0-9a-f]{64})\.mp4")


class StoreError(RunnerError):
    """Raised when a store operation fails; the message names the store and what to do."""

    def __init__(self, store_url: str, what: str, todo: str) -> None:
        self.store_url = store_url
        super().__init__(f"store {store_url}: {what} — {todo}")


class DigestMismatch(Exception):
    """Raised by `write_verified` when the bytes do not hash to the expected sha256.

    Internal: each caller knows whose bytes they were and words the `StoreError`.
    """

    def __init__(self, size: int, actual: str) -> None:
        super().__init__(f"{size} bytes hashing to {actual}")
        self.size = size
        self.actual = actual


class Store(Protocol):
    """A content-addressed home for verified videos and their sidecars."""

    url: str  # for messages; never holds credentials

    def inventory(self) -> frozenset[str]:
        """Return the sha256 of every video held, from one (paginated) listing."""
        ...

    def has(self, sha256: str) -> bool:
        """Tell whether the video with this sha256 is held."""
        ...

    def put(self, video: Path, sha256: str, sidecar: bytes) -> bool:
        """Store `video` (unless held at its size), then `sidecar`; True if video bytes went up."""
        ...

    def get(self, sha256: str, dest: Path) -> int:
        """Write the video to `dest` crash-safely after checking its sha256; return its size."""
        ...

    def get_sidecar(self, sha256: str) -> bytes | None:
        """Return the sidecar stored beside the video, or None when there is none."""
        ...


def check_sha256(sha256: str) -> str:
    """Return `sha256` if it is 64 lowercase hex digits; raise ValueError otherwise."""
    if not _SHA256.fullmatch(sha256):
        msg = f"not a sha256 hex digest: {sha256!r}"
        raise ValueError(msg)
    return sha256


def video_key(sha256: str) -> str:
    """Return the video's name relative to the store's root."""
    check_sha256(sha256)
    return f"videos/{sha256[:2]}/{sha256}.mp4"


def sidecar_key(sha256: str) -> str:
    """Return the sidecar's name relative to the store's root."""
    check_sha256(sha256)
    return f"sidecars/{sha256}.json"


def sha_of_video_key(key: str) -> str | None:
    """Return the sha256 a layout name stands for, or None for anything else (temp files)."""
    match = _VIDEO_KEY.fullmatch(key)
    if match is None or match[2][:2] != match[1]:
        return None
    return match[2]


def short(sha256: str) -> str:
    """Return the head of a digest, enough to tell videos apart in a message."""
    return sha256[:12] + "…"


def not_held(store_url: str, sha256: str) -> StoreError:
    """The error for a video the store does not hold."""
    what = f"video {sha256} is not in the store"
    todo = "generate it again, or point --store at the store that holds it"
    return StoreError(store_url, what, todo)


def source_changed(store_url: str, video: Path, sha256: str, size: int) -> StoreError:
    """The error for a local video that does not hash to the sha256 it was put under."""
    what = f"refusing to store {video}: its {size} bytes do not hash to {short(sha256)}"
    todo = "it changed after it was verified; run again to fetch a good copy"
    return StoreError(store_url, what, todo)


def corrupt_copy(store_url: str, sha256: str, mismatch: DigestMismatch, name: str) -> StoreError:
    """The error for a stored video whose bytes do not hash to its name."""
    what = (
        f"the stored copy of video {short(sha256)} is corrupt "
        f"({mismatch.size} bytes hashing to {short(mismatch.actual)})"
    )
    todo = f"delete {name} and put the video again from a verified copy"
    return StoreError(store_url, what, todo)


def read_chunks(path: Path, chunk: int = CHUNK) -> Iterable[bytes]:
    """Yield the bytes of `path`, one chunk at a time."""
    with path.open("rb") as file:
        while block := file.read(chunk):
            yield block


def make_folders(folder: Path) -> None:
    """Create `folder` and its missing parents, each new name made durable in its parent."""
    missing = []
    while not folder.is_dir():
        missing.append(folder)
        folder = folder.parent
    for new in reversed(missing):
        new.mkdir(exist_ok=True)  # another writer may have made it meanwhile
        fsync_dir(new.parent)


def write_verified(
    final: Path,
    chunks: Iterable[bytes],
    sha256: str | None,
    *,
    write_error: Callable[[OSError], RunnerError],
) -> int:
    """Write `chunks` under `final` atomically, refusing them unless they hash to `sha256`.

    The bytes go to a temp name beside `final`, hashed as they are written; on a match
    they are fsynced, renamed and the folder fsynced, so `final` is either absent, the
    old file, or the complete new one. Any failure removes the temp file. Errors from
    `chunks` (the source) propagate as they are; errors writing here become
    `write_error(exc)`; a digest mismatch raises `DigestMismatch`.
    """
    try:
        make_folders(final.parent)
    except OSError as exc:
        raise write_error(exc) from exc
    tmp = temp_name(final)
    digest = hashlib.sha256()
    size = 0
    try:
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise write_error(exc) from exc
        try:
            for block in chunks:
                digest.update(block)
                size += len(block)
                view = memoryview(block)
                try:
                    while view:
                        view = view[os.write(fd, view) :]
                except OSError as exc:
                    raise write_error(exc) from exc
            if sha256 is not None and digest.hexdigest() != sha256:
                raise DigestMismatch(size, digest.hexdigest())
            try:
                os.fsync(fd)
            except OSError as exc:
                raise write_error(exc) from exc
        finally:
            os.close(fd)
        try:
            os.replace(tmp, final)
            fsync_dir(final.parent)
        except OSError as exc:
            raise write_error(exc) from exc
    finally:
        tmp.unlink(missing_ok=True)  # after a successful rename there is nothing to remove
    return size
