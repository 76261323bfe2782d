"""Issue 15's benchmark scenarios (planning at scale, polling from the first wave beside the
provider's SDK) run end to end at a tiny size; figures are reported, never checked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_planning_and_waves_scenarios_run_against_both_servers(tmp_path: Path) -> None:
    """Scenarios 6 and 8 at a tiny size: two plan sizes, and for the sandbox and the
    documented-protocol server the SDK, our run, a cold start and a run from history,
    every generation done once and each counted by the server."""
    command = [
        sys.executable, "-m", "benchmarks.run_bench", "--quick", "--only", "6,8",
        "--latency", "0.3", "--waves", "8/4", "--plan-n", "200", "--plan-n", "400",
        "--json-out", str(tmp_path / "bench.json"),
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stderr[-2000:]
    document = json.loads((tmp_path / "bench.json").read_text())
    scenarios = {row["scenario"] for row in document["rows"]}
    assert scenarios == {"6 planning", "8 waves, sandbox", "8 waves, doc server"}
    assert all(row["value"] is not None for row in document["rows"])
    plans = document["raw"]["plan"]
    assert sorted(plans) == ["200", "400"]
    assert all(p["exit_code"] == 0 and "--json" in p["command"] for p in plans.values())
    runs = document["raw"]["waves"]
    assert [r["kind"] for r in runs] == ["sandbox", "doc"]
    for r in runs:
        for who in ("sdk", "ours", "cold", "history"):
            figures = r[who]
            assert figures["generations"] == 8, (r["kind"], who)
            assert figures["duplicates"] == 0, (r["kind"], who)
        assert r["sdk"]["completed"] == 8
    assert "| 8 waves, doc server | N=8, C=4: polls per generation, first wave |" in done.stdout
    assert all("startup" in r["ours"] for r in runs if r["kind"] == "doc")
