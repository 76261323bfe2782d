"""Downloads against a real HTTP server on loopback: sizes, expiry, URLs, memory, crashes."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gc
import hashlib
import os
import re
import resource
import signal
import threading
import time
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from runner.download import (
    CHUNK,
    THREAD_MIN,
    DownloadError,
    ExpiredUrl,
    TruncatedDownload,
    UnsafeUrl,
    check_url,
    download,
)
from runner.download import DownloadResult as Result
from runner.durable import remove_partials
from runner.errors import RunnerError, StorageError
from runner.probe import NotAVideo, probe

from .conftest import FileServer, SyscallTrace, run_python


def fetch(url: str, dest: Path, **kwargs: object) -> Result:
    """Run one download with a fresh client, allowing loopback http like the sandbox does."""

    async def go() -> Result:
        async with httpx.AsyncClient(timeout=10) as client:
            return await download(client, url, dest, allow_loopback_http=True, **kwargs)  # type: ignore[arg-type]

    return asyncio.run(go())


def test_download_writes_the_exact_bytes_and_reports_size_and_sha(
    tmp_path: Path, file_server: FileServer, video_bytes: bytes
) -> None:
    """A good download lands at dest with the served bytes, their size and sha256."""
    file_server.files["/v.mp4"] = video_bytes
    dest = tmp_path / "out" / "16x9" / "seed-1.mp4"
    result = fetch(file_server.url("/v.mp4"), dest, expected_size=len(video_bytes))
    assert dest.read_bytes() == video_bytes
    assert result.size == len(video_bytes)
    assert result.sha256 == hashlib.sha256(video_bytes).hexdigest()
    assert result.seconds >= 0
    assert list(dest.parent.iterdir()) == [dest]  # no .part left behind
    assert probe(dest).codec == "h264"


def test_truncated_body_raises_and_leaves_no_file(
    tmp_path: Path, file_server: FileServer, video_bytes: bytes
) -> None:
    """A body cut short of its Content-Length is TruncatedDownload; nothing is left at dest."""
    file_server.files["v"] = video_bytes
    dest = tmp_path / "seed-1.mp4"
    with pytest.raises(TruncatedDownload, match="ended early") as info:
        fetch(file_server.url("/truncated?file=v"), dest)
    assert info.value.retryable
    assert not dest.exists()
    assert list(tmp_path.iterdir()) == []


def test_fewer_bytes_than_expected_is_truncated(
    tmp_path: Path, file_server: FileServer, video_bytes: bytes
) -> None:
    """A complete response smaller than the expected size is a truncated download."""
    file_server.files["/v.mp4"] = video_bytes
    with pytest.raises(TruncatedDownload, match=f"{len(video_bytes)} of {len(video_bytes) + 1}"):
        fetch(file_server.url("/v.mp4"), tmp_path / "a.mp4", expected_size=len(video_bytes) + 1)
    assert list(tmp_path.iterdir()) == []


def test_more_bytes_than_expected_is_a_size_error(
    tmp_path: Path, file_server: FileServer, video_bytes: bytes
) -> None:
    """A response larger than the expected size is refused, not stored."""
    file_server.files["/v.mp4"] = video_bytes
    with pytest.raises(DownloadError, match="expected 10") as info:
        fetch(file_server.url("/v.mp4"), tmp_path / "a.mp4", expected_size=10)
    assert not isinstance(info.value, TruncatedDownload)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("code", [403, 404, 410])
def test_refused_or_gone_url_is_expired(tmp_path: Path, file_server: FileServer, code: int) -> None:
    """403/404/410 mean the signed URL expired: ExpiredUrl, so the engine polls for a new one."""
    with pytest.raises(ExpiredUrl, match=f"HTTP {code}"):
        fetch(file_server.url(f"/status/{code}?_jwt=secret-token"), tmp_path / "a.mp4")
    assert list(tmp_path.iterdir()) == []


def test_error_messages_never_show_the_signed_token(
    tmp_path: Path, file_server: FileServer
) -> None:
    """The query string (where signed tokens live) is dropped from every message."""
    with pytest.raises(ExpiredUrl) as info:
        fetch(file_server.url("/status/410?_jwt=secret-token"), tmp_path / "a.mp4")
    assert "secret-token" not in str(info.value)
    assert "/status/410" in str(info.value)


@pytest.mark.parametrize(("code", "retryable"), [(500, True), (503, True), (400, False)])
def test_other_statuses_are_download_errors(
    tmp_path: Path, file_server: FileServer, code: int, retryable: bool
) -> None:
    """5xx are retryable download errors, other 4xx are not; neither is an expiry."""
    with pytest.raises(DownloadError) as info:
        fetch(file_server.url(f"/status/{code}"), tmp_path / "a.mp4")
    assert not isinstance(info.value, ExpiredUrl)
    assert info.value.retryable is retryable


def test_redirects_are_followed_on_loopback(
    tmp_path: Path, file_server: FileServer, video_bytes: bytes
) -> None:
    """A redirect to an allowed URL is followed to the video."""
    file_server.files["/v.mp4"] = video_bytes
    url = file_server.url("/redirect?to=" + file_server.url("/v.mp4"))
    fetch(url, tmp_path / "a.mp4")
    assert (tmp_path / "a.mp4").read_bytes() == video_bytes
    assert file_server.hits == ["/redirect", "/v.mp4"]


def test_redirect_to_plain_http_elsewhere_is_refused(
    tmp_path: Path, file_server: FileServer
) -> None:
    """A redirect off loopback to plain http is refused before any connection is made."""
    url = file_server.url("/redirect?to=http://example.com/v.mp4")
    with pytest.raises(UnsafeUrl, match="must be https"):
        fetch(url, tmp_path / "a.mp4")
    assert file_server.hits == ["/redirect"]


@pytest.mark.parametrize(
    ("url", "allow", "ok"),
    [
        ("https://cdn.example.com/v.mp4?_jwt=x", False, True),
        ("http://cdn.example.com/v.mp4", True, False),
        ("http://127.0.0.1:8080/v.mp4", False, False),
        ("http://127.0.0.1:8080/v.mp4", True, True),
        ("http://localhost/v.mp4", True, True),
        ("http://[::1]:9/v.mp4", True, True),
        ("http://127.9.9.9/v.mp4", True, True),
        ("ftp://127.0.0.1/v.mp4", True, False),
        ("file:///etc/passwd", True, False),
        ("data:video/mp4;base64,AAAA", True, False),
    ],
)
def test_url_rules(url: str, allow: bool, ok: bool) -> None:
    """Only https, or http to a loopback host when allowed, may be fetched."""
    if ok:
        check_url(url, allow_loopback_http=allow)
    else:
        with pytest.raises(UnsafeUrl):
            check_url(url, allow_loopback_http=allow)


def test_loopback_http_is_refused_unless_the_engine_allows_it(
    tmp_path: Path, file_server: FileServer, video_bytes: bytes
) -> None:
    """Without the flag, even loopback http is refused (no request reaches the server)."""
    file_server.files["/v.mp4"] = video_bytes

    async def go() -> None:
        async with httpx.AsyncClient() as client:
            await download(client, file_server.url("/v.mp4"), tmp_path / "a.mp4")

    with pytest.raises(UnsafeUrl):
        asyncio.run(go())
    assert file_server.hits == []


def test_a_non_video_downloads_but_fails_the_probe(tmp_path: Path, file_server: FileServer) -> None:
    """An HTML page served as the video is stored intact but probe says NotAVideo."""
    file_server.files["/v.mp4"] = b"<html><body>Access denied</body></html>"
    dest = tmp_path / "a.mp4"
    fetch(file_server.url("/v.mp4"), dest)
    with pytest.raises(NotAVideo, match="not a video"):
        probe(dest)


def test_memory_stays_flat_for_a_large_file(tmp_path: Path, file_server: FileServer) -> None:
    """A 64 MiB download peaks at a few chunks of Python memory, not the file's size."""
    size = 64 << 20
    dest = tmp_path / "big.mp4"
    tracemalloc.start()
    try:
        result = fetch(file_server.url(f"/big?size={size}"), dest, expected_size=size)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.size == size == dest.stat().st_size
    block = bytes(range(256)) * 4096
    assert result.sha256 == hashlib.sha256(block * 64).hexdigest()
    assert peak < 8 << 20, f"peak Python memory {peak / 2**20:.1f} MiB"


