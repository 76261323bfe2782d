"""Issues 7 and 15: is the provider, not the runner, the bottleneck? Eight scenarios.

    python -m benchmarks.run_bench                 # the full run (about 25 minutes)
    python -m benchmarks.run_bench --quick         # everything scaled down (about 30 s)
    python -m benchmarks.run_bench --only 5,6,7    # a subset
    python -m benchmarks.run_bench --json-out bench.json

Starts `runner sandbox serve --render cheap` in a subprocess (one cached clip per size,
so the server is never the bottleneck) and runs:

  1. makespan of `runner run` (a subprocess) for N generations, server concurrency C,
     latency L ± 20 %, against the ideal N·L/C;
  2. polls per generation and the median delay between a generation ending and its
     first `completed` answer, both counted by the sandbox;
  3. the API docs' approach (one at a time, poll every 10 s scaled to L) and a naive
     asyncio client (C in flight, same fixed interval) against the same server;
  4. CPU per generation of the `runner run` process (wait4 rusage), downloads excluded
     by subtracting the measured CPU of downloading the same clips through
     `runner.download` in this process;
  5. a re-run of a finished 10,000-request spec: wall time and HTTP requests (sandbox);
  6. `runner plan --json` of the issue-15 spec (seeds x 5 ratios x 20 subjects, templated
     prompt and output) at 100,000 and 1,000,000 requests: wall time and peak RSS;
  7. a 500 MB and a 50 MB download through `runner.download` from loopback to disk:
     MB/s and peak RSS of the downloading process;
  8. polling from the first wave (`benchmarks.bench_waves`), against the sandbox and
     against `benchmarks.doc_server` (only the documented protocol), at N=200/C=40 and
     N=1000/C=50, L = 4 s +-10 %: the provider's SDK (`generate_with_polling` from a
     thread pool), then `runner run` starting from the published metrics; polls per
     generation (first wave, overall), notice delay, makespan / instant-refill ideal
     (and / N·L/C), SDK / ours; at the
     smaller size also a cold start and a run starting from recorded history.

Time is scaled from the real API to L: the docs report ~65 s for a gen4_turbo clip and
poll every 10 s; Runway asks for >= 5 s between polls and the runner's ceiling is 60 s,
so those become 10·L/65, 5·L/65 and 60·L/65 here. Prints one JSON document, then a
Markdown table. Figures are reported, never asserted: the exit code is 0 unless a
scenario could not run.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from benchmarks.bench_clients import docs_client, naive_client
from benchmarks.bench_cpu_parts import cpu_parts
from benchmarks.bench_download import download_cpu
from benchmarks.bench_noop import build_finished
from benchmarks.bench_process import ChildRun, run_child
from benchmarks.bench_sandbox import SandboxProcess, ServerKnobs
from benchmarks.bench_specs import write_scale_spec, write_spec
from benchmarks.bench_waves import Waves
from runner.layout import spec_folder
from runner.manifest import read_state
from runner.sandbox.render import RenderJob, render_clip

DOCS_SECONDS = 65.0  # the docs' gen4_turbo 5 s clip took about this long
DOCS_POLL = 10.0  # the docs' example polls this often
RUNNER_FLOOR, RUNNER_CEILING = 5.0, 60.0  # runner's real-API poll bounds (runner.engine)
ENDPOINT = "/v2/generate/video/runway/generation"


@dataclass(frozen=True)
class Params:
    """The sizes of one benchmark run."""

    n: int = 1000
    concurrency: int = 50
    latency: float = 4.0
    jitter: float = 0.2  # fraction of the latency
    docs_n: int = 20  # the docs client is sequential: time a sample, scale to n
    noop_n: int = 10_000
    plan_n: tuple[int, ...] = (100_000, 1_000_000)
    download_mb: tuple[int, int] = (50, 500)
    download_rounds: int = 3
    waves: tuple[tuple[int, int], ...] = ((200, 40), (1000, 50))  # (N, C) of scenario 8
    wave_spread: float = 0.1  # scenario 8's latency spread, a fraction of L
    wave_kinds: tuple[str, ...] = ("sandbox", "doc")

    @property
    def scale(self) -> float:
        """Seconds here per second of the real API."""
        return self.latency / DOCS_SECONDS


QUICK = Params(n=60, concurrency=10, latency=1.0, docs_n=4, noop_n=500, plan_n=(5000,),
               download_mb=(5, 50), download_rounds=1, waves=((30, 6),))


@dataclass(frozen=True)
class Row:
    """One line of the table."""

    scenario: str
    metric: str
    value: float | None
    unit: str
    target: str
    ok: bool | None  # None: no target, information only


class Bench:
    """Runs the selected scenarios and collects rows and raw figures."""

    def __init__(self, params: Params, work: Path) -> None:
        self.p = params
        self.work = work
        self.rows: list[Row] = []
        self.raw: dict[str, Any] = {}
        self._ours: dict[str, float] | None = None

    def row(self, scenario: str, metric: str, value: float | None, unit: str,
            target: str = "", ok: bool | None = None) -> None:
        """Add one table line."""
        shown = None if value is None else round(value, 4)
        self.rows.append(Row(scenario, metric, shown, unit, target, ok))

    # -- 1, 2, 4: runner run against the sandbox --------------------------------------------

    def engine(self, server: SandboxProcess, want: set[int]) -> None:
        """Scenarios 1, 2 and 4 from one `runner run` of N generations."""
        p = self.p
        spec = write_spec(self.work / "specs", "bench", p.n)
        out = self.work / "out-ours"
        server.reset()
        server_cpu = server.cpu_seconds()
        command = [
            "run", str(spec), "--base-url", server.base_url,
            "--concurrency", str(p.concurrency),
            "--poll-min", f"{RUNNER_FLOOR * p.scale:.4f}",
            "--poll-max", f"{RUNNER_CEILING * p.scale:.4f}",
            "--output-dir", str(out),
        ]
        child = run_child("runner", *command, log=self.work / "runner-run.log")
        stats = server.stats()
        server_cpu = server.cpu_seconds() - server_cpu
        if child.exit_code != 0:
            msg = f"runner run exited {child.exit_code}; see {self.work / 'runner-run.log'}"
            raise RuntimeError(msg)
        ideal = p.n * p.latency / p.concurrency
        polls = stats["polls"] / p.n
        notice = stats["notice_delay"]
        self._ours = {"makespan": child.wall, "polls": polls}
        self.raw["engine"] = {
            "command": " ".join(["runner", *command]), "wall": child.wall, "user": child.user,
            "system": child.system, "max_rss_mb": child.max_rss_mb, "ideal": ideal,
            "server_cpu": server_cpu, "stats": _trim(stats),
        }
        if 1 in want:
            self.row("1 makespan", f"N={p.n}, C={p.concurrency}, L={p.latency:g} s ±"
                     f"{p.jitter:.0%}", child.wall, "s", f"≤ {1.1 * ideal:.1f} (1.10 × {ideal:g})",
                     child.wall <= 1.1 * ideal)
            self.row("1 makespan", "ratio to ideal N·L/C", child.wall / ideal, "×", "≤ 1.10",
                     child.wall / ideal <= 1.1)
            self.row("1 makespan", "duplicate submissions", stats["duplicate_submissions"], "",
                     "0", stats["duplicate_submissions"] == 0)
        if 2 in want:
            self.row("2 polling", "status polls per generation", polls, "", "≤ 3", polls <= 3)
            median = notice["median"]
            self.row("2 polling", "median notice delay", median, "s",
                     f"≤ {0.1 * p.latency:g} (10% of L)",
                     None if median is None else median <= 0.1 * p.latency)
            self.row("2 polling", "p90 notice delay", notice["p90"], "s")
        if 4 in want:
            self._cpu(server, spec_folder(out, "bench", sandbox=True), child)

    def _cpu(self, server: SandboxProcess, folder: Path, child: ChildRun) -> None:
        """Scenario 4: the runner's CPU per generation, downloads subtracted."""
        urls = _fresh_urls(server.base_url, folder)
        per_download = download_cpu(urls, self.work / "cpu-downloads", self.p.concurrency)
        n = self.p.n
        total = child.cpu / n
        excluded = total - per_download
        self.raw["cpu"] = {"total_per_generation": total, "download_per_file": per_download,
                           "downloads_measured": len(urls)}
        self.row("4 CPU", "runner run user+sys / N (all)", total * 1000, "ms")
        self.row("4 CPU", "one download via runner.download", per_download * 1000, "ms")
        self.row("4 CPU", "per generation, downloads excluded", excluded * 1000, "ms", "≤ 2",
                 excluded <= 0.002)
        image = self.work / "specs" / "images" / "frame.png"
        parts = cpu_parts(server.base_url, image, urls[0])
        self.raw["cpu"]["parts_ms"] = parts
        for name, milliseconds in parts.items():
            self.row("4 CPU", f"  one {name}, alone", milliseconds, "ms")

    # -- 3: the comparison clients -------------------------------------------------------------

    def compare(self, server: SandboxProcess) -> None:
        """Scenario 3: the docs' approach and a naive asyncio client, same server."""
        p = self.p
        if self._ours is None:
            msg = "scenario 3 needs scenario 1's run (select 1 as well)"
            raise RuntimeError(msg)
        image = self.work / "specs" / "images" / "frame.png"
        interval = DOCS_POLL * p.scale
        server.reset()
        naive = naive_client(server.base_url, image, range(1, p.n + 1), interval, p.concurrency,
                             self.work / "out-naive")
        naive_stats = server.stats()
        server.reset()
        docs = docs_client(server.base_url, image, range(1, p.docs_n + 1), interval,
                           self.work / "out-docs")
        docs_stats = server.stats()
        docs_makespan = docs.makespan / p.docs_n * p.n  # strictly sequential: linear in N
        ours = self._ours
        naive_polls = naive_stats["polls"] / p.n
        docs_polls = docs_stats["polls"] / p.docs_n
        self.raw["compare"] = {
            "poll_interval": interval,
            "naive": {"makespan": naive.makespan, "completed": naive.completed,
                      "polls_per_generation": naive_polls,
                      "notice_delay": naive_stats["notice_delay"]},
            "docs": {"sample": p.docs_n, "sample_makespan": docs.makespan,
                     "makespan_scaled_to_n": docs_makespan, "completed": docs.completed,
                     "polls_per_generation": docs_polls,
                     "notice_delay": docs_stats["notice_delay"]},
        }
        self.row("3 compare", f"docs client makespan (×N/{p.docs_n} from a sample)",
                 docs_makespan, "s")
        self.row("3 compare", "docs client makespan / ours", docs_makespan / ours["makespan"], "×")
        self.row("3 compare", "docs client polls per generation / ours",
                 docs_polls / ours["polls"], "×")
        self.row("3 compare", f"naive asyncio makespan (poll every {interval:.2f} s)",
                 naive.makespan, "s")
        self.row("3 compare", "naive asyncio makespan / ours", naive.makespan / ours["makespan"],
                 "×")
        self.row("3 compare", "naive asyncio polls per generation / ours",
                 naive_polls / ours["polls"], "×")

    # -- 5: the nightly no-op --------------------------------------------------------------

    def noop(self, server: SandboxProcess) -> None:
        """Scenario 5: re-run a finished spec of noop_n requests."""
        spec = write_spec(self.work / "specs", "nightly", self.p.noop_n)
        clip = self.work / "clip.mp4"
        clip.write_bytes(render_clip(RenderJob(
            model="runway/gen4_turbo", width=160, height=90, fps=8, duration=5, seed=1,
            prompt="", image_sha256="", image=None, mode="cheap")))
        out = self.work / "out-nightly"
        started = time.perf_counter()
        count = build_finished(spec, out, clip)
        built = time.perf_counter() - started
        server.reset()
        command = ["run", str(spec), "--base-url", server.base_url, "--output-dir", str(out)]
        child = run_child("runner", *command, log=self.work / "nightly.log")
        requests = server.stats()["requests"]
        again = run_child("runner", *command, log=self.work / "nightly-2.log")
        requests_again = server.stats()["requests"]
        self.raw["noop"] = {"requests": count, "fixture_seconds": built, "exit_code":
                            child.exit_code, "wall": child.wall, "cpu": child.cpu,
                            "max_rss_mb": child.max_rss_mb, "second_wall": again.wall,
                            "http_requests": requests, "http_requests_both": requests_again}
        self.row("5 no-op", f"re-run of a finished {count:,}-request spec", child.wall, "s",
                 "≤ 3", child.wall <= 3 and child.exit_code == 0)
        self.row("5 no-op", "HTTP requests to the API", requests, "", "0", requests == 0)
        self.row("5 no-op", "peak RSS", child.max_rss_mb, "MB")

    # -- 6: planning -------------------------------------------------------------------------

    def plan(self) -> None:
        """Scenario 6: `runner plan --json` of the issue-15 spec at each size of plan_n."""
        per_request: list[float] = []
        for n in self.p.plan_n:
            spec = write_scale_spec(self.work / "specs", f"scale-{n}", n)
            command = ["plan", str(spec), "--json", "--output-dir", str(self.work / "out-plan")]
            # Planning, not the price list's GET: with the network down that is a connect
            # attempt of up to 5 s (runner.pricing.TIMEOUT); offline the shipped list is read.
            child = run_child("runner", *command, env={"RUNNER_PRICES": "offline"})
            self.raw.setdefault("plan", {})[str(n)] = {
                **_child(child), "command": " ".join(["RUNNER_PRICES=offline runner", *command])}
            ok = child.exit_code == 0
            wall_target = rss_target = ""
            wall_ok = rss_ok = None
            if n <= 100_000:
                wall_target, rss_target = "≤ 3", "≤ 300"
                wall_ok, rss_ok = ok and child.wall <= 3, ok and child.max_rss_mb <= 300
            label = f"`runner plan --json`, {n:,} requests"
            self.row("6 planning", f"{label}: wall", child.wall, "s", wall_target, wall_ok)
            self.row("6 planning", f"{label}: peak RSS", child.max_rss_mb, "MB", rss_target,
                     rss_ok)
            per_request.append(child.max_rss_mb * 1024 / n)
        if len(per_request) > 1:
            # Memory growing no faster than requests: KiB per request must not rise.
            growth = per_request[-1] / per_request[0]
            self.row("6 planning", "peak RSS per request, largest / smallest plan", growth,
                     "×", "≤ 1", growth <= 1)

    # -- 7: download ---------------------------------------------------------------------------

    def download(self) -> None:
        """Scenario 7: small and large downloads in a fresh process each."""
        server = subprocess.Popen([sys.executable, "-m", "benchmarks.bench_download", "serve"],
                                  stdout=subprocess.PIPE, text=True)
        try:
            assert server.stdout is not None
            base = server.stdout.readline().strip().removeprefix("serving on ")
            results: dict[int, list[tuple[float, float]]] = {}
            for mb in self.p.download_mb:
                for attempt in range(self.p.download_rounds):
                    # Flush earlier scenarios' dirty pages first: their writeback would
                    # otherwise compete with this download's writes and fsync.
                    os.sync()
                    dest = self.work / "downloads" / f"{mb}-{attempt}.mp4"
                    log = self.work / f"download-{mb}-{attempt}.log"
                    child = run_child("benchmarks.bench_download", "fetch", f"{base}/blob/{mb}",
                                      str(dest), log=log)
                    report = json.loads(log.read_text().strip().splitlines()[-1])
                    dest.unlink()
                    results.setdefault(mb, []).append((report["mb_per_s"], child.max_rss_mb))
        finally:
            server.terminate()
            server.wait()
        small, large = self.p.download_mb
        speed = statistics.median(s for s, _ in results[large])
        rss_small = max(r for _, r in results[small])
        rss_large = max(r for _, r in results[large])
        self.raw["download"] = {str(mb): [{"mb_per_s": s, "max_rss_mb": r} for s, r in runs]
                                for mb, runs in results.items()}
        self.row("7 download", f"{large} MB loopback → disk, sha256 + fsync (median of "
                 f"{self.p.download_rounds})", speed, "MB/s", "≥ 200", speed >= 200)
        self.row("7 download", f"peak RSS at {small} MB", rss_small, "MB")
        self.row("7 download", f"peak RSS at {large} MB", rss_large, "MB", "flat",
                 rss_large - rss_small <= 16)


    # -- 8: polling from the first wave, ours and the provider's SDK ---------------------------

    def waves(self) -> None:
        """Scenario 8: each server kind and size of `waves` (see `benchmarks.bench_waves`)."""
        p = self.p
        for kind in p.wave_kinds:
            for index, (n, c) in enumerate(p.waves):
                run = Waves(kind, n, c, p.latency, p.wave_spread, self.work / "waves")
                result = run.run(variants=index == 0)
                self.raw.setdefault("waves", []).append(result)
                self._wave_rows(result)

    def _wave_rows(self, r: dict[str, Any]) -> None:
        """Add scenario 8's rows for one server kind and size."""
        name = {"sandbox": "sandbox", "doc": "doc server"}[r["kind"]]
        where = f"8 waves, {name}"
        size = f"N={r['n']}, C={r['c']}"
        ours, sdk = r["ours"], r["sdk"]
        limit = 0.1 * r["latency"]
        ratio = ours["makespan"] / r["ideal"]
        self.row(where, f"{size}: polls per generation, first wave", ours["polls_first_wave"],
                 "", "≤ 3", ours["polls_first_wave"] <= 3)
        self.row(where, f"{size}: polls per generation, overall", ours["polls_overall"], "",
                 "≤ 3", ours["polls_overall"] <= 3)
        self.row(where, f"{size}: median notice delay", ours["notice_median"], "s",
                 f"≤ {limit:g} (10% of L)", ours["notice_median"] <= limit)
        self.row(where, f"{size}: p90 notice delay", ours["notice_p90"], "s")
        refill = ours["makespan"] / ours["refill_ideal"]
        self.row(where, f"{size}: makespan / instant-refill ideal "
                 f"({ours['refill_ideal']:.1f} s)", refill, "×", "≤ 1.10", refill <= 1.1)
        self.row(where, f"{size}: makespan / N·L/C ({r['ideal']:g} s, a lower bound)", ratio,
                 "×")
        self.row(where, f"{size}: duplicate submissions", ours["duplicates"], "", "0",
                 ours["duplicates"] == 0)
        if "startup" in ours:
            self.row(where, f"{size}:   spawn → first create (start-up)", ours["startup"], "s")
            self.row(where, f"{size}:   last video served → exit (end of run)", ours["tail"],
                     "s")
        self.row(where, f"{size}: runner CPU per generation (user+sys / N, all)",
                 ours["cpu"] / r["n"] * 1000, "ms")
        self.row(where, f"{size}: SDK makespan", sdk["makespan"], "s")
        self.row(where, f"{size}: SDK makespan / ours", sdk["makespan"] / ours["makespan"], "×")
        self.row(where, f"{size}: SDK polls per generation / ours",
                 sdk["polls_overall"] / ours["polls_overall"], "×")
        self.row(where, f"{size}: SDK duplicate submissions (ours: {ours['duplicates']})",
                 sdk["duplicates"], "")
        for variant, label in (("cold", "cold start (no metrics, no history)"),
                               ("history", "from the cold run's recorded times")):
            if variant in r:
                v = r[variant]
                self.row(where, f"{size}: {label}: polls first wave / overall",
                         v["polls_first_wave"], f"/ {v['polls_overall']:.2f}")
                self.row(where, f"{size}: {label}: makespan / instant-refill ideal",
                         v["makespan"] / v["refill_ideal"], "×")

