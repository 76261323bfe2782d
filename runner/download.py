"""Stream a video to disk so that a partial file is never taken for a finished one.

`download` streams into `<name>.<random>.part` beside the destination (unique per
attempt, so two attempts never share bytes), hashes while writing, checks the byte count
against Content-Length and the expected size, fsyncs, renames into place and fsyncs the
folder. Memory stays at one chunk whatever the file size. Leftover `.part` files from a
crash are removed by `runner.durable.remove_partials` when a run starts.

Download URLs are signed and expire: 403/404/410 raise `ExpiredUrl`, on which the engine
polls the generation for a fresh URL. Only https is fetched, plus plain http to a
loopback host when the caller allows it (the engine does when its own base URL is
loopback: the sandbox). Redirects are followed by hand so every hop passes that check.

    DownloadError (RunnerError)   any failed download; `retryable` says if trying again may help
    ├── ExpiredUrl                the signed URL was refused or is gone (403/404/410)
    ├── TruncatedDownload         fewer bytes arrived than announced
    └── UnsafeUrl                 a URL (or redirect) that is not https / allowed loopback http
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

import httpx

from runner.durable import fsync_dir, storage_error, temp_name
from runner.errors import RunnerError
from runner.loopback import is_loopback_host

CHUNK = 1 << 20
THREAD_MIN = 256 << 10  # blocks this big are written off the event loop (see _stream_to)
MAX_REDIRECTS = 5
EXPIRED_STATUSES = frozenset({403, 404, 410})


class DownloadError(RunnerError):
    """Raised when a video could not be downloaded."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class ExpiredUrl(DownloadError):
    """Raised on 403/404/410: poll the generation for a fresh URL."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True)


class TruncatedDownload(DownloadError):
    """Raised when the body ended before the announced or expected size."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True)


class UnsafeUrl(DownloadError):
    """Raised for a URL the runner refuses to fetch."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


@dataclass(frozen=True, slots=True)
class DownloadResult:
    """A finished, durable download."""

    size: int
    sha256: str
    seconds: float


def check_url(url: str, *, allow_loopback_http: bool) -> None:
    """Raise `UnsafeUrl` unless `url` is https (or allowed loopback http)."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        msg = f"refusing to download from a malformed URL ({exc})"
        raise UnsafeUrl(msg) from None
    if parsed.scheme == "https" and parsed.host:
        return
    if parsed.scheme == "http" and allow_loopback_http and is_loopback_host(parsed.host):
        return
    shown = f"{parsed.scheme}://{parsed.host}/…" if parsed.host else f"a {parsed.scheme!r} URL"
    msg = f"refusing to download from {shown}: video URLs must be https"
    raise UnsafeUrl(msg)


async def download(
    client: httpx.AsyncClient,
    url: str,
    dest: Path,
    *,
    expected_size: int | None = None,
    chunk: int = CHUNK,
    allow_loopback_http: bool = False,
) -> DownloadResult:
    """Stream `url` to `dest` durably and return its size, sha256 and duration."""
    started = time.monotonic()
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise storage_error(exc, dest.parent) from exc
    part = temp_name(dest)
    try:
        size, digest = await _fetch(
            client, url, part, expected_size, chunk, allow_loopback_http=allow_loopback_http
        )
        try:
            os.replace(part, dest)
            await asyncio.to_thread(fsync_dir, dest.parent)
        except OSError as exc:
            raise storage_error(exc, dest) from exc
    finally:
        # Gone once renamed; never made when its name was refused (a name too long for the
        # disk): a failed removal must not replace the error being raised. A leftover is
        # removed by remove_partials when the next run starts.
        with contextlib.suppress(OSError):
            part.unlink()
    return DownloadResult(size=size, sha256=digest, seconds=time.monotonic() - started)