@pytest.fixture(scope="module")
def random_blob() -> bytes:
    """64 MiB and a few odd bytes of random, non-repeating content: a block written out of
    order, twice or not at all changes its sha256 (identical blocks would hide that)."""
    return os.urandom((64 << 20) + 12_345)


@pytest.mark.parametrize(
    "chunk",
    [CHUNK, 3 * CHUNK + 7, THREAD_MIN // 2],
    ids=["default chunks (pipelined writes)", "odd large chunks", "small chunks (inline)"],
)
def test_large_random_download_is_byte_exact(
    tmp_path: Path, file_server: FileServer, random_blob: bytes, chunk: int
) -> None:
    """A 64 MiB random body served in irregular pieces lands byte for byte, and the
    reported size and sha256 are those of the served bytes, checked with hashlib."""
    file_server.files["/blob"] = random_blob
    dest = tmp_path / "big.mp4"
    url = file_server.url(f"/pieces?file=/blob&seed={chunk}")
    result = fetch(url, dest, expected_size=len(random_blob), chunk=chunk)
    expected = hashlib.sha256(random_blob).hexdigest()
    assert result.size == len(random_blob) == dest.stat().st_size
    assert result.sha256 == expected
    on_disk = dest.read_bytes()
    assert hashlib.sha256(on_disk).hexdigest() == expected
    assert on_disk == random_blob
    assert list(tmp_path.iterdir()) == [dest]  # no .part left behind


DOWNLOADER = """
import asyncio, sys
from pathlib import Path
import httpx
from runner.download import download

async def main():
    async with httpx.AsyncClient() as client:
        print("started", flush=True)
        await download(client, sys.argv[1], Path(sys.argv[2]), allow_loopback_http=True)
    print("finished", flush=True)

asyncio.run(main())
"""


def test_download_killed_mid_stream_leaves_only_a_part_file_that_is_cleaned(
    tmp_path: Path, file_server: FileServer
) -> None:
    """kill -9 during a download never leaves a file at dest; its .part is removed on start."""
    dest = tmp_path / "16x9" / "seed-1.mp4"
    url = file_server.url(f"/big?size={32 << 20}&delay=0.02")  # ~0.7 s to stream
    proc = run_python(DOWNLOADER, url, str(dest))
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "started"
    parts: list[Path] = []
    deadline = time.monotonic() + 20
    while not (parts and parts[0].stat().st_size > 0):  # a real process: watch its bytes land
        assert proc.poll() is None and time.monotonic() < deadline, "download never started"
        time.sleep(0.005)
        parts = list(dest.parent.glob("*.part")) if dest.parent.exists() else []
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert not dest.exists()
    assert parts and parts[0].name.startswith("seed-1.mp4.") and parts[0].exists()
    assert remove_partials(tmp_path) == parts
    assert list(dest.parent.iterdir()) == []


def test_each_attempt_uses_its_own_part_file(
    tmp_path: Path, file_server: FileServer, video_bytes: bytes
) -> None:
    """Two concurrent downloads to the same dest never share a .part; the result is whole."""
    file_server.files["/v.mp4"] = video_bytes
    dest = tmp_path / "a.mp4"

    async def go() -> list[Result]:
        async with httpx.AsyncClient() as client:
            return list(
                await asyncio.gather(
                    *(
                        download(client, file_server.url("/v.mp4"), dest, allow_loopback_http=True)
                        for _ in range(4)
                    )
                )
            )

    results = asyncio.run(go())
    assert {r.sha256 for r in results} == {hashlib.sha256(video_bytes).hexdigest()}
    assert dest.read_bytes() == video_bytes
    assert list(tmp_path.iterdir()) == [dest]


def test_remove_partials_only_touches_temp_files_it_made(tmp_path: Path) -> None:
    """Cleanup removes `<name>.<8 hex>.part` files anywhere below, not a user's `x.part`."""
    (tmp_path / "a" / "b").mkdir(parents=True)
    ours = [tmp_path / "a" / "v.mp4.0badc0de.part", tmp_path / "a" / "b" / "s.json.12345678.part"]
    theirs = [tmp_path / "notes.part", tmp_path / "a" / "v.mp4"]
    for path in ours + theirs:
        path.write_bytes(b"x")
    assert sorted(remove_partials(tmp_path)) == sorted(ours)
    assert all(p.exists() for p in theirs) and not any(p.exists() for p in ours)


def test_download_fsyncs_the_part_file_before_renaming_then_the_folder(
    tmp_path: Path, file_server: FileServer, video_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bytes are durable before the name appears, and the name before download returns."""
    file_server.files["/v.mp4"] = video_bytes
    dest = tmp_path / "v.mp4"
    trace = SyscallTrace(monkeypatch)
    fetch(file_server.url("/v.mp4"), dest)
    ours = [(kind, Path(what.split(" -> ")[-1]).name) for kind, what in trace.calls]
    ours = [c for c in ours if c[1].startswith("v.mp4") or c[1] == tmp_path.name]
    assert [kind for kind, _ in ours] == ["write", "fsync", "replace", "fsync"]
    assert ours[1][1].endswith(".part") and ours[2][1] == "v.mp4" and ours[3][1] == tmp_path.name


def mocked(handler: object, url: str, dest: Path) -> Result:
    """Run one download through a scripted transport (https, no network)."""

    async def go() -> Result:
        transport = httpx.MockTransport(handler)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport) as client:
            return await download(client, url, dest)

    return asyncio.run(go())


@pytest.mark.parametrize(("code", "retryable"), [(429, True), (300, False), (199, False)])
def test_non_success_statuses_are_errors_and_only_429_or_5xx_retry(
    tmp_path: Path, code: int, retryable: bool
) -> None:
    """A 300 without a Location or a 1xx is not a video; 429 is worth another try."""
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(code, content=b"not a video")

    with pytest.raises(DownloadError) as info:
        mocked(answer, "https://cdn.test/v.mp4?_jwt=t", tmp_path / "a.mp4")
    assert str(info.value) == f"download of https://cdn.test/v.mp4 answered HTTP {code}"
    assert info.value.retryable is retryable
    assert list(tmp_path.iterdir()) == []


def test_a_connection_failure_is_retryable_and_names_the_url_without_its_token(
    tmp_path: Path,
) -> None:
    """A dropped connection is worth another try; the message keeps the path, not the token."""
    def answer(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection reset", request=request)

    with pytest.raises(DownloadError) as info:
        mocked(answer, "https://cdn.test/v.mp4?_jwt=secret#frag", tmp_path / "a.mp4")
    assert info.value.retryable is True
    assert str(info.value) == "download of https://cdn.test/v.mp4 failed: ConnectError " \
        "connection reset"


def test_five_redirects_are_followed_and_a_sixth_is_refused(tmp_path: Path) -> None:
    """Up to MAX_REDIRECTS hops reach the video; one more is a final (not retried) error."""
    def chain(hops: int) -> object:
        def answer(request: httpx.Request) -> httpx.Response:
            n = int(request.url.path.strip("/") or 0)
            if n < hops:
                return httpx.Response(302, headers={"location": f"/{n + 1}"})
            return httpx.Response(200, content=b"video")
        return answer

    assert mocked(chain(5), "https://cdn.test/0", tmp_path / "a.mp4").size == 5
    with pytest.raises(DownloadError) as info:
        mocked(chain(6), "https://cdn.test/0?_jwt=t", tmp_path / "b.mp4")
    assert str(info.value) == "download of https://cdn.test/6 redirected more than 5 times"
    assert info.value.retryable is False


def test_a_compressed_body_is_not_held_to_its_compressed_length(tmp_path: Path) -> None:
    """With Content-Encoding the announced length is of the compressed bytes: the
    decompressed video is kept whole; without it a short body is a truncated download."""
    import gzip

    video = b"v" * 5000
    packed = gzip.compress(video)

    def encoded(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=packed, headers={"Content-Encoding": "GZIP"})

    assert mocked(encoded, "https://cdn.test/v.mp4", tmp_path / "a.mp4").size == 5000
    assert (tmp_path / "a.mp4").read_bytes() == video

    def short(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"v" * 10, headers={"Content-Length": "20"})

    with pytest.raises(TruncatedDownload, match="ended early: 10 of 20 bytes"):
        mocked(short, "https://cdn.test/v.mp4", tmp_path / "b.mp4")


def test_a_downloaded_video_is_readable_by_everyone(tmp_path: Path) -> None:
    """The video lands with 0644 permissions (under the usual umask), like any file."""
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"video")

    old = os.umask(0o022)
    try:
        mocked(answer, "https://cdn.test/v.mp4", tmp_path / "a.mp4")
    finally:
        os.umask(old)
    assert (tmp_path / "a.mp4").stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize(
    ("url", "shown"),
    [("ftp://cdn.test/v.mp4", "ftp://cdn.test/…"), ("data:video/mp4,xx", "a 'data' URL")],
)
def test_an_unsafe_url_is_refused_naming_only_its_scheme_and_host(url: str, shown: str) -> None:
    """The refusal names what was refused without the rest of the URL."""
    with pytest.raises(UnsafeUrl) as info:
        check_url(url, allow_loopback_http=False)
    assert str(info.value) == f"refusing to download from {shown}: video URLs must be https"


def test_size_errors_name_the_url_without_its_token_and_say_what_arrived(
    tmp_path: Path,
) -> None:
    """Short of Content-Length, short of the expected size, or past it: each message names
    the URL (no token) and both sizes; each is worth another try."""
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"v" * 10)

    url = "https://cdn.test/v.mp4?_jwt=secret"
    cases = [(11, "ended early: 10 of 11 expected bytes"), (9, "is 10 bytes, expected 9")]
    for expected, words in cases:
        async def go(expected: int = expected) -> Result:
            async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
                return await download(client, url, tmp_path / "a.mp4", expected_size=expected)

        with pytest.raises(DownloadError) as info:
            asyncio.run(go())
        assert str(info.value) == f"download of https://cdn.test/v.mp4 {words}"
        assert info.value.retryable is True
    assert list(tmp_path.iterdir()) == []


def test_expired_urls_are_worth_another_try_and_unsafe_ones_never(
    tmp_path: Path, file_server: FileServer
) -> None:
    """`retryable` on the error says whether trying again may help: a fresh URL may work,
    an unsafe or malformed one never will (and its message says what is wrong)."""
    with pytest.raises(ExpiredUrl) as expired:
        fetch(file_server.url("/status/410"), tmp_path / "a.mp4")
    assert expired.value.retryable is True
    with pytest.raises(UnsafeUrl) as unsafe:
        check_url("ftp://cdn.test/v.mp4", allow_loopback_http=False)
    assert unsafe.value.retryable is False
    with pytest.raises(UnsafeUrl) as malformed:
        check_url("https://cdn.test:abc/v.mp4", allow_loopback_http=False)
    assert str(malformed.value) == (
        "refusing to download from a malformed URL (Invalid port: 'abc')")
    assert malformed.value.retryable is False


def test_a_client_that_follows_redirects_itself_still_has_each_hop_checked(
    tmp_path: Path,
) -> None:
    """Even through a client made to follow redirects, a hop to a URL the runner refuses
    is refused as unsafe, never fetched."""
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return httpx.Response(302, headers={"location": "ftp://cdn.test/v.mp4"})

    async def go() -> Result:
        transport = httpx.MockTransport(answer)
        async with httpx.AsyncClient(transport=transport, follow_redirects=True) as client:
            return await download(client, "https://cdn.test/v.mp4", tmp_path / "a.mp4")

    with pytest.raises(UnsafeUrl, match="ftp://cdn.test/…"):
        asyncio.run(go())
    assert asked == ["https://cdn.test/v.mp4"]


def test_a_transport_failure_without_words_ends_its_message_at_the_error_name(
    tmp_path: Path,
) -> None:
    """An httpx error with an empty message leaves no trailing space in the line."""
    def answer(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("", request=request)

    with pytest.raises(DownloadError) as info:
        mocked(answer, "https://cdn.test/v.mp4", tmp_path / "a.mp4")
    assert str(info.value) == "download of https://cdn.test/v.mp4 failed: ReadTimeout"


def test_the_recorded_seconds_are_those_the_download_took(tmp_path: Path) -> None:
    """The duration reported lies within the time around the call."""
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"video")

    before = time.monotonic()
    result = mocked(answer, "https://cdn.test/v.mp4", tmp_path / "a.mp4")
    assert 0 <= result.seconds <= time.monotonic() - before


def test_a_destination_folder_that_cannot_be_made_is_one_storage_error(tmp_path: Path) -> None:
    """Where a file stands in the way of the video's folder: one line naming the folder."""
    (tmp_path / "16x9").write_text("a file, not a folder")
    dest = tmp_path / "16x9" / "seed-1.mp4"
    with pytest.raises(StorageError) as info:
        fetch("https://cdn.test/v.mp4", dest)
    assert str(info.value) == (
        f"cannot write {dest.parent}: File exists — check the output folder and run "
        "again; finished records are kept")


def test_a_part_file_that_cannot_be_created_is_one_storage_error_and_nothing_is_left(
    tmp_path: Path,
) -> None:
    """A video name too long for the disk once the temp suffix is added (a file system
    with short names, here past 255): one line naming the temp file, no traceback from
    cleaning up a file that was never made, nothing left behind."""
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"video")

    dest = tmp_path / ("n" * 246 + ".mp4")  # 250 characters; the .part name is past 255
    with pytest.raises(StorageError) as info:
        mocked(answer, "https://cdn.test/v.mp4", dest)
    assert re.fullmatch(
        rf"cannot write {re.escape(str(dest))}\.[0-9a-f]{{8}}\.part: File name too long — "
        "check the output folder and run again; finished records are kept",
        str(info.value),
    ), str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_a_video_that_cannot_take_its_place_is_one_storage_error_and_no_part_is_left(
    tmp_path: Path,
) -> None:
    """A folder where the video should land: one line naming the video; the downloaded
    temp file is removed, the folder untouched."""
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"video")

    dest = tmp_path / "seed-1.mp4"
    (dest / "inside").mkdir(parents=True)
    with pytest.raises(StorageError) as info:
        mocked(answer, "https://cdn.test/v.mp4", dest)
    assert str(info.value).startswith(f"cannot write {dest}: ")
    assert str(info.value).endswith(" — check the output folder and run again; finished "
                                    "records are kept")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["inside", "seed-1.mp4"]


