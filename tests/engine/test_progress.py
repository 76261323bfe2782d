"""Progress reporters and the run summary."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from runner.clock import FakeClock
from runner.progress import LiveReporter, PlainReporter, Tally, eta_seconds, make_reporter
from runner.summary import RequestReport, RunSummary, SpecOutcome, summary_lines


def test_plain_reporter_prints_at_most_one_line_per_interval() -> None:
    """In CI, progress is a plain line every `every` seconds, plus notes at once."""
    stream = io.StringIO()
    clock = FakeClock()
    reporter = PlainReporter(stream, clock, every=10.0)
    reporter.start(Tally(total=5))
    for done in range(1, 5):  # updates at t = 0, 4, 8, 12
        reporter.update(Tally(total=5, done=done, running=1))
        clock.advance(4.0)
    reporter.note("openai quota reached")
    reporter.stop()
    lines = stream.getvalue().splitlines()
    assert lines[0] == "run: 5 requests, 0 already done"
    progress = [line for line in lines if "done," in line]
    assert len(progress) == 3  # t=0, t=12 (not t=4, t=8), and the final line
    assert "openai quota reached" in lines
    assert lines[-1].startswith("4/5 done, 1 running, 0 waiting, 0 failed")


def test_eta_comes_from_this_runs_pace() -> None:
    """ETA = elapsed / finished-this-run * left; unknown before anything finished."""
    assert eta_seconds(Tally(total=10, done=2), started_done=2, elapsed=30.0) is None
    assert eta_seconds(Tally(total=10, done=4), started_done=2, elapsed=30.0) == 90.0
    assert eta_seconds(Tally(total=10, done=10), started_done=0, elapsed=5.0) == 0.0


def test_live_bar_on_a_terminal_plain_lines_otherwise() -> None:
    """A terminal gets the rich bar with counts; a pipe gets plain lines."""
    assert isinstance(make_reporter(io.StringIO(), FakeClock()), PlainReporter)
    out = io.StringIO()
    live = LiveReporter(Console(file=out, force_terminal=True, width=120))
    live.start(Tally(total=3))
    live.update(Tally(total=3, done=1, running=1, failed=1))
    live.stop()
    text = out.getvalue()
    assert "1 done" in text and "1 running" in text and "1 failed" in text
    assert "2/3" in text


def test_a_pipe_gets_plain_lines_without_loading_rich() -> None:
    """Not on a terminal, rich (~30 ms of every start) is never imported."""
    code = (
        "import io, sys\n"
        "from runner.clock import FakeClock\n"
        "from runner.progress import PlainReporter, make_reporter\n"
        "assert isinstance(make_reporter(io.StringIO(), FakeClock()), PlainReporter)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'rich'))\n"
    )
    env = {"PATH": "", "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(("name", "value", "live"), [
    ("FORCE_COLOR", "1", True), ("TTY_COMPATIBLE", "1", True),
    ("FORCE_COLOR", "", False), ("TTY_COMPATIBLE", "0", False),
])
def test_the_environment_can_make_a_pipe_a_terminal(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, live: bool
) -> None:
    """FORCE_COLOR and TTY_COMPATIBLE mean what rich says they mean (a live bar in CI)."""
    for other in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(other, raising=False)
    monkeypatch.setenv(name, value)
    reporter = make_reporter(io.StringIO(), FakeClock())
    assert isinstance(reporter, LiveReporter if live else PlainReporter)


def test_summary_counts_video_seconds_and_where_outputs_are() -> None:
    """The closing summary gives counts, video seconds, wall time, folders and problems."""
    reports = (
        RequestReport("a", "s.yaml", "a.mp4", "done", video_seconds=5.0, paid=True),
        RequestReport("b", "s.yaml", "b.mp4", "already_done"),
        RequestReport("c", "s.yaml", "c.mp4", "unknown", "connection lost"),
    )
    summary = RunSummary(reports, (SpecOutcome("s.yaml", Path("outputs/s"), ()),), 0.0, 75.0)
    lines = summary_lines(summary)
    assert lines[0] == "summary: 3 requests — 2 done (1 new, 1 already), 1 unknown outcome"
    assert lines[1] == "  5 s of video generated in 1m15s"
    assert lines[2] == "  spent an amount the provider did not say (no price known) on 1 submission"
    assert "outputs: outputs/s/" in lines[3]
    assert any("unknown: s.yaml: c.mp4: connection lost" in line for line in lines)
    assert any("--resubmit-unknown" in line for line in lines)
    assert summary.exit_code == 1