async def _fetch(
    client: httpx.AsyncClient,
    url: str,
    part: Path,
    expected_size: int | None,
    chunk: int,
    *,
    allow_loopback_http: bool,
) -> tuple[int, str]:
    """Follow redirects by hand, then stream the final response into `part`."""
    for _ in range(MAX_REDIRECTS + 1):
        check_url(url, allow_loopback_http=allow_loopback_http)
        try:
            async with client.stream("GET", url, follow_redirects=False) as response:
                if response.is_redirect and "location" in response.headers:
                    url = urljoin(url, response.headers["location"])
                    continue
                _check_status(response)
                return await _stream_to(response, part, expected_size, chunk)
        except httpx.RemoteProtocolError as exc:
            # h11 raises this when the peer closes before Content-Length bytes arrived.
            msg = f"download of {_redacted(url)} ended early: {exc}"
            raise TruncatedDownload(msg) from exc
        except httpx.TransportError as exc:
            msg = f"download of {_redacted(url)} failed: {type(exc).__name__} {exc}".rstrip()
            raise DownloadError(msg, retryable=True) from exc
    msg = f"download of {_redacted(url)} redirected more than {MAX_REDIRECTS} times"
    raise DownloadError(msg, retryable=False)


def _check_status(response: httpx.Response) -> None:
    """Map a non-2xx answer to the right DownloadError."""
    code = response.status_code
    where = _redacted(str(response.url))
    if code in EXPIRED_STATUSES:
        msg = f"download URL {where} was refused with HTTP {code} (expired or gone)"
        raise ExpiredUrl(msg)
    if not 200 <= code < 300:
        msg = f"download of {where} answered HTTP {code}"
        raise DownloadError(msg, retryable=code >= 500 or code == 429)


async def _stream_to(
    response: httpx.Response, part: Path, expected_size: int | None, chunk: int
) -> tuple[int, str]:
    """Write the body to `part`, hashing as it goes; check the size; fsync.

    Large blocks are hashed and written in a worker thread while the event loop reads
    the next one (both release the GIL), one block in flight so the order holds: disk
    and network overlap instead of taking turns. Small blocks are written inline.
    """
    announced = _content_length(response)
    digest = hashlib.sha256()
    size = 0
    loop = asyncio.get_running_loop()
    writing: asyncio.Future[None] | None = None
    try:
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise storage_error(exc, part) from exc
    try:
        async for block in response.aiter_bytes(chunk):
            size += len(block)
            if writing is not None:
                await writing  # the previous block first: the file and digest stay in order
                writing = None
            if len(block) < THREAD_MIN:
                _absorb(fd, digest, block)
            else:
                writing = loop.run_in_executor(None, _absorb, fd, digest, block)
        if writing is not None:
            await writing
            writing = None
        where = _redacted(str(response.url))
        if announced is not None and size != announced:
            msg = f"download of {where} ended early: {size} of {announced} bytes"
            raise TruncatedDownload(msg)
        if expected_size is not None and size < expected_size:
            msg = f"download of {where} ended early: {size} of {expected_size} expected bytes"
            raise TruncatedDownload(msg)
        if expected_size is not None and size != expected_size:
            msg = f"download of {where} is {size} bytes, expected {expected_size}"
            raise DownloadError(msg, retryable=True)
        await asyncio.to_thread(os.fsync, fd)
    except OSError as exc:
        raise storage_error(exc, part) from exc
    finally:
        if writing is None or writing.done():
            os.close(fd)
        else:  # failed or cancelled mid-block: the thread still uses fd, close it after
            writing.add_done_callback(lambda future: _close_after(future, fd))
    return size, digest.hexdigest()


def _absorb(fd: int, digest: hashlib._Hash, block: bytes) -> None:
    """Hash `block` and write all of it to `fd`."""
    digest.update(block)
    view = memoryview(block)
    while view:
        view = view[os.write(fd, view) :]


def _close_after(future: asyncio.Future[None], fd: int) -> None:
    """Close `fd` once its writer thread is done (its error is moot: the download failed)."""
    if not future.cancelled():
        future.exception()  # retrieved, so asyncio does not log it as never retrieved
    os.close(fd)


def _content_length(response: httpx.Response) -> int | None:
    """Return Content-Length when it counts the bytes we receive (no content coding)."""
    if response.headers.get("content-encoding", "identity").lower() != "identity":
        return None  # the header counts encoded bytes; aiter_bytes yields decoded ones
    try:
        return int(response.headers["content-length"])
    except (KeyError, ValueError):
        return None


def _redacted(url: str) -> str:
    """Drop the query (signed tokens live there) so a URL is safe to show or log."""
    parsed = httpx.URL(url)
    return str(parsed.copy_with(query=None, fragment=None))
