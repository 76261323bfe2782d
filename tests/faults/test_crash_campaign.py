"""The crash campaign: a real `runner run` SIGKILLed at random moments (submit, poll,
download, manifest writes), resumed each time until done. The manifest must be readable
at every instant, a partial download is never taken for a video, and in the end every
video is present and verified with no request paid for twice.

A few kills keep this fast; `python benchmarks/reliability.py --kills 200` runs many.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.harness import SandboxProcess, crash_campaign, paid_not_once, write_spec

pytestmark = pytest.mark.slow

SEEDS = tuple(range(1, 13))


@pytest.fixture
def slow_server(tmp_path: Path) -> Iterator[SandboxProcess]:
    """A sandbox whose generations take ~0.4 s, so kills land mid-work."""
    server = SandboxProcess("--latency", "0.4", "--jitter", "0.1", "--fps", "4",
                            log=tmp_path / "serve.log")
    server.start()
    yield server
    server.stop()


def test_random_sigkills_then_resume_lose_nothing(slow_server: SandboxProcess,
                                                   tmp_path: Path) -> None:
    """Killed at random moments and resumed, the batch ends with every video verified,
    the manifest readable throughout, no partial file taken, no body accepted twice."""
    spec = write_spec(tmp_path, "crash", SEEDS, "a crash campaign over a quiet harbour")
    stats = crash_campaign(spec, slow_server, tmp_path / "outputs", random.Random(5),
                           kills=4, concurrency=2, within=1.2)

    assert stats.total_kills >= 3, stats.kills  # the kills really landed mid-work
    assert stats.unreadable == 0
    assert stats.broken == 0, stats.problems
    assert stats.final is not None and stats.final.ok, stats.final and stats.final.problems
    server = slow_server.stats()
    assert server["duplicate_submissions"] == 0
    # Every request has its video, except one whose POST a kill cut off after the server
    # accepted it: that one is reported unknown (paid, its id lost), never resubmitted.
    assert len(stats.final.done) == len(SEEDS) - stats.unknown_accepted
    assert all(status == "unknown" for status, _ in stats.final.reported.values())
    assert server["submissions"] == len(SEEDS)
    folder = tmp_path / "outputs" / "crash"
    assert paid_not_once(folder, stats.final.done, server, tmp_path) == ()