# The disk fills mid-download: a file-size limit (RLIMIT_FSIZE, with SIGXFSZ ignored so a
# write past it fails with EFBIG as on a full disk), set for this test only. Two cases: a
# small block written inline, and a large one whose writer thread fails after the
# download has already given up on a broken connection (the writer pool held busy until
# then), whose file must still be closed, its error retrieved rather than logged.


class Body(httpx.AsyncByteStream):
    """A response body of `blocks`, then `then` raised (a connection that breaks)."""

    def __init__(self, blocks: list[bytes], then: Exception | None = None) -> None:
        self.blocks, self.then = blocks, then

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for block in self.blocks:
            yield block
        if self.then is not None:
            raise self.then


def open_files(folder: Path) -> list[str]:
    """Return what this process's open file descriptors name under `folder`."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the descriptor listing the folder, closed now
            found.append(os.readlink(f"/proc/self/fd/{fd}"))
    return [name for name in found if str(folder) in name]


async def served(dest: Path, body: Body, chunk: int) -> str:
    """Download `body` to `dest`; return the error's line, or "downloaded"."""
    transport = httpx.MockTransport(lambda request: httpx.Response(200, stream=body))
    async with httpx.AsyncClient(transport=transport) as client:
        try:
            await download(client, "https://cdn.test/v.mp4", dest, chunk=chunk)
        except RunnerError as exc:
            return str(exc)
    return "downloaded"


