"""Measure the engine end to end against the sandbox: wall time against the ideal.

    python benchmarks/engine_sandbox.py [--requests N] [--concurrency C] [--latency S]

Starts the sandbox in a thread (cheap render: one cached clip per size, so the server
costs next to nothing), runs N requests through `runner.engine.execute` with C workers
over real loopback HTTP, and reports the wall time against the ideal N / C × latency,
the engine's overhead per request, the polls per request and the duplicate submissions
the sandbox counted (must be 0). A second run of the same spec is timed too: it must
make no API call.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from runner.clock import SystemClock
from runner.engine import RunOptions, execute
from runner.polling import PollSettings
from runner.request import LocalImage, Request
from runner.sandbox import SandboxConfig, start_in_thread


@dataclass(frozen=True)
class Spec:
    name: str
    display: str
    requests: tuple[Request, ...]
    images: dict[str, LocalImage]


def _spec(folder: Path, n: int) -> Spec:
    path = folder / "image.png"
    Image.new("RGB", (64, 36), (90, 120, 200)).save(path)
    data = path.read_bytes()
    image = LocalImage(hashlib.sha256(data).hexdigest(), path, "image/png", 64, 36, len(data))
    requests = []
    for seed in range(n):
        body: dict[str, Any] = {"model": "runway/gen4_turbo", "image_url": image.ref,
                                "prompt": "bench", "ratio": "16:9", "duration": 5, "seed": seed}
        rid = hashlib.sha256(repr(sorted(body.items())).encode()).hexdigest()[:16]
        requests.append(Request(rid, "bench.yaml", "bench", "default", "sandbox",
                                "runway/gen4_turbo", "/v2/generate/video/runway/generation",
                                body, f"seed-{seed}.mp4", {"seed": seed}, False))
    return Spec("bench", "bench.yaml", tuple(requests), {image.sha256: image})


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency", type=float, default=1.0)
    args = parser.parse_args()
    n, c, latency = args.requests, args.concurrency, args.latency
    config = SandboxConfig(latency=latency, jitter=0.0, concurrency=c, render="cheap")
    with tempfile.TemporaryDirectory() as tmp, start_in_thread(config) as sandbox:
        spec = _spec(Path(tmp), n)
        options = RunOptions(output_dir=Path(tmp) / "out", base_url=sandbox.base_url,
                             concurrency=c, poll=PollSettings(0.2, 5.0, 600.0))

        def once() -> tuple[float, Any]:
            started = time.perf_counter()
            summary = asyncio.run(execute([(spec, list(spec.requests))], options,
                                          clock=SystemClock()))
            return time.perf_counter() - started, summary

        wall, summary = once()
        stats = sandbox.stats()
        again, second = once()
        after = sandbox.stats()
    ideal = n / c * latency
    print(f"{n} requests, concurrency {c}, sandbox latency {latency:.1f} s")
    print(f"  first run : {wall:6.2f} s wall, ideal {ideal:.2f} s, overhead "
          f"{(wall - ideal) / n * 1000:.0f} ms/request, {summary.count('done')} done")
    print(f"  polls/request {stats['polls'] / n:.2f}, submissions {stats['submissions']}, "
          f"duplicates {stats['duplicate_submissions']}")
    calls = after["submissions"] + after["polls"] - stats["submissions"] - stats["polls"]
    print(f"  second run: {again:6.2f} s wall, API calls {calls}, "
          f"{second.count('already_done')} already done")
    if stats["duplicate_submissions"] or calls:
        sys.exit(1)


if __name__ == "__main__":
    main()
