"""The issue-7 benchmark script runs end to end at a tiny size (figures are not checked)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_run_bench_tiny_prints_json_and_a_table(tmp_path: Path) -> None:
    """Scenarios 1-7 run at a tiny size and report one row per figure, JSON then Markdown
    (scenario 8 has its own smoke test, tests/bench/test_waves_bench.py)."""
    command = [
        sys.executable, "-m", "benchmarks.run_bench", "--quick", "--only", "1,2,3,4,5,6,7",
        "--n", "12",
        "--concurrency", "6", "--latency", "0.3", "--docs-n", "2", "--noop-n", "40",
        "--plan-n", "200", "--json-out", str(tmp_path / "bench.json"),
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    document = json.loads((tmp_path / "bench.json").read_text())
    scenarios = {row["scenario"].split()[0] for row in document["rows"]}
    assert scenarios == {"1", "2", "3", "4", "5", "6", "7"}
    assert all(row["value"] is not None for row in document["rows"])
    by_metric = {row["metric"]: row["value"] for row in document["rows"]}
    assert by_metric["duplicate submissions"] == 0
    assert by_metric["HTTP requests to the API"] == 0  # the no-op re-run sent nothing
    assert document["machine"]["nproc"] >= 1
    assert "| scenario | metric | measured | target | met |" in done.stdout
