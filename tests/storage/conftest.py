"""Fixtures for the storage tests: requests, real MP4s, a loopback HTTP file server."""

from __future__ import annotations

import http.server
import os
import random
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import av
import numpy as np
import pytest

from runner.request import Request

REPO = Path(__file__).resolve().parents[2]


def make_request(n: int = 0, *, prompt: str = "a dragon", output: str | None = None) -> Request:
    """Build a distinct request numbered `n`."""
    return Request(
        id=f"req{n:012d}",
        spec="specs/test.yaml",
        spec_name="test",
        job="default",
        provider="sandbox",
        model="runway/gen4_turbo",
        endpoint="/v2/generate/video/runway/generation",
        body={
            "model": "runway/gen4_turbo",
            "image_url": "sha256:" + "ab" * 32,
            "prompt": prompt,
            "ratio": "16:9",
            "duration": 5,
            "seed": n,
        },
        output=output or f"16x9/seed-{n}.mp4",
        matrix={"seed": n, "ratio": "16:9"},
        seed_derived=False,
    )


def write_video(path: Path, *, width: int = 64, height: int = 48, frames: int = 12) -> Path:
    """Encode a small real H.264 MP4 at 12 fps with PyAV."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=12)
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        for i in range(frames):
            pixels = np.full((height, width, 3), (i * 20) % 256, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="session")
def video_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The bytes of one small real MP4 (64x48, 1 s, H.264)."""
    return write_video(tmp_path_factory.mktemp("video") / "clip.mp4").read_bytes()


def run_python(code: str, *args: str, **kwargs: Any) -> subprocess.Popen[str]:
    """Start a real Python subprocess running `code` with the repo importable."""
    # Extend PYTHONPATH, never replace it: it carries the suite's network guard.
    paths = [str(REPO), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths), PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **kwargs,
    )


# --------------------------------------------------------------------- file server


@dataclass
class FileServer:
    """A real HTTP server on 127.0.0.1 whose routes tests configure."""

    port: int
    files: dict[str, bytes] = field(default_factory=dict)
    hits: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_state: FileServer  # set per server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        """Keep test output quiet."""

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        state = self.server_state
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        route = parts.path
        state.hits.append(route)
        if route.startswith("/status/"):
            self._send(int(route.rsplit("/", 1)[1]), b'{"message": "nope"}')
        elif route == "/redirect":
            self._redirect(query["to"])
        elif route == "/truncated":
            body = state.files[query["file"]]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
        elif route == "/big":
            self._big(int(query["size"]), delay=float(query.get("delay", "0")))
        elif route == "/pieces":
            self._pieces(state.files[query["file"]], int(query.get("seed", "0")))
        elif route in state.files:
            self._send(200, state.files[route])
        else:
            self._send(404, b'{"message": "not found"}')

    def _send(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, to: str) -> None:
        self.send_response(302)
        self.send_header("Location", to)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _pieces(self, body: bytes, seed: int) -> None:
        """Send `body` in writes of irregular sizes (1 byte to 3 MiB), so the client's
        reads never line up with its chunks."""
        rng = random.Random(seed)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        view = memoryview(body)
        while view:
            n = rng.choice((1, 7, 4096, 65_537, 262_143, 1 << 20, 3 << 20))
            try:
                self.wfile.write(view[:n])
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                return
            view = view[n:]

    def _big(self, size: int, *, delay: float) -> None:
        block = bytes(range(256)) * 4096  # 1 MiB
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        sent = 0
        stop = threading.Event()
        while sent < size:
            piece = block[: min(len(block), size - sent)]
            try:
                self.wfile.write(piece)
            except (BrokenPipeError, ConnectionResetError):
                return
            sent += len(piece)
            if delay:
                stop.wait(delay)  # a slow server, so a client can be killed mid-stream


@pytest.fixture
def file_server() -> Iterator[FileServer]:
    """Serve configured files (and faulty routes) over real HTTP on loopback."""
    handler = type("Handler", (_Handler,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    state = FileServer(port=server.server_address[1])
    handler.server_state = state
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


class SyscallTrace:
    """Record the write/fsync/replace/open syscalls a piece of code makes, in order."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[str, str]] = []
        self.paths: dict[int, str] = {}
        real_open, real_write, real_fsync = os.open, os.write, os.fsync
        real_replace = os.replace

        def traced_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
            fd = real_open(path, flags, *args, **kwargs)
            self.paths[fd] = os.fspath(path)
            return fd

        def traced_write(fd: int, data: Any) -> int:
            written = real_write(fd, data)
            self.calls.append(("write", self.paths.get(fd, "?")))
            return written

        def traced_fsync(fd: int) -> None:
            real_fsync(fd)
            self.calls.append(("fsync", self.paths.get(fd, "?")))

        def traced_replace(src: Any, dst: Any) -> None:
            real_replace(src, dst)
            self.calls.append(("replace", f"{os.fspath(src)} -> {os.fspath(dst)}"))

        monkeypatch.setattr(os, "open", traced_open)
        monkeypatch.setattr(os, "write", traced_write)
        monkeypatch.setattr(os, "fsync", traced_fsync)
        monkeypatch.setattr(os, "replace", traced_replace)
