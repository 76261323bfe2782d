"""--state-dir: a restarted (even killed) server still knows its generations and URLs."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import requests

from runner.sandbox import RunningSandbox
from tests.sandbox.conftest import Client, body

Make = Callable[..., tuple[RunningSandbox, Client]]
Serve = Callable[..., tuple[subprocess.Popen[str], str]]


def test_restart_keeps_generations_urls_and_duplicate_counts(
    make_sandbox: Make, tmp_path: Path
) -> None:
    """After a restart the old id polls, its old URL downloads, and a repeat is a duplicate."""
    running, client = make_sandbox(state_dir=tmp_path)
    result, video = client.generate(body())
    running.stop()

    _, again = make_sandbox(state_dir=tmp_path)
    assert again.wait(result["id"])["status"] == "completed"
    assert requests.get(result["video"][0].replace(client.base_url, again.base_url),
                        timeout=10).content == video
    again.create(body())
    stats = again.stats()
    assert stats["submissions"] == 2 and stats["duplicate_submissions"] == 1


def test_restart_keeps_the_schedule_of_queued_work(make_sandbox: Make, tmp_path: Path) -> None:
    """A generation still running when the server stopped is still running after restart."""
    running, client = make_sandbox(state_dir=tmp_path, latency=60.0)
    gen_id = client.create(body()).json()["id"]
    running.stop()
    _, again = make_sandbox(state_dir=tmp_path, latency=60.0, concurrency=1)
    assert again.poll(gen_id).json()["status"] == "generating"
    later = again.create(body(seed=9)).json()["id"]
    assert again.poll(later).json()["status"] == "queued"  # the restored one holds the slot


def test_server_killed_with_sigkill_comes_back_knowing_its_generation(
    serve_process: Serve, tmp_path: Path
) -> None:
    """kill -9 of `runner sandbox serve --state-dir` loses no accepted generation."""
    state = tmp_path / "state"
    process, base_url = serve_process("--state-dir", str(state), "--latency", "0.1")
    client = Client(base_url)
    gen_id = client.create(body()).json()["id"]
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)

    _, base_url = serve_process("--state-dir", str(state), "--latency", "0.1")
    restarted = Client(base_url)
    result = restarted.wait(gen_id)
    assert result["status"] == "completed"
    assert requests.get(result["video"][0], timeout=10).content[4:8] == b"ftyp"
    assert restarted.stats()["submissions"] == 1
    assert (state / "signing.key").stat().st_mode & 0o077 == 0  # owner-only