def _fresh_urls(base_url: str, folder: Path) -> list[str]:
    """Poll each finished generation of `folder`'s manifest once for a signed URL."""
    headers = {"Authorization": "Bearer bench"}
    urls = []
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
        for state in read_state(folder).values():
            if state.generation_id is None:
                continue
            answer = client.get(ENDPOINT, params={"generation_id": state.generation_id}).json()
            urls.append(answer["video"][0])
    return urls


def _trim(stats: dict[str, Any]) -> dict[str, Any]:
    """Drop the per-body submission table (one entry per request) from a stats snapshot."""
    return {k: v for k, v in stats.items() if k != "submissions_by_body"}


def _child(child: ChildRun) -> dict[str, float]:
    return {"exit_code": child.exit_code, "wall": child.wall, "cpu": child.cpu,
            "max_rss_mb": child.max_rss_mb}


def cpu_probe() -> float:
    """Return the seconds a fixed pure-Python loop takes now (about 0.5 s on an idle core).

    Other work on a shared machine slows every timing down alike; the probe, taken before
    and after the scenarios, says by how much.
    """
    started = time.perf_counter()
    total = 0
    for i in range(10_000_000):
        total += i
    return time.perf_counter() - started


def compile_runner() -> None:
    """Write the runner's bytecode, as installing the package does.

    With PYTHONDONTWRITEBYTECODE set (as in some shells and CI), every `runner` child
    would otherwise compile its modules from source at start-up, which an installed
    runner never does.
    """
    compileall.compile_dir(str(Path(__file__).resolve().parents[1] / "runner"), quiet=1)


