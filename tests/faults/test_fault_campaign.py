"""The fault campaign: a real `runner run` against a real `runner sandbox serve` that
injects each documented kind of trouble. For each: the run ends (bounded), every request
is downloaded and verified or reported with a reason, and the server counted zero
duplicate submissions — also across a second, fault-free run of the same spec."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.faults.harness import (
    SCENARIOS,
    SandboxProcess,
    Scenario,
    audit,
    child_env,
    manifest_events,
    run_command,
    run_runner,
    run_scenario,
    write_spec,
)

pytestmark = pytest.mark.slow

SEEDS = (1, 2, 3, 4)

# The fault kind each scenario must really have injected (proof the test tested it).
INJECTED = {
    "429 storm with Retry-After": "rate_limit",
    "503 on submit": "unavailable",
    "5xx on polls": "poll_error",
    "connection dropped after accepted POST": "drop_after_accept",
    "truncated downloads": "truncated_download",
    "expiring URLs": "short_url",
    "failed generations": "failed_generation",
    "slow server": "slow",
}


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_run_survives_fault(scenario: Scenario, fresh: SandboxProcess, workdir: Path) -> None:
    """Under this fault the run ends, loses nothing, pays for nothing twice."""
    result = run_scenario(fresh, scenario, workdir, SEEDS)

    assert result.audit.ok, result.audit.problems
    assert len(result.audit.done) + len(result.audit.reported) == len(SEEDS), result.output
    for rid, (status, reason) in result.audit.reported.items():
        assert status in ("failed", "unknown") and reason, (rid, status, reason)
        assert reason[:40] in result.output  # told to the user, not just recorded
    assert result.stats["duplicate_submissions"] == 0
    assert result.paid_not_once == ()
    assert result.rerun_submissions == 0
    assert "Traceback" not in result.output
    if scenario.name in INJECTED:
        assert result.stats["faults_injected"].get(INJECTED[scenario.name], 0) >= 1
    else:
        assert result.injected >= 1
    if scenario.all_done:
        assert result.returncode == 0, result.output
        assert len(result.audit.done) == len(SEEDS)
    else:
        assert result.returncode in (0, 1), result.output
    statuses = [status for status, _ in result.audit.reported.values()]
    for status, count in scenario.reported.items():
        assert statuses.count(status) == count, result.audit.reported
    if scenario.reported:
        assert result.returncode == 1


def test_server_goes_away_mid_run_and_comes_back(tmp_path: Path) -> None:
    """The server is SIGKILLed while generations run and restarted from its --state-dir
    on the same port: the run rides it out and finishes with every video, none twice."""
    server = SandboxProcess(
        "--latency", "1.0", "--jitter", "0.1", "--fps", "4",
        state_dir=tmp_path / "server-state", log=tmp_path / "serve.log",
    )
    server.start()
    try:
        seeds = (1, 2, 3, 4, 5, 6)
        spec = write_spec(tmp_path, "away", seeds, "the server goes away and comes back")
        out = tmp_path / "outputs"
        folder = out / "away"
        command = run_command(spec, server.base_url, out, concurrency=3)
        process = subprocess.Popen(
            command, cwd=tmp_path, env=child_env(),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        deadline = time.monotonic() + 30
        # Three generations accepted and none finished: the three workers are polling.
        while time.monotonic() < deadline:
            events = manifest_events(folder)
            if sum(e["event"] == "submitted" for e in events) >= 3:
                break
            time.sleep(0.01)
        else:
            raise AssertionError("the run never got three generations accepted")
        server.kill()
        time.sleep(1.5)  # the server really is away: polls and POSTs meet a closed port
        server.restart()
        stdout, stderr = process.communicate(timeout=90)

        assert process.returncode == 0, stdout + stderr
        result = audit(folder)
        assert result.ok, result.problems
        assert len(result.done) == len(seeds)
        stats = server.stats()  # rebuilt from --state-dir: counts both lives of the server
        assert server.starts == 2
        assert stats["submissions"] == len(seeds)
        assert stats["duplicate_submissions"] == 0
        rerun = run_runner(command, tmp_path)
        assert rerun.returncode == 0
        assert server.stats()["submissions"] == len(seeds)
    finally:
        server.stop()
