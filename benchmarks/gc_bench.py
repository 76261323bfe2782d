"""Count what the cyclic garbage collector costs one `runner plan --json` (issue 15).

    python -m benchmarks.gc_bench [--requests N] [--keep DIR]

Writes issue 15's planning grid (`bench_specs.write_scale_spec`, N requests: 100,000 by
default), runs `runner plan SPEC --json` in this process with `RUNNER_PRICES=offline`
(its output to /dev/null) and reports, from `gc.callbacks`, how many collections ran, of
which generation, how long they took and what they found. Unlike wall time on a shared
machine, these counts repeat from run to run: on the 100,000-request grid, the code before
the collector was paused while a plan is built (`runner/heap.py`) ran 1,274 collections
in 0.81 s (8 full ones: 0.65 s); paused, 1 in 0.03 s.
Prints one JSON object. Figures are reported, never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_specs import write_scale_spec


class CollectionLog:
    """Each collection's generation, duration and count of objects found unreachable."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, float, int]] = []
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.rows.append(
                (info["generation"], time.perf_counter() - self._started, info["collected"])
            )

    def report(self) -> dict[str, Any]:
        by_generation = {
            str(g): {
                "collections": sum(1 for gen, _, _ in self.rows if gen == g),
                "seconds": round(sum(s for gen, s, _ in self.rows if gen == g), 4),
                "collected": sum(c for gen, _, c in self.rows if gen == g),
            }
            for g in range(3)
        }
        return {
            "collections": len(self.rows),
            "seconds": round(sum(s for _, s, _ in self.rows), 4),
            "longest_seconds": round(max((s for _, s, _ in self.rows), default=0.0), 4),
            "by_generation": by_generation,
        }


def measure(spec: Path, output_dir: Path) -> dict[str, Any]:
    """Plan `spec` as `runner plan --json` does, in process; return the collections."""
    from runner.cli import cli

    log = CollectionLog()
    os.environ["RUNNER_PRICES"] = "offline"  # the shipped price list: no network
    gc.callbacks.append(log)
    started = time.perf_counter()
    try:
        with open(os.devnull, "w", encoding="utf-8") as sink, \
                contextlib.redirect_stdout(sink):
            cli.main(
                ["plan", str(spec), "--json", "--output-dir", str(output_dir)],
                standalone_mode=False,
            )
    finally:
        gc.callbacks.remove(log)
    return {"wall_seconds": round(time.perf_counter() - started, 3), **log.report()}


def main(argv: list[str] | None = None) -> None:
    """Write the grid, plan it once, print the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--keep", type=Path, help="write the spec here and keep it")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="runner-gc-") as tmp:
        folder = args.keep or Path(tmp)
        spec = write_scale_spec(folder, "grid", args.requests)
        figures = measure(spec, folder / "out")
    command = f"python -m benchmarks.gc_bench --requests {args.requests}"
    json.dump({"command": command, "requests": args.requests, **figures}, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
