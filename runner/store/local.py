"""A store in a local folder or a mounted share (`file:///abs/path`, or a plain path).

Every object is written through `write_verified`: a temp name beside the final one,
fsync, rename, fsync the folder, so a half-written object is never visible under its
final name and a crash leaves at most a `.part` file that `inventory` ignores. The
folder is created on the first write, as a bucket prefix would be.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlsplit

from runner.durable import storage_error
from runner.errors import RunnerError, UsageError
from runner.store.base import (
    CHUNK,
    DigestMismatch,
    StoreError,
    corrupt_copy,
    not_held,
    read_chunks,
    sha_of_video_key,
    short,
    sidecar_key,
    source_changed,
    video_key,
    write_verified,
)


def open_local(url: str) -> LocalStore:
    """Open the store at a plain path (`/mnt/share`, `./store`) or a `file:///abs/path` URL."""
    if url.lower().startswith("file:"):
        parts = urlsplit(url)
        if not url[5:].startswith("//") or parts.netloc not in ("", "localhost"):
            msg = (
                f"store URL {url!r} is not a local folder — write file:///absolute/path "
                "(three slashes) or a plain path such as ./store"
            )
            raise UsageError(msg)
        if parts.query or parts.fragment:
            msg = f"store URL {url!r} has a query or fragment — a file:// store is only a path"
            raise UsageError(msg)
        path = Path(unquote(parts.path))
    else:
        path = Path(url).expanduser()  # a config file's "~/store" is not expanded by a shell
    return LocalStore(Path(os.path.abspath(path)))


class LocalStore:
    """A store whose objects are files under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = root.as_uri()

    def inventory(self) -> frozenset[str]:
        """Return the sha256 of every video held (one scan of `videos/`)."""
        held = set()
        with self._boundary("list the videos"):
            try:
                fans = list(os.scandir(self.root / "videos"))
            except FileNotFoundError:
                return frozenset()  # nothing was ever stored here
            for fan in fans:
                if not fan.is_dir(follow_symlinks=False):
                    continue
                for entry in os.scandir(fan.path):
                    sha = sha_of_video_key(f"videos/{fan.name}/{entry.name}")
                    if sha is not None and entry.is_file():
                        held.add(sha)
        return frozenset(held)

    def has(self, sha256: str) -> bool:
        """Tell whether the video with this sha256 is held."""
        path = self.root / video_key(sha256)
        with self._boundary(f"look up video {short(sha256)}"):
            return path.is_file()

    def put(self, video: Path, sha256: str, sidecar: bytes) -> bool:
        """Copy `video` in (unless held at its size), then `sidecar`; True if it was copied."""
        final = self.root / video_key(sha256)
        try:
            size = video.stat().st_size
        except OSError as exc:
            what = f"cannot read {video}: {exc.strerror or type(exc).__name__}"
            raise StoreError(self.url, what, "check the output folder and run again") from exc
        with self._boundary(f"store {video}"):
            uploaded = _size_of(final) != size
            if uploaded:
                try:
                    write_verified(final, read_chunks(video), sha256, write_error=self._error)
                except DigestMismatch as exc:
                    raise source_changed(self.url, video, sha256, exc.size) from None
            if uploaded or self.get_sidecar(sha256) != sidecar:
                path = self.root / sidecar_key(sha256)
                write_verified(path, [sidecar], None, write_error=self._error)
        return uploaded

    def get(self, sha256: str, dest: Path) -> int:
        """Copy the video to `dest` crash-safely after checking its sha256; return its size."""
        source = self.root / video_key(sha256)
        with self._boundary(f"read video {short(sha256)}"):
            try:
                file = source.open("rb")
            except FileNotFoundError:
                raise not_held(self.url, sha256) from None
            with file:
                chunks = iter(lambda: file.read(CHUNK), b"")
                try:
                    return write_verified(
                        dest, chunks, sha256, write_error=lambda exc: storage_error(exc, dest)
                    )
                except DigestMismatch as exc:
                    raise corrupt_copy(self.url, sha256, exc, str(source)) from None

    def get_sidecar(self, sha256: str) -> bytes | None:
        """Return the sidecar stored beside the video, or None when there is none."""
        path = self.root / sidecar_key(sha256)
        with self._boundary(f"read the sidecar of {short(sha256)}"):
            try:
                return path.read_bytes()
            except FileNotFoundError:
                return None

    def _error(self, exc: OSError) -> RunnerError:
        """Word an OSError met while writing into the store."""
        where = f" ({exc.filename})" if exc.filename else ""
        what = f"cannot write: {exc.strerror or type(exc).__name__}{where}"
        return StoreError(self.url, what, "check that the store folder is writable and not full")

    @contextmanager
    def _boundary(self, doing: str) -> Iterator[None]:
        """Turn an OSError from reading or listing the store into a StoreError."""
        try:
            yield
        except OSError as exc:
            where = f" ({exc.filename})" if exc.filename else ""
            what = f"cannot {doing}: {exc.strerror or type(exc).__name__}{where}"
            todo = "check that the store folder exists, is mounted and is readable"
            raise StoreError(self.url, what, todo) from exc


def _size_of(path: Path) -> int | None:
    """Return the size of the file at `path`, or None when there is none."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None
