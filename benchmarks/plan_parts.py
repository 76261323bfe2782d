"""Where a large plan's time goes: each phase of `runner plan --json`, in-process.

    python -m benchmarks.plan_parts [--requests 100000] [--rounds 3]

Writes issue 15's planning grid (`bench_specs.write_scale_spec`: seeds x 5 ratios x 20
subjects, a templated prompt and output path) and times, in this process, the best of
`--rounds` rounds of each phase:

  load   load_specs(): parse, validate, expand, render, hash and check every request
  plan   build_plan(): join with the (empty) manifest and lock, decide, price (offline)
  json   Plan.iter_json(): the text `runner plan --json` prints

Then the cost of building one frozen dataclass of 11 fields against one that is not
frozen (why `Request` and `PlanEntry` are not frozen), and the CPU probe of
`run_bench.cpu_probe` (about 0.5 s on an idle modern core), so that figures taken on a
slower or busier machine can be compared. Reported, never asserted.
"""

from __future__ import annotations

import argparse
import functools
import gc
import os
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Callable
from dataclasses import make_dataclass
from pathlib import Path
from typing import Any

from benchmarks.bench_specs import write_scale_spec
from benchmarks.run_bench import compile_runner, cpu_probe


def _best(rounds: int, work: Callable[[], Any]) -> tuple[float, Any]:
    """Return the least wall time of `rounds` calls of `work`, and its last result."""
    best, result = float("inf"), None
    for _ in range(rounds):
        result = None
        gc.collect()
        started = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - started)
    return best, result


def import_seconds() -> float:
    """Return the seconds a fresh interpreter takes to import what `runner plan` loads."""
    code = ("import time; t = time.perf_counter(); import runner.cli, runner.preflight; "
            "print(time.perf_counter() - t)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, env={**os.environ, "RUNNER_PRICES": "offline"})
    return float(done.stdout)


def construction_us() -> tuple[float, float]:
    """Return µs to build a frozen and a plain slots dataclass of 11 fields by keyword."""
    names = [f"f{i}" for i in range(11)]
    frozen = make_dataclass("Frozen", names, frozen=True, slots=True)
    plain = make_dataclass("Plain", names, slots=True)
    values = {name: i for i, name in enumerate(names)}
    times = []
    for cls in (frozen, plain):
        runs = timeit.repeat(functools.partial(cls, **values), number=100_000, repeat=5)
        times.append(min(runs) / 100_000 * 1e6)
    return times[0], times[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    compile_runner()
    os.environ["RUNNER_PRICES"] = "offline"  # price from the cache or snapshot: no network
    imports = import_seconds()
    from runner.planning import build_plan
    from runner.pricing import Pricer
    from runner.spec import load_specs

    probe = cpu_probe()
    with tempfile.TemporaryDirectory() as tmp:
        spec = write_scale_spec(Path(tmp), "grid", args.requests)
        out = Path(tmp) / "outputs"
        load, specs = _best(args.rounds, lambda: load_specs([spec]))
        plan_s, plan = _best(
            args.rounds, lambda: build_plan(specs, out, pricer=Pricer(base_url=None))
        )
        json_s, size = _best(args.rounds, lambda: sum(len(s) for s in plan.iter_json()))
    count = len(plan.entries)
    frozen, plain = construction_us()
    total = imports + load + plan_s + json_s
    print(f"{count:,} requests, best of {args.rounds} rounds (CPU probe {probe:.2f} s):")
    for name, seconds in (("imports", imports), ("load", load), ("plan", plan_s),
                          ("json", json_s), ("sum", total)):
        print(f"  {name:<8} {seconds:6.2f} s  {seconds / count * 1e6:6.1f} µs/request")
    print(f"  json text {size / 1e6:.1f} MB")
    print(f"  at a 0.5 s probe: {total * 0.5 / probe:.2f} s")
    print(f"dataclass of 11 fields: frozen {frozen:.2f} µs, not frozen {plain:.2f} µs")


if __name__ == "__main__":
    main()
