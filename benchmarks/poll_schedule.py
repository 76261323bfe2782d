"""Measure the adaptive poll schedule against a fixed interval, on the real engine.

    python benchmarks/poll_schedule.py [--requests N] [--concurrency C] [--seed S]

A scripted API (httpx.MockTransport) answers as the documented API does, with each
generation taking a duration drawn around the docs' observed 65 s for a gen4_turbo 5 s
clip (normal, sd 10 s, at least 30 s). The engine runs on a virtual clock, so hours of
virtual time take seconds. For each schedule it reports polls per generation and the
lag between a generation finishing and the engine seeing it (the cost of polling less).
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from runner.clock import VirtualClock
from runner.engine import RunOptions, Transports, execute
from runner.polling import PollSettings
from runner.request import Request
from runner.sandbox.render import RenderJob, render_clip

CLIP = render_clip(
    RenderJob(model="runway/gen4_turbo", width=64, height=36, fps=4, duration=1, seed=1,
              prompt="p", image_sha256="x", image=None)
)


@dataclass
class Api:
    """Generations that finish `duration` virtual seconds after their POST."""

    clock: VirtualClock
    rng: random.Random
    ends: dict[str, float] = field(default_factory=dict)
    seen_done: dict[str, float] = field(default_factory=dict)
    polls: int = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        now = self.clock.monotonic()
        if request.url.host == "cdn.test":
            return httpx.Response(200, content=CLIP)
        if request.method == "POST":
            gid = f"g{len(self.ends)}"
            self.ends[gid] = now + max(30.0, self.rng.gauss(65.0, 10.0))
            return httpx.Response(201, json={"id": gid, "status": "queued"})
        self.polls += 1
        gid = request.url.params["generation_id"]
        if now < self.ends[gid]:
            return httpx.Response(200, json={"id": gid, "status": "generating"})
        self.seen_done.setdefault(gid, now)
        return httpx.Response(
            200, json={"id": gid, "status": "completed", "video": [f"https://cdn.test/{gid}.mp4"]}
        )


@dataclass(frozen=True)
class Spec:
    name: str
    display: str
    requests: tuple[Request, ...]
    images: dict[str, Any]


def _spec(n: int) -> Spec:
    requests = []
    for i in range(n):
        body = {"model": "runway/gen4_turbo", "image_url": "https://img.test/a.png", "seed": i}
        rid = hashlib.sha256(str(body).encode()).hexdigest()[:16]
        requests.append(
            Request(rid, "bench.yaml", "bench", "default", "aimlapi", "runway/gen4_turbo",
                    "/v2/generate/video/runway/generation", body, f"{i}.mp4", {"seed": i}, False)
        )
    return Spec("bench", "bench.yaml", tuple(requests), {})


def measure(label: str, poll: PollSettings, n: int, concurrency: int, seed: int) -> None:
    clock = VirtualClock()
    api = Api(clock, random.Random(seed))
    spec = _spec(n)
    with tempfile.TemporaryDirectory() as tmp:
        options = RunOptions(output_dir=Path(tmp), concurrency=concurrency, poll=poll, seed=seed)
        transports = Transports(httpx.MockTransport(api.handle), httpx.MockTransport(api.handle))
        started_real = time.perf_counter()
        start_virtual = clock.monotonic()
        summary = clock.run(
            execute([(spec, list(spec.requests))], options, clock=clock,
                    environ={"AIMLAPI_API_KEY": "bench"}, transports=transports)
        )
        real = time.perf_counter() - started_real
    assert summary.count("done") == n, summary.reports[:3]
    lags = [api.seen_done[g] - api.ends[g] for g in api.ends]
    print(
        f"{label:<26} polls/generation {api.polls / n:5.2f}   "
        f"detection lag mean {statistics.mean(lags):5.1f} s, p95 "
        f"{sorted(lags)[int(0.95 * (len(lags) - 1))]:5.1f} s   "
        f"batch {format(clock.monotonic() - start_virtual, '.0f')} s virtual "
        f"({real:.1f} s real)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    n, c, s = args.requests, args.concurrency, args.seed
    print(f"{n} generations of ~65 s (sd 10 s), concurrency {c}")
    measure("fixed 10 s (docs example)", PollSettings(10.0, 10.0, 1800.0, jitter=0.0), n, c, s)
    measure("fixed 5 s", PollSettings(5.0, 5.0, 1800.0, jitter=0.0), n, c, s)
    measure("adaptive (default 5–60 s)", PollSettings(5.0, 60.0, 1800.0), n, c, s)


if __name__ == "__main__":
    main()