async def fill_the_disk(folder: Path) -> dict[str, Any]:
    """Run both cases under the file-size limit; return what each left."""
    report: dict[str, Any] = {
        "inline": await served(folder / "inline.mp4", Body([b"v" * 60_000] * 3), 60_000)}
    loop = asyncio.get_running_loop()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        loop.set_default_executor(pool)
        hold = threading.Event()
        held = loop.run_in_executor(None, hold.wait)
        broken = Body([b"v" * THREAD_MIN], httpx.ReadError("connection reset"))
        report["in_flight"] = await served(folder / "thread.mp4", broken, THREAD_MIN)
        report["open_while_writing"] = len(open_files(folder))
        hold.set()
        await held
        await loop.run_in_executor(None, lambda: None)  # the failed write ran before this
        for _ in range(3):
            await asyncio.sleep(0)  # its done callback, then ours
    report["open_after"] = open_files(folder)
    report["left"] = sorted(p.name for p in folder.iterdir())
    return report


def test_a_disk_that_fills_mid_download_is_one_storage_error_and_leaves_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The write that meets a full disk gives one line naming the temp file and the fix;
    no partial file is left, and a writer thread still busy when the download failed
    closes its file when done, with nothing logged."""
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, old_limit[1]))
    try:
        report = asyncio.run(fill_the_disk(tmp_path))
        gc.collect()  # an error never retrieved is logged when its future is collected
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
        signal.signal(signal.SIGXFSZ, old_handler)
    tail = (r"\.[0-9a-f]{8}\.part: the disk is full \(or a file-size limit was hit\) — free "
            "some space and run again; finished records are kept")
    assert re.fullmatch(rf"cannot write {re.escape(str(tmp_path))}/inline\.mp4{tail}",
                        report["inline"]), report["inline"]
    assert report["in_flight"] == "download of https://cdn.test/v.mp4 failed: ReadError " \
        "connection reset"
    assert report["open_while_writing"] == 1  # the writer still holds the (removed) part
    assert report["open_after"] == []
    assert report["left"] == []
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []
