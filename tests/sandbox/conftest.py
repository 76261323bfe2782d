"""Fixtures for the sandbox tests: images, a client in the API docs' style, servers."""

from __future__ import annotations

import base64
import io
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image

from runner.sandbox import RunningSandbox, SandboxConfig, start_in_thread

ENDPOINT = "/v2/generate/video/runway/generation"
AUTH = {"Authorization": "Bearer test-key"}
FAST = {"latency": 0.0, "jitter": 0.0}  # generations finish at once; the render is the wait


def png_data_uri(size: tuple[int, int] = (64, 36), color: tuple[int, int, int] = (200, 60, 40),
                 mime: str = "png") -> str:
    """Return a real image (with a stripe, so motion shows) as a data: URI."""
    image = Image.new("RGB", size, color)
    image.paste((20, 20, 220), (0, 0, size[0] // 3, size[1]))
    buffer = io.BytesIO()
    image.save(buffer, mime.upper())
    return f"data:image/{mime};base64," + base64.b64encode(buffer.getvalue()).decode()


IMAGE = png_data_uri()


def body(**changes: Any) -> dict[str, Any]:
    """Return a valid gen4_turbo create body, with `changes` applied."""
    base = {"model": "runway/gen4_turbo", "image_url": IMAGE, "prompt": "a slow dolly",
            "ratio": "16:9", "duration": 5, "seed": 1}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


@dataclass
class Client:
    """A small requests-based client of one sandbox (what the tests drive)."""

    base_url: str
    session: requests.Session = field(default_factory=requests.Session)

    def create(self, payload: dict[str, Any], headers: dict[str, str] | None = None
               ) -> requests.Response:
        return self.session.post(self.base_url + ENDPOINT, json=payload,
                                 headers=AUTH if headers is None else headers, timeout=10)

    def poll(self, generation_id: str, headers: dict[str, str] | None = None
             ) -> requests.Response:
        return self.session.get(self.base_url + ENDPOINT, params={"generation_id": generation_id},
                                headers=AUTH if headers is None else headers, timeout=10)

    def wait(self, generation_id: str, deadline: float = 20.0) -> dict[str, Any]:
        """Poll until the generation leaves queued/generating; return the last result."""
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            response = self.poll(generation_id)
            if response.status_code == 200:
                result: dict[str, Any] = response.json()
                if result["status"] not in ("queued", "generating"):
                    return result
            time.sleep(0.02)
        raise AssertionError(f"generation {generation_id} did not finish in {deadline}s")

    def generate(self, payload: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
        """Create, wait, download; return the final poll result and the video bytes."""
        created = self.create(payload)
        assert created.status_code == 200, created.text
        result = self.wait(created.json()["id"])
        assert result["status"] == "completed", result
        video = self.session.get(result["video"][0], timeout=10)
        assert video.status_code == 200, video.text
        return result, video.content

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = self.session.get(self.base_url + "/_sandbox/stats").json()
        return stats

    def configure(self, **knobs: Any) -> requests.Response:
        return self.session.post(self.base_url + "/_sandbox/config", json=knobs, timeout=10)


@pytest.fixture
def make_sandbox() -> Iterator[Callable[..., tuple[RunningSandbox, Client]]]:
    """Start in-thread sandboxes with fast defaults; stop them after the test."""
    started: list[RunningSandbox] = []

    def make(**knobs: Any) -> tuple[RunningSandbox, Client]:
        running = start_in_thread(SandboxConfig(**{**FAST, **knobs}))
        started.append(running)
        return running, Client(running.base_url)

    yield make
    for running in started:
        running.stop()


@pytest.fixture
def client(make_sandbox: Callable[..., tuple[RunningSandbox, Client]]) -> Client:
    """A client of a fresh, fault-free, instant sandbox."""
    return make_sandbox()[1]


def start_serve_process(stderr: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    """Launch `runner sandbox serve --port 0 ARGS` and return it with its base URL."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with stderr.open("a") as err:  # a file, not a pipe: a full pipe would stall the server
        process = subprocess.Popen(
            [sys.executable, "-m", "runner", "sandbox", "serve", "--port", "0", *args],
            stdout=subprocess.PIPE, stderr=err, text=True, env=env,
        )
    assert process.stdout is not None
    first = process.stdout.readline().strip()
    if not first.startswith("serving on http://127.0.0.1:"):
        process.kill()
        process.wait(timeout=10)
        raise AssertionError(f"serve did not start: {first!r} {stderr.read_text()!r}")
    return process, first.removeprefix("serving on ")


@pytest.fixture
def serve_process(tmp_path: Path) -> Iterator[Callable[..., tuple[subprocess.Popen[str], str]]]:
    """Start `runner sandbox serve` subprocesses; terminate them after the test."""
    processes: list[subprocess.Popen[str]] = []

    def start(*args: str) -> tuple[subprocess.Popen[str], str]:
        process, base_url = start_serve_process(tmp_path / "serve.stderr", *args)
        processes.append(process)
        return process, base_url

    yield start
    for process in processes:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=10)
