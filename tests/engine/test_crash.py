"""Crash tests: a real `runner run` process, SIGKILLed at several points, then resumed.

The sandbox runs as its own `runner sandbox serve` process and outlives every kill, as
the real API would; its /_sandbox/stats counts every accepted body, so the test can
prove no request was accepted twice. Results are judged with `tests.oracles` (manifest,
hashes, MP4 structure read without runner code).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.oracles import mp4_problem, read_log, read_manifest, sha256_of

from .conftest import make_image

pytestmark = pytest.mark.slow

SEEDS = [1, 2, 3, 4, 5, 6]


@pytest.fixture
def serve() -> Iterator[Callable[..., str]]:
    """Start `runner sandbox serve` processes; return base URLs; stop them afterwards."""
    processes: list[subprocess.Popen[str]] = []

    def start(*args: str) -> str:
        process = subprocess.Popen(
            [sys.executable, "-m", "runner", "sandbox", "serve", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        processes.append(process)
        assert process.stdout is not None
        first = process.stdout.readline().strip()
        assert first.startswith("serving on http://127.0.0.1:"), first
        return first.removeprefix("serving on ")

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=10)


def _write_spec(folder: Path) -> Path:
    image = make_image(folder / "images")
    spec = folder / "crash.yaml"
    spec.write_text(
        "version: 1\n"
        "name: crash\n"
        "provider: aimlapi\n"
        "model: runway/gen4_turbo\n"
        f"matrix:\n  seed: {SEEDS}\n"
        "params:\n"
        f"  image_url: images/{image.path.name}\n"
        "  prompt: a slow push toward the mountain\n"
        '  ratio: "16:9"\n'
        "  duration: 5\n"
        "output: \"seed-{{ seed }}.mp4\"\n",
        encoding="utf-8",
    )
    return spec


def _events(manifest: Path) -> list[dict[str, Any]]:
    """Complete records of the manifest (a torn tail is not a record)."""
    return list(read_log(manifest.parent).records)


def _stats(base_url: str) -> dict[str, Any]:
    data: dict[str, Any] = httpx.get(f"{base_url}/_sandbox/stats").json()
    return data


def _wait_until_answered(base_url: str, deadline: float = 20.0) -> dict[str, Any]:
    """Wait until the server has answered every API call it received (each accepted
    or refused, none still being handled); return its counters then."""
    end = time.monotonic() + deadline
    while True:
        stats = _stats(base_url)
        answered = stats["submissions"] + sum(stats["rejected"].values()) + stats["price_queries"]
        if answered >= stats["requests"]:
            return stats
        assert time.monotonic() < end, f"the server is still handling calls: {stats}"
        time.sleep(0.01)


def _count(events: list[dict[str, Any]], name: str) -> int:
    return sum(1 for e in events if e["event"] == name)


def _run_cmd(spec: Path, base_url: str, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "runner", "run", "--sandbox", "--base-url", base_url,
        str(spec), "--output-dir", str(out), "--concurrency", str(len(SEEDS)),
        "--poll-min", "0.05", "--poll-max", "0.2", *extra,
    ]


def _kill_when(
    command: list[str], cwd: Path, manifest: Path, ready: Callable[[list[dict[str, Any]]], bool]
) -> bool:
    """Run `command`; SIGKILL it as soon as `ready(events)`; return whether it was killed."""
    process = subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    try:
        while process.poll() is None and time.monotonic() < deadline:
            if ready(_events(manifest)):
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=10)
                return True
            time.sleep(0.002)
        return False
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def _parts(folder: Path) -> bool:
    return any(folder.rglob("*.part"))


def test_sigkill_at_several_points_then_resume(serve: Callable[..., str], tmp_path: Path) -> None:
    """Killed while polling, mid-batch, mid-download and late, the run resumes to
    every video present and verified, and no request body is accepted twice."""
    base_url = serve("--latency", "0.6", "--jitter", "0.3", "--fps", "4")
    spec = _write_spec(tmp_path)
    out = tmp_path / "outputs"
    folder = out / "_sandbox" / "crash"  # --sandbox runs keep their own tree
    manifest = folder / "manifest.jsonl"
    n = len(SEEDS)

    def all_submitted(events: list[dict[str, Any]]) -> bool:
        # Every POST has its id: no submission can be in flight (concurrency >= batch).
        return _count(events, "submitted") >= n

    kill_points: list[Callable[[list[dict[str, Any]]], bool]] = [
        all_submitted,  # first run: every generation polling
        lambda e: _count(e, "completed") >= 1,  # resumed: first generation done
        lambda e: _parts(folder),  # resumed: a download in progress
        lambda e: _count(e, "downloaded") >= 3,  # resumed: half the videos in place
        lambda e: _count(e, "downloaded") >= n - 1,  # resumed: one video left
    ]
    killed = 0
    for ready in kill_points:
        if _kill_when(_run_cmd(spec, base_url, out), tmp_path, manifest, ready):
            killed += 1
    assert killed >= 3  # the kills really happened, mid-work

    final = subprocess.run(
        _run_cmd(spec, base_url, out), cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert final.returncode == 0, final.stdout + final.stderr

    states = read_manifest(folder)
    assert len(states) == n
    for state in states.values():
        assert state.status == "done"
        assert state.output is not None
        video = folder / state.output
        assert sha256_of(video) == state.sha256
        assert video.stat().st_size == state.size
        assert mp4_problem(video) is None
        sidecar = json.loads(video.with_suffix(".json").read_text())
        assert sidecar["sha256"] == state.sha256
    assert not _parts(folder)
    stats = httpx.get(f"{base_url}/_sandbox/stats").json()
    assert stats["submissions"] == n
    assert stats["duplicate_submissions"] == 0
    assert all(count == 1 for count in stats["submissions_by_body"].values())


def test_sigkill_between_post_and_record_is_settled_from_the_usage_logs(
    serve: Callable[..., str], tmp_path: Path
) -> None:
    """Killed after its POSTs reached the server and before any answer was recorded, a run
    leaves unknown outcomes; the next run finds each in the usage logs and collects it:
    0 bought twice, 0 unknown left."""
    # Every API answer waits 3 s after the work is done, so the first POSTs (4 at once:
    # runner.transport opens at most 4 connections to a server that has not answered yet)
    # are accepted and none is answered when the kill lands.
    base_url = serve("--latency", "0.2", "--jitter", "0", "--fault", "slow=1.0")
    spec = _write_spec(tmp_path)
    out = tmp_path / "outputs"
    folder = out / "_sandbox" / "crash"  # --sandbox runs keep their own tree
    manifest = folder / "manifest.jsonl"
    httpx.post(f"{base_url}/_sandbox/config", json={"slow_seconds": 3.0})

    def posts_received(events: list[dict[str, Any]]) -> bool:
        # Every announced POST has been accepted by the server, no answer has arrived
        # (the slow fault holds each answer back after the generation is created).
        return _count(events, "submitted") == 0 and _stats(base_url)["submissions"] >= 4

    assert _kill_when(_run_cmd(spec, base_url, out), tmp_path, manifest, posts_received)
    accepted_before = _wait_until_answered(base_url)["submissions"]
    unknown = {rid for rid, s in read_manifest(folder).items() if s.status == "unknown"}
    assert unknown and accepted_before == len(unknown)  # accepted, billed, answer lost

    httpx.post(f"{base_url}/_sandbox/config", json={"faults": {"slow": 0.0}})
    resumed = subprocess.run(
        _run_cmd(spec, base_url, out), cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    states = read_manifest(folder)
    assert all(s.status == "done" for s in states.values()) and len(states) == len(SEEDS)
    stats = _stats(base_url)
    assert stats["duplicate_submissions"] == 0
    assert stats["submissions"] == len(SEEDS)
    settled = [r for r in read_log(folder).records if r.get("evidence")]
    assert {r["id"] for r in settled} == unknown  # each found through its client id
    assert all(r["evidence"]["source"] == "usage logs" for r in settled)
