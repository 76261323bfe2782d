"""Polling from the first wave: `runner run` and the provider's SDK on the same server.

For one server (the sandbox, or `benchmarks.doc_server`, which follows only the
documented protocol), N generations, concurrency C and latency L:

1. the SDK peer (`bench_clients.sdk_client`: a thread pool of C calling
   `videos.generate_with_polling`, polls every 10 s scaled to L) runs the spec's bodies;
   its generations are also the traffic behind the server's `GET /models/metrics`, as
   other users' are behind the real API's;
2. `runner run` of the same bodies (a child process, unified endpoint, `--poll-min/max`
   scaled) starts from those published percentiles: polls per generation for its first
   wave (the first C accepted, polled before anything of the run had finished) and
   overall, median notice delay, makespan against the instant-refill ideal (the
   servers' drawn slot times scheduled over C slots with no gap: `refill_ideal`) and
   against N·L/C, duplicate submissions;
3. with `variants`: a cold run (fresh server, no metrics, empty output tree) and a run
   starting from the history the cold run left in its output tree (fresh server again).

Polls, notice delays and duplicates are the server's counters, never the clients'.
"""

from __future__ import annotations

import heapq
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from PIL import Image

from benchmarks.bench_clients import sdk_client
from benchmarks.bench_process import ChildRun, run_child
from benchmarks.bench_sandbox import SandboxProcess, ServerKnobs
from benchmarks.bench_servers import DocServerProcess
from runner.request import materialize
from runner.spec import load_specs

RUNNER_FLOOR, RUNNER_CEILING = 5.0, 60.0  # the runner's real-API poll bounds (runner.engine)
DOCS_POLL = 10.0  # the SDK's default poll_interval, and the docs' example
DOCS_SECONDS = 65.0  # a gen4_turbo 5 s clip in the docs

SPEC = """\
version: 1
name: {name}
provider: {provider}
model: runway/gen4_turbo
endpoint: unified
max_requests: {count}
matrix:
  seed: {{range: [{first}, {last}]}}
params:
  image_url: images/frame.png
  prompt: "A slow dolly shot over a misty lake at dawn"
  ratio: "16:9"
  duration: 5
output: "seed-{{{{ seed }}}}.mp4"
"""


class Server(Protocol):
    """What a scenario needs from a server process."""

    base_url: str

    def stats(self) -> dict[str, Any]: ...

    def reset(self) -> None: ...

    def stop(self) -> None: ...


def start_server(kind: str, latency: float, spread: float, concurrency: int) -> Server:
    """Start the sandbox (`kind` "sandbox") or the documented-protocol server ("doc")."""
    if kind == "sandbox":
        return SandboxProcess(ServerKnobs(latency, spread * latency, concurrency))
    return DocServerProcess(latency, spread, concurrency)


