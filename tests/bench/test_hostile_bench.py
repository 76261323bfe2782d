"""The hostile-spec benchmark runs end to end once (figures are not checked)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_hostile_bench_refuses_every_bomb_and_prints_its_time() -> None:
    """Each bomb is refused (the benchmark exits non-zero otherwise) and gets one line."""
    command = [sys.executable, "benchmarks/hostile_bench.py", "--repeat", "1"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert len(lines) == 2 + 7 + 3
    assert all(line.endswith(" ms") for line in lines)
    assert lines[0].startswith("yaml alias bomb: ")
    assert lines[-1].startswith("runner validate template_bombs.yaml (512 MB cap): ")
