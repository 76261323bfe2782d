"""The money benchmark runs end to end at a tiny size (figures are not checked)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_money_bench_tiny_prints_every_figure() -> None:
    """A 20-request plan priced and a 6-request budget run: the three lines, the budget's
    stop (exit 3) and the finishing run without duplicates."""
    command = [sys.executable, "benchmarks/money_bench.py", "--requests", "20", "--batch", "6",
               "--in-flight", "3"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("plan of 20 requests: ")
    assert lines[1].startswith("budget run: 6 requests") and ": exit 3 after" in lines[1]
    assert lines[2].startswith("then a larger budget: exit 0") and "0 duplicates" in lines[2]
