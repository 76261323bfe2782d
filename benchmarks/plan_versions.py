"""`runner plan --json` of issue 15's grid, by several versions of the code, back to back.

    python -m benchmarks.plan_versions bea830a d7eb932 HEAD [--requests 100000] [--rounds 3]
    python -m benchmarks.plan_versions bea830a HEAD --instructions --requests 20000

This machine's speed drifts (the CPU probe of `run_bench.cpu_probe` has read 0.3 s to
1.7 s here), so a wall time compares only with one taken in the same minutes. Each
revision is checked out into a temporary git worktree and run on `PYTHONPATH` with this
interpreter (the same installed dependencies), round-robin, `--rounds` times: each
round runs every revision once, so a slow minute slows them all. Printed: the wall times,
median, peak RSS, and each median's ratio to the first revision's (the issue's targets
were set against the code before it, `bea830a`, which it timed at 7.2-9.4 s).

`--instructions` counts the machine instructions instead (valgrind's cachegrind, no
cache simulation; ~50 times slower, so use a smaller plan): a figure that does not
drift with the machine, for comparing changes of a few percent. Wall time and memory
are what users feel; instructions leave out cache misses and allocation.
"""

from __future__ import annotations

import argparse
import compileall
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.bench_specs import write_scale_spec

ROOT = Path(__file__).resolve().parents[1]


def checkout(revision: str, into: Path) -> Path:
    """Check `revision` out into a new worktree under `into`; return its folder."""
    folder = into / re.sub(r"[^A-Za-z0-9._-]", "_", revision)
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--force",
                    str(folder), revision], check=True, capture_output=True)
    compileall.compile_dir(str(folder / "runner"), quiet=1)  # as an install would
    return folder


def plan_env(folder: Path) -> dict[str, str]:
    return {"PYTHONPATH": str(folder), "RUNNER_PRICES": "offline"}


def timed(folder: Path, spec: Path, out: Path) -> tuple[float, float]:
    """Return the wall seconds and peak RSS (MB) of `runner plan --json` with `folder`'s
    code, run from that folder so `-m runner` finds its package first."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", "plan", "--json", str(spec), "--output-dir", str(out)],
        cwd=folder, env={**os.environ, **plan_env(folder)}, stdout=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    if proc.returncode != 0:
        msg = f"{folder.name}: runner plan exited {proc.returncode}"
        raise RuntimeError(msg)
    # ru_maxrss: this small parent's peak carried over by exec is far below a plan's.
    return wall, usage.ru_maxrss / 1024


def instructions(folder: Path, spec: Path, out: Path) -> int:
    """Return the instructions `runner plan --json` executes with `folder`'s code."""
    done = subprocess.run(
        ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
         sys.executable, "-m", "runner", "plan", "--json", str(spec), "--output-dir", str(out)],
        capture_output=True, text=True, check=True, cwd=folder,
        env={**os.environ, **plan_env(folder)},
    )
    found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if found is None:
        msg = f"valgrind printed no instruction count:\n{done.stderr[-2000:]}"
        raise RuntimeError(msg)
    return int(found.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revisions", nargs="+", help="git revisions, the baseline first")
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--instructions", action="store_true",
                        help="count instructions with valgrind instead of timing")
    args = parser.parse_args()
    if args.instructions and shutil.which("valgrind") is None:
        parser.error("--instructions needs valgrind (apt-get install valgrind)")
    with tempfile.TemporaryDirectory(prefix="plan-versions-") as tmp:
        work = Path(tmp)
        folders = [checkout(revision, work / "trees") for revision in args.revisions]
        try:
            spec = write_scale_spec(work / "specs", "grid", args.requests)
            out = work / "outputs"
            results: dict[str, list[tuple[float, float]]] = {r: [] for r in args.revisions}
            for _ in range(1 if args.instructions else args.rounds):
                for revision, folder in zip(args.revisions, folders, strict=True):
                    if args.instructions:
                        results[revision].append((instructions(folder, spec, out), 0.0))
                        continue
                    results[revision].append(timed(folder, spec, out))
        finally:
            for folder in folders:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                                str(folder)], check=False, capture_output=True)
    report(results, args.requests, args.instructions)


def report(results: dict[str, list[tuple[float, float]]], requests: int, counted: bool) -> None:
    baseline = None
    print(f"runner plan --json, {requests:,} requests (issue 15's grid):")
    for revision, runs in results.items():
        middle = statistics.median(value for value, _ in runs)
        baseline = baseline or middle
        ratio = f"{baseline / middle:.2f} x faster than {next(iter(results))}"
        if counted:
            print(f"  {revision:<12} {middle / 1e9:8.2f} G instructions  "
                  f"({middle / requests / 1e3:,.0f} k a request, start-up included; {ratio})")
        else:
            walls = ", ".join(f"{wall:.2f}" for wall, _ in runs)
            rss = max(peak for _, peak in runs)
            print(f"  {revision:<12} median {middle:6.2f} s  ({walls})  peak {rss:.0f} MB  {ratio}")


if __name__ == "__main__":
    main()