def machine() -> dict[str, Any]:
    """Describe the machine the figures come from."""
    model = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    system = platform.platform()
    try:
        with open("/etc/os-release", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("PRETTY_NAME="):
                    system = f"{line.split('=', 1)[1].strip().strip(chr(34))}, {system}"
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": model, "python": platform.python_version(),
            "os": system, "memory_gb": round(os.sysconf("SC_PAGE_SIZE")
                                             * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)}


def markdown(rows: Sequence[Row]) -> str:
    """Render the rows as a Markdown table."""
    lines = ["| scenario | metric | measured | target | met |", "|---|---|---|---|---|"]
    for r in rows:
        value = "–" if r.value is None else f"{r.value:,.3f}".rstrip("0").rstrip(".")
        met = {True: "yes", False: "**no**", None: ""}[r.ok]
        lines.append(f"| {r.scenario} | {r.metric} | {value} {r.unit} | {r.target} | {met} |")
    return "\n".join(lines)


def parse(argv: Sequence[str]) -> tuple[Params, set[int], argparse.Namespace]:
    """Read the flags into the run's sizes and the chosen scenarios."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--only", default="1,2,3,4,5,6,7,8",
                        help="comma-separated scenario numbers (default: all)")
    parser.add_argument("--quick", action="store_true",
                        help="scale everything down for a quick check (~30 s)")
    parser.add_argument("--n", type=int, help="generations in scenarios 1-4")
    parser.add_argument("--concurrency", type=int, help="server slots = runner --concurrency")
    parser.add_argument("--latency", type=float, help="seconds per generation (L)")
    parser.add_argument("--docs-n", type=int, help="generations the docs client runs")
    parser.add_argument("--noop-n", type=int, help="requests in scenario 5's finished spec")
    parser.add_argument("--plan-n", type=int, action="append",
                        help="requests planned in scenario 6 (repeat for several sizes)")
    parser.add_argument("--waves", action="append", metavar="N/C",
                        help="scenario 8's generations/concurrency (repeat for several)")
    parser.add_argument("--json-out", type=Path, help="also write the JSON document here")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args(argv)
    params = QUICK if args.quick else Params()
    changes = {k: getattr(args, k) for k in ("n", "concurrency", "latency", "docs_n",
                                             "noop_n") if getattr(args, k)}
    if args.plan_n:
        changes["plan_n"] = tuple(args.plan_n)
    if args.waves:
        try:
            changes["waves"] = tuple(
                (int(n), int(c)) for n, c in (w.split("/") for w in args.waves))
        except ValueError:
            parser.error("--waves takes N/C, e.g. --waves 200/40")
    params = Params(**{**params.__dict__, **changes})
    want = {int(x) for x in args.only.split(",") if x.strip()}
    if not want <= set(range(1, 9)):
        parser.error("--only takes scenario numbers 1..8")
    return params, want, args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen scenarios; print the JSON document and the Markdown table."""
    params, want, args = parse(sys.argv[1:] if argv is None else argv)
    compile_runner()
    probe_before = cpu_probe()
    load_before = os.getloadavg()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="runner-bench-") as tmp:
        work = args.keep or Path(tmp)
        if work.exists() and args.keep:
            shutil.rmtree(work)  # a kept folder from an earlier run would be "already done"
        work.mkdir(parents=True, exist_ok=True)
        bench = Bench(params, work)
        steps: list[tuple[set[int], Callable[[], None]]] = [
            ({6}, bench.plan),
            ({7}, bench.download),
            ({8}, bench.waves),
        ]
        if want & {1, 2, 3, 4, 5}:
            knobs = ServerKnobs(params.latency, params.jitter * params.latency,
                                params.concurrency)
            with SandboxProcess(knobs) as server:
                if want & {1, 2, 3, 4}:
                    bench.engine(server, want | ({1} if 3 in want else set()))
                if 3 in want:
                    bench.compare(server)
                if 5 in want:
                    bench.noop(server)
        for numbers, step in steps:
            if want & numbers:
                step()
    document = {
        "machine": {**machine(), "load_before": load_before, "load_after": os.getloadavg(),
                    "cpu_probe_before": probe_before, "cpu_probe_after": cpu_probe()},
        "command": " ".join(["python", "-m", "benchmarks.run_bench", *(argv or sys.argv[1:])]),
        "params": {**params.__dict__, "download_mb": list(params.download_mb),
                   "plan_n": list(params.plan_n), "waves": [list(w) for w in params.waves],
                   "poll_min": RUNNER_FLOOR * params.scale,
                   "poll_max": RUNNER_CEILING * params.scale,
                   "docs_poll_interval": DOCS_POLL * params.scale},
        "seconds": round(time.perf_counter() - started, 1),
        "rows": [r.__dict__ for r in bench.rows],
        "raw": bench.raw,
    }
    text = json.dumps(document, indent=2, ensure_ascii=False, default=str)
    if args.json_out:
        args.json_out.write_text(text + "\n", encoding="utf-8")
    print(text)
    print()
    print(markdown(bench.rows))
    m = document["machine"]
    print(f"\nload average (1, 5, 15 min) before: {_loads(m['load_before'])}, after: "
          f"{_loads(m['load_after'])}; CPU probe {m['cpu_probe_before']:.2f} s before, "
          f"{m['cpu_probe_after']:.2f} s after (an idle modern core: about 0.5 s)")
    return 0


def _loads(loads: Sequence[float]) -> str:
    return ", ".join(f"{x:.2f}" for x in loads)


if __name__ == "__main__":
    sys.exit(main())
