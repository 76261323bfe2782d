"""An S3 server that breaks off a download: the store refuses it and leaves dest as it was."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from runner.store import StoreError, open_store

PROMISED = 100_000  # the Content-Length announced
SENT = 4_000  # the bytes actually sent before the connection closes


class _Truncating(BaseHTTPRequestHandler):
    """Answers every GET with 200 and a body cut short; everything else with 500."""

    def do_GET(self) -> None:  # the name http.server dispatches to
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(PROMISED))
        self.end_headers()
        self.wfile.write(b"\x00" * SENT)
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output quiet."""


@pytest.fixture
def truncating_s3() -> Iterator[str]:
    """A loopback HTTP server posing as S3 whose downloads end early."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Truncating)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_download_cut_short_is_refused_and_dest_kept(truncating_s3: str, tmp_path: Path) -> None:
    """Fewer bytes than announced: one StoreError line, dest unchanged, no temp file left."""
    environ = {
        "AWS_ACCESS_KEY_ID": "AKIATESTTESTTEST",
        "AWS_SECRET_ACCESS_KEY": "test-secret",
        "AWS_ENDPOINT_URL": truncating_s3,
        "AWS_REGION": "us-east-1",
        "AWS_MAX_ATTEMPTS": "1",
    }
    store = open_store("s3://bucket/p", environ=environ)
    dest = tmp_path / "out" / "clip.mp4"
    dest.parent.mkdir()
    dest.write_bytes(b"the copy we had")
    sha = hashlib.sha256(b"x").hexdigest()
    with pytest.raises(StoreError) as caught:
        store.get(sha, dest)
    message = str(caught.value)
    assert message == (
        f"store s3://bucket/p: cannot download video {sha[:12]}…: the transfer ended early "
        "(IncompleteReadError) — run again"
    )
    assert "test-secret" not in message
    assert dest.read_bytes() == b"the copy we had"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["clip.mp4"]
