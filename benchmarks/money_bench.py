"""What pricing costs a plan, and a budget run with 20 submissions in flight.

    python benchmarks/money_bench.py [--requests 10000] [--batch 40] [--in-flight 20]

1. Plan: `runner.planning.build_plan` of a spec of N requests (one model, two
   resolutions, seeds 1..N/2) without prices and with the sandbox's price list, median of
   3: what pricing every request adds.
2. Budget: `runner run --max-cost` (a real subprocess) of a batch against a
   `runner sandbox serve` subprocess whose generations take 1 s, with --concurrency 20 and
   a ceiling of 55 % of the batch's estimate: what the sandbox billed against the
   ceiling, the most generations it had in flight at once, the exit code (3: stopped at
   the budget); then the same run with a larger budget finishes the batch (billed total,
   duplicate submissions).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runner.planning import build_plan  # noqa: E402
from runner.pricing import Pricer  # noqa: E402
from runner.spec import load_specs  # noqa: E402


def spec_text(requests: int, name: str = "money") -> str:
    """A spec of `requests` requests (rounded to even) at two resolutions."""
    return (
        f"version: 1\nname: {name}\nprovider: aimlapi\nmodel: alibaba/wan-2-6-t2v\n"
        f"max_requests: {max(requests, 2)}\n"
        "matrix:\n  resolution: [\"720p\", \"1080p\"]\n"
        f"  seed: {{range: [1, {max(1, requests // 2)}]}}\n"
        "params:\n  prompt: A lighthouse at dusk, waves below\n  duration: 5\n"
        'output: "{{ resolution }}/seed-{{ seed }}.mp4"\n'
    )


def plan_cost(folder: Path, requests: int) -> dict[str, float]:
    """Time planning with and without prices (median of 3 each)."""
    path = folder / "money.yaml"
    path.write_text(spec_text(requests), encoding="utf-8")
    specs = load_specs([path], provider_override="sandbox")
    times: dict[str, list[float]] = {"without": [], "with": []}
    for _ in range(3):
        for label in ("without", "with"):
            pricer = Pricer() if label == "with" else None
            started = time.perf_counter()
            plan = build_plan(specs, folder / "outputs", pricer=pricer)
            times[label].append(time.perf_counter() - started)
    return {
        "requests": len(plan.entries),
        "plan_s": statistics.median(times["without"]),
        "priced_plan_s": statistics.median(times["with"]),
        "estimated_usd": plan.estimated_usd,
    }


def serve(folder: Path) -> tuple[subprocess.Popen[str], str]:
    """Start `runner sandbox serve` with 1 s generations; return it and its URL."""
    server = subprocess.Popen(
        [sys.executable, "-m", "runner", "sandbox", "serve", "--port", "0", "--latency", "1",
         "--jitter", "0", "--concurrency", "64", "--scale", "8", "--fps", "4"],
        cwd=folder, stdout=subprocess.PIPE, text=True,
    )
    assert server.stdout is not None
    line = server.stdout.readline()
    return server, line.split()[-1]


def budget_run(folder: Path, batch: int, in_flight: int) -> dict[str, object]:
    """Run a batch under a ceiling of 55 % of its estimate, then finish it."""
    (folder / "batch.yaml").write_text(spec_text(batch, "batch"), encoding="utf-8")
    server, url = serve(folder)
    env = {**os.environ, "AIMLAPI_API_KEY": "sk-bench-not-a-real-key"}
    try:
        plan = subprocess.run(
            [sys.executable, "-m", "runner", "plan", "--json", "--base-url", url, "batch.yaml"],
            cwd=folder, capture_output=True, text=True, check=True, env=env,
        )
        total = json.loads(plan.stdout)["estimated_usd"]
        ceiling = round(total * 0.55, 2)
        common = ["--base-url", url, "--concurrency", str(in_flight), "--poll-min", "0.1",
                  "--poll-max", "0.5"]
        started = time.perf_counter()
        first = subprocess.run(
            [sys.executable, "-m", "runner", "run", "batch.yaml", *common,
             "--max-cost", str(ceiling)],
            cwd=folder, capture_output=True, text=True, env=env,
        )
        first_s = time.perf_counter() - started
        stats = httpx.get(f"{url}/_sandbox/stats").json()
        second = subprocess.run(
            [sys.executable, "-m", "runner", "run", "batch.yaml", *common,
             "--max-cost", str(round(total + 1, 2))],
            cwd=folder, capture_output=True, text=True, env=env,
        )
        final = httpx.get(f"{url}/_sandbox/stats").json()
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {
        "batch": batch, "estimate_usd": total, "ceiling_usd": ceiling,
        "first_exit": first.returncode, "first_s": round(first_s, 2),
        "billed_at_stop_usd": stats["billed_usd"], "submitted_at_stop": stats["submissions"],
        "peak_in_flight": stats["peak_in_flight"],
        "second_exit": second.returncode, "billed_total_usd": final["billed_usd"],
        "submissions_total": final["submissions"],
        "duplicate_submissions": final["duplicate_submissions"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=40)
    parser.add_argument("--in-flight", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / ".git").mkdir()  # runner.toml lookups stop here
        os.environ.setdefault("RUNNER_CACHE_DIR", str(folder / "cache"))
        cost = plan_cost(folder, args.requests)
        print(f"plan of {cost['requests']} requests: {cost['plan_s']:.3f} s without prices, "
              f"{cost['priced_plan_s']:.3f} s priced (est. ${cost['estimated_usd']:,.2f})")
        run = budget_run(folder, args.batch, args.in_flight)
        print(f"budget run: {run['batch']} requests est. ${run['estimate_usd']:,.2f}, ceiling "
              f"${run['ceiling_usd']:,.2f}: exit {run['first_exit']} after {run['first_s']} s, "
              f"billed ${run['billed_at_stop_usd']:,.2f} for {run['submitted_at_stop']} "
              f"submissions, peak {run['peak_in_flight']} in flight")
        print(f"then a larger budget: exit {run['second_exit']}, billed "
              f"${run['billed_total_usd']:,.2f} for {run['submissions_total']} submissions, "
              f"{run['duplicate_submissions']} duplicates")


if __name__ == "__main__":
    main()
