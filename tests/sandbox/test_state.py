"""--state-dir: a restarted (even killed) server still knows its generations and URLs."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import requests

from runner.sandbox import RunningSandbox
from runner.sandbox.render import RenderJob
from runner.sandbox.state import Generation, Phase, Scheduler, StateStore
from tests.sandbox.conftest import Client, body

JOB = RenderJob("runway/gen4_turbo", 160, 90, 8, 5, 1, "p", "abc", b"image bytes")

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


def test_scheduler_is_first_come_first_served_over_its_slots() -> None:
    """Two slots, four 1-second generations at t=0: two run at once, two queue behind them."""
    scheduler = Scheduler(concurrency=2, seed=0, now=0.0)
    times = [scheduler.schedule(now=0.0, latency=1.0, jitter=0.0) for _ in range(4)]
    assert times == [(0.0, 1.0), (0.0, 1.0), (1.0, 2.0), (1.0, 2.0)]
    assert scheduler.schedule(now=5.0, latency=1.0, jitter=0.0) == (5.0, 6.0)  # idle slot


def test_scheduler_jitter_is_bounded_and_seeded() -> None:
    """Latency ± jitter stays in bounds and repeats exactly for the same seed."""
    def runs(seed: int) -> list[float]:
        scheduler = Scheduler(concurrency=100, seed=seed, now=0.0)
        return [end - start for start, end in
                (scheduler.schedule(0.0, latency=1.0, jitter=0.25) for _ in range(100))]

    assert runs(1) == runs(1) != runs(2)
    assert all(0.75 <= run <= 1.25 for run in runs(1))


def test_generation_phase_follows_the_clock() -> None:
    """A generation is queued before its start, generating until its end, then done."""
    scheduler = Scheduler(concurrency=1, seed=0, now=0.0)
    scheduler.schedule(0.0, 2.0, 0.0)
    start, end = scheduler.schedule(0.0, 2.0, 0.0)
    gen = Generation("g", "b", JOB, JOB.key(), 0.0, start, end, None, False)
    assert [gen.phase(t) for t in (1.0, 2.0, 3.9, 4.0)] == [
        Phase.QUEUED, Phase.GENERATING, Phase.GENERATING, Phase.DONE]


def test_state_store_round_trip_ignores_a_torn_last_line(tmp_path: Path) -> None:
    """Stored generations load back equal; a line cut short by a kill is skipped."""
    store = StateStore(tmp_path)
    gen = Generation("g1", "b", JOB, JOB.key(), 10.0, 11.0, 12.0, None, False)
    store.append(gen, wall_offset=1000.0)
    with (tmp_path / "generations.jsonl").open("a") as fh:
        fh.write('{"id": "g2", "bod')
    assert list(StateStore(tmp_path).load(wall_offset=1000.0)) == [gen]