def write_spec(folder: Path, name: str, seeds: range, provider: str) -> Path:
    """Write a unified-endpoint gen4_turbo spec of one request per seed, with its image."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    image = folder / "images" / "frame.png"
    if not image.exists():
        Image.new("RGB", (64, 36), (90, 120, 160)).save(image)
    path = folder / f"{name}.yaml"
    path.write_text(SPEC.format(name=name, provider=provider, count=len(seeds),
                                first=seeds.start, last=seeds.stop - 1), encoding="utf-8")
    return path


def bodies(spec: Path) -> list[dict[str, Any]]:
    """Return the exact bodies `runner run` POSTs for `spec` (images as data: URIs)."""
    (loaded,) = load_specs([spec])
    return [materialize(r.body, loaded.images) for r in loaded.requests]


def refill_ideal(work_seconds: list[float], concurrency: int) -> float:
    """Return the makespan of a client that refills each of `concurrency` slots the
    instant it frees, given the slot time the server drew for each generation in order.

    N·L/C is below it: with durations that vary, C chains of N/C generations do not end
    together, and the batch waits for the longest.
    """
    free = [0.0] * concurrency
    for seconds in work_seconds:
        heapq.heappush(free, heapq.heappop(free) + seconds)
    return max(free, default=0.0)


def figures(stats: dict[str, Any], concurrency: int) -> dict[str, Any]:
    """Polls per generation (first wave, overall), notice delay and duplicates."""
    per = stats["polls_by_generation"]
    wave = per[:concurrency]
    return {
        "refill_ideal": refill_ideal(stats["work_seconds"], concurrency),
        "generations": len(per),
        "polls_first_wave": statistics.fmean(wave) if wave else None,
        "polls_overall": statistics.fmean(per) if per else None,
        "notice_median": stats["notice_delay"]["median"],
        "notice_p90": stats["notice_delay"]["p90"],
        "duplicates": stats["duplicate_submissions"],
    }


class Waves:
    """Run the scenario for one server kind and size; collect figures and commands."""

    def __init__(self, kind: str, n: int, concurrency: int, latency: float, spread: float,
                 work: Path) -> None:
        self.kind, self.n, self.c = kind, n, concurrency
        self.latency, self.spread = latency, spread
        self.work = work / f"{kind}-{n}"
        self.provider = "sandbox" if kind == "sandbox" else "aimlapi"
        scale = latency / DOCS_SECONDS
        self.poll = (f"{RUNNER_FLOOR * scale:.2f}", f"{RUNNER_CEILING * scale:.2f}")
        self.sdk_poll = DOCS_POLL * scale
        self.ideal = n * latency / concurrency
        os.environ.setdefault("AIMLAPI_API_KEY", "bench-key")  # loopback only; any key works

    def run(self, variants: bool) -> dict[str, Any]:
        """Return the figures of the SDK, ours after it, and (with `variants`) cold/history."""
        spec = write_spec(self.work / "specs", "waves", range(1, self.n + 1), self.provider)
        result: dict[str, Any] = {"kind": self.kind, "n": self.n, "c": self.c,
                                  "latency": self.latency, "spread": self.spread,
                                  "ideal": self.ideal}
        server = start_server(self.kind, self.latency, self.spread, self.c)
        try:
            server.reset()
            sdk = sdk_client(server.base_url, bodies(spec), self.sdk_poll, self.c,
                             self.work / "out-sdk")
            result["sdk"] = {"makespan": sdk.makespan, "completed": sdk.completed,
                             **figures(server.stats(), self.c)}
            server.reset()
            result["ours"] = self._ours(server, spec, self.work / "out-ours")
        finally:
            server.stop()
        if variants:
            # Specs of their own: a paid spec's lock file would recall the first run.
            root = self.work / "out-cold"
            cold = write_spec(self.work / "specs-cold", "waves", range(1, self.n + 1),
                              self.provider)
            result["cold"] = self._fresh(lambda s: self._ours(s, cold, root))
            again = write_spec(self.work / "specs-cold", "again",
                               range(self.n + 1, 2 * self.n + 1), self.provider)
            result["history"] = self._fresh(lambda s: self._ours(s, again, root))
        return result

    def _fresh(self, step: Callable[[Server], dict[str, Any]]) -> dict[str, Any]:
        server = start_server(self.kind, self.latency, self.spread, self.c)
        try:
            return step(server)
        finally:
            server.stop()

    def _ours(self, server: Server, spec: Path, out: Path) -> dict[str, Any]:
        server.reset()
        command = ["run", str(spec), "--base-url", server.base_url,
                   "--concurrency", str(self.c), "--poll-min", self.poll[0],
                   "--poll-max", self.poll[1], "--output-dir", str(out)]
        log = self.work / f"runner-{spec.stem}-{out.name}.log"
        spawned = time.monotonic()
        child: ChildRun = run_child("runner", *command, log=log)
        exited = time.monotonic()
        if child.exit_code != 0:
            msg = f"runner run exited {child.exit_code}; see {log}"
            raise RuntimeError(msg)
        stats = server.stats()
        found = {"makespan": child.wall, "cpu": child.cpu,
                 "command": " ".join(["runner", *command]), **figures(stats, self.c)}
        if stats.get("first_create") is not None and stats.get("last_download") is not None:
            # Where the time outside the API goes (the documented-protocol server only).
            found["startup"] = stats["first_create"] - spawned
            found["tail"] = exited - stats["last_download"]
        return found
