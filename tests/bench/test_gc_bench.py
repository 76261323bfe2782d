"""The collector benchmark runs at a tiny size and reports its counts (never checked)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gc_bench_tiny_prints_its_counts_as_json() -> None:
    command = [sys.executable, "-m", "benchmarks.gc_bench", "--requests", "200"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout)
    assert figures["requests"] == 200 and figures["wall_seconds"] > 0
    assert set(figures["by_generation"]) == {"0", "1", "2"}
    assert figures["collections"] == sum(
        g["collections"] for g in figures["by_generation"].values()
    )
