"""The planning benchmarks run end to end at a tiny size and print every figure."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> list[str]:
    done = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.splitlines()


def test_plan_parts_times_each_phase_of_a_small_plan() -> None:
    lines = _run("benchmarks.plan_parts", "--requests", "200", "--rounds", "1")
    assert lines[0].startswith("200 requests, best of 1 rounds (CPU probe ")
    for phase in ("imports", "load", "plan", "json", "sum"):
        assert any(re.match(rf"  {phase} +\d+\.\d+ s +\d+\.\d+ µs/request$", line)
                   for line in lines), phase
    assert re.match(r"dataclass of 11 fields: frozen \d+\.\d+ µs, not frozen \d+\.\d+ µs$",
                    lines[-1])


def test_plan_versions_runs_a_checkout_of_the_code_and_removes_it() -> None:
    before = subprocess.run(["git", "worktree", "list"], cwd=ROOT, capture_output=True,
                            text=True, check=True).stdout
    lines = _run("benchmarks.plan_versions", "HEAD", "--requests", "200", "--rounds", "2")
    assert lines[0] == "runner plan --json, 200 requests (issue 15's grid):"
    assert re.match(r"  HEAD +median +\d+\.\d+ s +\(\d+\.\d+, \d+\.\d+\) +peak \d+ MB +"
                    r"1\.00 x faster than HEAD$", lines[1]), lines[1]
    after = subprocess.run(["git", "worktree", "list"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout
    assert after == before  # its checkout is gone again
