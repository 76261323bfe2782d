"""The S3 store as its user meets it: what lands in the bucket (keys, parts, content types),
what a file that changed under it gets, and the exact line of each failure, credentials
scrubbed, against the moto server and a loopback server answering S3 errors."""

from __future__ import annotations

import errno
import hashlib
import io
import socket
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from runner.store import open_store
from runner.store import s3 as s3_module
from runner.store.base import sidecar_key, video_key
from runner.store.s3 import PART, S3Store
from tests.store.conftest import failure, make_video
from tests.store.moto_server import MotoServer

SIDECAR = b'{"id": "3f2a"}\n'
SECRET = "canary-secret-0f3c"


def pattern(size: int) -> bytes:
    """`size` bytes that no two parts share."""
    block = hashlib.sha256(str(size).encode()).digest() * 2048  # 64 KiB
    return (block * (size // len(block) + 1))[:size]


@pytest.fixture
def store(moto: MotoServer, bucket: str, request: pytest.FixtureRequest) -> S3Store:
    """An S3 store under a prefix of its own in the shared bucket."""
    made = open_store(f"s3://{bucket}/{request.node.name[:30]}-{uuid.uuid4().hex[:8]}",
                      environ=moto.env())
    assert isinstance(made, S3Store)
    return made


def head(moto: MotoServer, store: S3Store, name: str) -> dict[str, object]:
    """The stored object's metadata, read around the store."""
    answer: dict[str, object] = moto.client().head_object(
        Bucket=store.bucket, Key=f"{store.prefix}/{name}")
    return answer


def test_objects_land_under_their_layout_keys_with_their_content_types(
    moto: MotoServer, store: S3Store, tmp_path: Path
) -> None:
    """A put writes exactly the video and its sidecar, typed for what they are."""
    video, sha = make_video(tmp_path, b"a video")
    assert store.put(video, sha, SIDECAR) is True
    listing = moto.client().list_objects_v2(Bucket=store.bucket, Prefix=f"{store.prefix}/")
    assert sorted(item["Key"] for item in listing["Contents"]) == [
        f"{store.prefix}/{sidecar_key(sha)}", f"{store.prefix}/{video_key(sha)}"]
    assert head(moto, store, video_key(sha))["ContentType"] == "video/mp4"
    assert head(moto, store, sidecar_key(sha))["ContentType"] == "application/json"
    assert store.get_sidecar(sha) == SIDECAR


def test_a_video_of_exactly_one_part_goes_up_in_one_request(
    moto: MotoServer, store: S3Store, tmp_path: Path
) -> None:
    """A video of exactly the part size is one PUT (no multipart ETag), and comes back whole."""
    video, sha = make_video(tmp_path, pattern(PART))
    store.put(video, sha, SIDECAR)
    assert "-" not in str(head(moto, store, video_key(sha))["ETag"])
    assert store.get(sha, tmp_path / "back.mp4") == PART
    assert (tmp_path / "back.mp4").read_bytes() == video.read_bytes()


def test_a_video_one_byte_over_a_part_goes_up_in_two_parts(
    moto: MotoServer, store: S3Store, tmp_path: Path
) -> None:
    """One byte more than a part: a multipart upload of two parts, read back byte for byte."""
    video, sha = make_video(tmp_path, pattern(PART + 1))
    store.put(video, sha, SIDECAR)
    meta = head(moto, store, video_key(sha))
    assert str(meta["ETag"]).strip('"').endswith("-2")
    assert meta["ContentType"] == "video/mp4"
    assert store.get(sha, tmp_path / "back.mp4") == PART + 1
    assert (tmp_path / "back.mp4").read_bytes() == video.read_bytes()


def test_parts_grow_so_an_upload_never_needs_more_than_the_part_limit(
    moto: MotoServer, store: S3Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With S3's limit scaled down to 2 parts, a video of three part sizes goes up in two."""
    monkeypatch.setattr(s3_module, "MAX_PARTS", 2)
    video, sha = make_video(tmp_path, pattern(2 * PART + 2))
    store.put(video, sha, SIDECAR)
    assert str(head(moto, store, video_key(sha))["ETag"]).strip('"').endswith("-2")
    assert store.get(sha, tmp_path / "back.mp4") == 2 * PART + 2
    assert (tmp_path / "back.mp4").read_bytes() == video.read_bytes()


def test_a_video_that_grew_past_its_measured_size_is_refused(
    moto: MotoServer, store: S3Store, tmp_path: Path
) -> None:
    """A file one byte longer than when it was measured is refused, even if its first part
    is what the digest names: the byte read past the size shows it grew."""
    data = pattern(PART + 1)
    video, _ = make_video(tmp_path, data)
    first = hashlib.sha256(data[:PART]).hexdigest()
    key = store._key(video_key(first))
    assert failure(lambda: store._upload(video, key, first, PART)) == (
        f"store {store.url}: refusing to store {video}: its {PART + 1} bytes do not hash to "
        f"{first[:12]}… — it changed after it was verified; run again to fetch a good copy"
    )
    assert not store.has(first)


@pytest.mark.parametrize("size", [20_000, 2 * PART + 5], ids=["one-request", "multipart"])
def test_a_video_that_does_not_hash_to_its_name_is_one_exact_line(
    moto: MotoServer, store: S3Store, tmp_path: Path, size: int
) -> None:
    """The refusal names the file, the bytes read and the digest; no upload is left open."""
    video, _ = make_video(tmp_path, pattern(size))
    claimed = hashlib.sha256(b"what the manifest said").hexdigest()
    assert failure(lambda: store.put(video, claimed, SIDECAR)) == (
        f"store {store.url}: refusing to store {video}: its {size} bytes do not hash to "
        f"{claimed[:12]}… — it changed after it was verified; run again to fetch a good copy"
    )
    uploads = moto.client().list_multipart_uploads(Bucket=store.bucket, Prefix=store.prefix)
    assert uploads.get("Uploads", []) == []


def test_a_video_that_cannot_be_read_while_uploading_is_named(
    store: S3Store, tmp_path: Path
) -> None:
    """A video path that is a folder is measured but cannot be read: the line names it."""
    folder = tmp_path / "clip.mp4"
    folder.mkdir()
    assert failure(lambda: store.put(folder, "a" * 64, SIDECAR)) == (
        f"store {store.url}: cannot upload {folder}: Is a directory ({folder}) — check the "
        "output folder and run again"
    )
    assert not store.has("a" * 64)


def test_a_read_error_without_a_file_name_is_told_without_one(
    store: S3Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk that fails mid-read (injected) gives an OSError with no file name: the line
    gives its text and no empty "()"."""
    video, sha = make_video(tmp_path, b"a video")

    class Failing(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(Path, "open", lambda self, mode="r": Failing())
    assert failure(lambda: store.put(video, sha, SIDECAR)) == (
        f"store {store.url}: cannot upload {video}: Input/output error — check the output "
        "folder and run again"
    )


def test_a_video_that_is_gone_before_it_is_uploaded_is_named(
    store: S3Store, tmp_path: Path
) -> None:
    """The output file missing when it is put: the line names it and the output folder."""
    missing = tmp_path / "out" / "clip.mp4"
    assert failure(lambda: store.put(missing, "a" * 64, SIDECAR)) == (
        f"store {store.url}: cannot read {missing}: No such file or directory — check the "
        "output folder and run again"
    )


def test_a_corrupt_stored_copy_is_told_with_the_object_to_delete(
    moto: MotoServer, store: S3Store, tmp_path: Path
) -> None:
    """The line names the video, the bytes found and their digest, and the object's URL."""
    video, sha = make_video(tmp_path, b"v" * 5_000)
    store.put(video, sha, SIDECAR)
    key = f"{store.prefix}/{video_key(sha)}"
    moto.client().put_object(Bucket=store.bucket, Key=key, Body=b"w" * 4_000)
    actual = hashlib.sha256(b"w" * 4_000).hexdigest()
    assert failure(lambda: store.get(sha, tmp_path / "back.mp4")) == (
        f"store {store.url}: the stored copy of video {sha[:12]}… is corrupt (4000 bytes "
        f"hashing to {actual[:12]}…) — delete s3://{store.bucket}/{key} and put the video "
        "again from a verified copy"
    )
    assert not (tmp_path / "back.mp4").exists()


def test_a_missing_bucket_is_one_exact_line_per_operation(
    moto: MotoServer, tmp_path: Path
) -> None:
    """Uploading, downloading or reading a sidecar from a bucket that does not exist says
    what was being done, which bucket, and what to do."""
    store = open_store("s3://no-such-bucket-words/p", environ=moto.env())
    video, sha = make_video(tmp_path, b"a video")
    head = "store s3://no-such-bucket-words/p: cannot"
    tail = "bucket 'no-such-bucket-words' does not exist — create it, or fix the bucket in --store"
    assert failure(lambda: store.get_sidecar(sha)) == \
        f"{head} read the sidecar of {sha[:12]}…: {tail}"
    assert failure(lambda: store.put(video, sha, SIDECAR)) == f"{head} upload {video}: {tail}"
    assert failure(lambda: store.get(sha, tmp_path / "back.mp4")) == \
        f"{head} download video {sha[:12]}…: {tail}"
    assert not (tmp_path / "back.mp4").exists()


def test_a_video_the_bucket_never_held_is_told_with_what_to_do(
    store: S3Store, tmp_path: Path
) -> None:
    """Downloading a missing video: its digest, and the two ways out; no file appears."""
    sha = hashlib.sha256(b"never stored").hexdigest()
    assert failure(lambda: store.get(sha, tmp_path / "back.mp4")) == (
        f"store {store.url}: video {sha} is not in the store — generate it again, or point "
        "--store at the store that holds it"
    )
    assert not (tmp_path / "back.mp4").exists()


def test_a_refused_key_is_access_denied_with_what_to_check(
    moto: MotoServer, bucket: str, tmp_path: Path
) -> None:
    """A wrong secret on a GET: the code, and the credentials and policy to check; no secret."""
    store = open_store(f"s3://{bucket}/denied",
                       environ={**moto.env(), "AWS_SECRET_ACCESS_KEY": SECRET})
    assert failure(lambda: store.get_sidecar("a" * 64)) == (
        f"store s3://{bucket}/denied: cannot read the sidecar of {'a' * 12}…: access denied "
        "(SignatureDoesNotMatch) — check the AWS credentials (AWS_ACCESS_KEY_ID / "
        "AWS_PROFILE) and the bucket's policy"
    )
    assert failure(lambda: store.has("a" * 64)) == (
        f"store s3://{bucket}/denied: cannot look up video {'a' * 12}…: access denied (403) "
        "— check the AWS credentials (AWS_ACCESS_KEY_ID / AWS_PROFILE) and the bucket's policy"
    )


# ------------------------------------------------------------------ a server's own words


class _Answering(BaseHTTPRequestHandler):
    """Answers every request with the S3 error the test set on the server."""

    def do_GET(self) -> None:  # the name http.server dispatches to
        self.server.requests += 1  # type: ignore[attr-defined]
        status, body = self.server.answer  # type: ignore[attr-defined]
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_HEAD = do_GET

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output quiet."""


@pytest.fixture
def answering() -> Iterator[ThreadingHTTPServer]:
    """A loopback HTTP server posing as S3 that answers what `server.answer` says."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answering)
    server.answer = (500, "")  # type: ignore[attr-defined]
    server.requests = 0  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _error_xml(code: str, message: str) -> str:
    return (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
            f"<Message>{message}</Message><RequestId>r-1</RequestId></Error>")


def _answering_store(server: ThreadingHTTPServer) -> S3Store:
    store = open_store("s3://bucket/p", environ={
        "AWS_ACCESS_KEY_ID": "AKIATESTTESTTEST", "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{server.server_address[1]}",
        "AWS_REGION": "us-east-1", "AWS_MAX_ATTEMPTS": "1"})
    assert isinstance(store, S3Store)
    return store


def test_another_error_is_told_in_the_server_s_words_on_one_line_without_the_secret(
    answering: ThreadingHTTPServer,
) -> None:
    """An S3 error the store has no words for: its code and message, folded onto one line,
    the secret the server echoed replaced."""
    answering.answer = (400, _error_xml("InvalidArgument",  # type: ignore[attr-defined]
                                        f"bad\n  header   {SECRET} given"))
    store = _answering_store(answering)
    assert failure(lambda: store.get_sidecar("a" * 64)) == (
        f"store s3://bucket/p: cannot read the sidecar of {'a' * 12}…: the server answered "
        "InvalidArgument: bad header *** given — check the store and run again"
    )


EMPTY = _error_xml("InvalidArgument", "")


@pytest.mark.parametrize("body", [EMPTY, EMPTY.replace("<Message></Message>", "")],
                         ids=["empty", "absent"])
def test_an_error_without_a_message_says_so(answering: ThreadingHTTPServer, body: str) -> None:
    """An S3 error with an empty or no message is still told, as "no message"."""
    answering.answer = (400, body)  # type: ignore[attr-defined]
    store = _answering_store(answering)
    assert failure(lambda: store.get_sidecar("a" * 64)) == (
        f"store s3://bucket/p: cannot read the sidecar of {'a' * 12}…: the server answered "
        "InvalidArgument: no message — check the store and run again"
    )


def test_an_error_without_a_code_is_told_by_its_status(answering: ThreadingHTTPServer) -> None:
    """An S3 error whose body gives a message but no code: the status names it."""
    answering.answer = (400, _error_xml("", "oops").replace(  # type: ignore[attr-defined]
        "<Code></Code>", ""))
    store = _answering_store(answering)
    assert failure(lambda: store.get_sidecar("a" * 64)) == (
        f"store s3://bucket/p: cannot read the sidecar of {'a' * 12}…: the server answered "
        "HTTP 400: oops — check the store and run again"
    )


def test_aws_max_attempts_is_how_many_times_a_request_is_sent(
    answering: ThreadingHTTPServer,
) -> None:
    """A server error with AWS_MAX_ATTEMPTS=1 is sent once, not retried (botocore's default
    retries it, sleeping between tries)."""
    answering.answer = (500, _error_xml("InternalError", "down"))  # type: ignore[attr-defined]
    store = _answering_store(answering)
    assert "InternalError: down" in failure(lambda: store.get_sidecar("a" * 64))
    assert answering.requests == 1  # type: ignore[attr-defined]


def test_an_answer_to_a_head_is_told_by_its_status(answering: ThreadingHTTPServer) -> None:
    """A HEAD's error has no body: the line gives the status and what to check."""
    answering.answer = (400, "")  # type: ignore[attr-defined]
    store = _answering_store(answering)
    assert failure(lambda: store.has("a" * 64)) == (
        f"store s3://bucket/p: cannot look up video {'a' * 12}…: the server answered HTTP 400 "
        "and gave no reason — check the AWS credentials, session token and region, then run "
        "again"
    )


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port bound but not listening: every connection to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.mark.parametrize(
    ("endpoint", "shown"),
    [("http://127.0.0.1:{port}/some/path", "http://127.0.0.1:{port}"),
     ("http://user:{secret}@127.0.0.1:{port}", "http://127.0.0.1:{port}"),
     # No port: never reached from a test (the network guard refuses the name).
     ("https://s3.example.invalid/bucket", "https://s3.example.invalid")],
)
def test_an_endpoint_is_shown_by_scheme_host_and_port_only(
    closed_port: int, endpoint: str, shown: str
) -> None:
    """The endpoint that did not answer is named without its path or user info."""
    url = endpoint.format(port=closed_port, secret=SECRET)
    store = open_store("s3://bucket", environ={
        "AWS_ACCESS_KEY_ID": "AKIATESTTESTTEST", "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_ENDPOINT_URL": url, "AWS_REGION": "us-east-1", "AWS_MAX_ATTEMPTS": "1"})
    line = failure(lambda: store.get_sidecar("a" * 64))
    assert line.startswith(f"store s3://bucket: cannot read the sidecar of {'a' * 12}…: "
                           f"{shown.format(port=closed_port)} did not answer (")
    assert line.endswith(") — check AWS_ENDPOINT_URL and that the server is up, then run again")
    assert SECRET not in line


@pytest.mark.parametrize(
    "timeout",
    [ConnectTimeoutError(endpoint_url="http://127.0.0.1:1"),
     ReadTimeoutError(endpoint_url="http://127.0.0.1:1")],
    ids=["connect", "read"],
)
def test_an_endpoint_that_timed_out_is_told_so(
    moto: MotoServer, store: S3Store, monkeypatch: pytest.MonkeyPatch, timeout: Exception
) -> None:
    """A connection or an answer that timed out (injected: botocore waits a minute) reads
    "timed out", not botocore's class name."""
    client = store._client()

    def timing_out(**kwargs: object) -> None:
        raise timeout

    monkeypatch.setattr(client, "get_object", timing_out)
    assert failure(lambda: store.get_sidecar("a" * 64)) == (
        f"store {store.url}: cannot read the sidecar of {'a' * 12}…: {moto.endpoint} did not "
        "answer (timed out) — check AWS_ENDPOINT_URL and that the server is up, then run again"
    )


def test_without_an_endpoint_the_default_aws_endpoint_is_named() -> None:
    """No AWS_ENDPOINT_URL: the line names AWS's own endpoint (never reached from a test:
    the network guard refuses it)."""
    store = open_store("s3://bucket", environ={
        "AWS_ACCESS_KEY_ID": "AKIATESTTESTTEST", "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_REGION": "us-east-1", "AWS_MAX_ATTEMPTS": "1"})
    line = failure(lambda: store.get_sidecar("a" * 64))
    assert ": the default AWS S3 endpoint did not answer (" in line


@pytest.mark.parametrize(
    "abort_error",
    [ClientError({"Error": {"Code": "NoSuchUpload", "Message": "gone"}}, "AbortMultipartUpload"),
     EndpointConnectionError(endpoint_url="http://127.0.0.1:1")],
    ids=["refused", "unreachable"],
)
def test_an_abort_that_fails_does_not_hide_why_the_upload_stopped(
    store: S3Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, abort_error: Exception
) -> None:
    """A multipart upload refused for its digest, whose abort then fails too (injected):
    the user is told the refusal, not the abort's trouble; nothing shows under the key."""
    video, _ = make_video(tmp_path, pattern(PART + 10))
    claimed = hashlib.sha256(b"what the manifest said").hexdigest()
    client = store._client()

    def failing_abort(**kwargs: object) -> None:
        raise abort_error

    monkeypatch.setattr(client, "abort_multipart_upload", failing_abort)
    assert "do not hash to" in failure(lambda: store.put(video, claimed, SIDECAR))
    monkeypatch.undo()
    assert not store.has(claimed)
