"""Run the fault and crash campaigns many times and print what was lost or duplicated.

    python benchmarks/reliability.py                    # 5 rounds per fault, 100 kills
    python benchmarks/reliability.py --rounds 20 --kills 300 --seed 1

Everything is real: `runner sandbox serve` and `runner run` processes on loopback (the
machinery is tests/faults/harness.py, shared with the test suite). For each fault
scenario it runs `--rounds` batches of `--batch` requests and counts requests done and
verified, reported (failed / unknown, each with a reason), lost (neither: must be 0),
duplicate submissions seen by the server (must be 0) and reruns that submitted anything
(must be 0). The crash campaign SIGKILLs `runner run` `--kills` times at random moments,
resuming each time, and reports where the kills landed and what the end state was.
Prints a Markdown table (docs/RELIABILITY.md holds one).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.faults.harness

from tests.faults.harness import (  # noqa: E402 - after the path fix above
    SCENARIOS,
    CrashStats,
    SandboxProcess,
    crash_campaign,
    run_scenario,
    write_spec,
)


def fault_rows(rounds: int, batch: int, seed: int) -> list[str]:
    """Run every scenario `rounds` times; return one table row per scenario."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="reliability-") as tmp:
        server = SandboxProcess("--latency", "0.3", "--jitter", "0.1", "--fps", "4",
                                "--seed", str(seed), log=Path(tmp) / "serve.log")
        server.start()
        try:
            for scenario in SCENARIOS:
                runs = injected = done = reported = lost = dup = rerun = broken = 0
                seconds = 0.0
                for i in range(rounds):
                    folder = Path(tmp) / f"{len(rows)}-{i}"
                    folder.mkdir()
                    seeds = range(1000 * i + 1, 1000 * i + batch + 1)
                    result = run_scenario(server, scenario, folder, tuple(seeds), tag=f"#{i}")
                    runs += 1
                    injected += result.injected
                    done += len(result.audit.done)
                    reported += len(result.audit.reported)
                    lost += batch - len(result.audit.done) - len(result.audit.reported)
                    dup += result.stats["duplicate_submissions"]
                    rerun += result.rerun_submissions
                    broken += len(result.audit.problems)
                    seconds = max(seconds, result.seconds)
                rows.append(
                    f"| {scenario.name} | {runs} | {runs * batch} | {injected} | {done} | "
                    f"{reported} | {lost} | {dup} | {rerun} | {broken} | {seconds:.1f} |"
                )
                print(rows[-1], file=sys.stderr, flush=True)
        finally:
            server.stop()
    return rows


def crash_rows(kills: int, batch: int, seed: int) -> tuple[list[str], CrashStats]:
    """Kill runs until `kills` SIGKILLs landed (fresh batches as needed); one total row."""
    rng = random.Random(seed)
    total = CrashStats()
    done = requests = dup = 0
    campaigns = 0
    with tempfile.TemporaryDirectory(prefix="reliability-crash-") as tmp:
        server = SandboxProcess("--latency", "0.4", "--jitter", "0.1", "--fps", "4",
                                "--seed", str(seed), log=Path(tmp) / "serve.log")
        server.start()
        try:
            while total.total_kills < kills:
                campaigns += 1
                folder = Path(tmp) / f"c{campaigns}"
                folder.mkdir()
                spec = write_spec(folder, "crash", range(1, batch + 1),
                                  f"crash campaign #{campaigns}")
                stats = crash_campaign(spec, server, folder / "outputs", rng,
                                       kills=min(6, kills - total.total_kills),
                                       concurrency=2, within=1.2)
                for phase, n in stats.kills.items():
                    total.kills[phase] = total.kills.get(phase, 0) + n
                total.runs += stats.runs
                total.unreadable += stats.unreadable
                total.broken += stats.broken
                total.unknown += stats.unknown
                total.unknown_accepted += stats.unknown_accepted
                total.resubmitted += stats.resubmitted
                assert stats.final is not None
                total.broken += len(stats.final.problems)
                done += len(stats.final.done)
                requests += batch
                print(f"campaign {campaigns}: kills {stats.kills}, done "
                      f"{len(stats.final.done)}/{batch}", file=sys.stderr, flush=True)
            dup = server.stats()["duplicate_submissions"]
        finally:
            server.stop()
    where = ", ".join(f"{phase} {n}" for phase, n in sorted(total.kills.items()))
    rows = [
        f"| SIGKILL of `runner run` ({where}) | {total.runs} | {requests} | "
        f"{total.total_kills} | {done} | {total.unknown_accepted} | "
        f"{requests - done - total.unknown_accepted} | {dup} | — | "
        f"{total.broken + total.unreadable} | — |"
    ]
    return rows, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="batches per fault scenario")
    parser.add_argument("--batch", type=int, default=6, help="requests per batch")
    parser.add_argument("--kills", type=int, default=100, help="SIGKILLs in the crash campaign")
    parser.add_argument("--seed", type=int, default=1, help="seeds faults and kill moments")
    args = parser.parse_args()
    started = time.monotonic()
    rows = fault_rows(args.rounds, args.batch, args.seed)
    crash, stats = crash_rows(args.kills, args.batch, args.seed)
    print("| injected | runs | requests | faults/kills | done+verified | reported "
          "(reason given) | lost | duplicate submissions | rerun submissions | broken "
          "promises | slowest run (s) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows + crash:
        print(row)
    print()
    print(f"crash campaign: {stats.total_kills} kills over {stats.runs} runs; manifest "
          f"unreadable {stats.unreadable} times; done records with a missing/partial/wrong "
          f"file {stats.broken}; requests left unknown by a kill mid-POST {stats.unknown} "
          f"({stats.unknown_accepted} accepted by the server: paid, id lost, not resubmitted; "
          f"{stats.resubmitted} never reached it: resubmitted with --resubmit-unknown)")
    print(f"total {time.monotonic() - started:.0f} s "
          f"(--rounds {args.rounds} --batch {args.batch} --kills {args.kills} --seed {args.seed})")


if __name__ == "__main__":
    main()
