"""What the sandbox pays per clip, and whether its server keeps up with 1,000 generations.

    python benchmarks/render_bench.py [--clips 20] [--reference-clips 3] [--server 1000]

Rendering: `render_clip` on the docs' mountain image, gen4_turbo, 8 fps, each clip with
a new seed (no cache): 16:9 5 s and 10 s at the default scale (8: 160x90), 5 s at scale 1
(1280x720, reference), and the cheap mode benchmarks use. Prints median and p90 ms.

Server (`--server N`, 0 skips): N generations submitted at once by one aiohttp client to
an in-thread sandbox (cheap mode, concurrency N, latency 1 s), each polled until done and
downloaded; prints wall time, requests per second and the slowest response.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import statistics
import time
from pathlib import Path

import aiohttp

from runner.catalog import get_model
from runner.sandbox import SandboxConfig, start_in_thread
from runner.sandbox.render import RenderJob, RenderMode, output_size, render_clip

IMAGE = Path(__file__).resolve().parent.parent / "specs" / "images" / "mountain.png"
ENDPOINT = "/v2/generate/video/runway/generation"


def time_renders(scale: int, duration: int, clips: int, mode: RenderMode) -> list[float]:
    """Render `clips` clips with distinct seeds; return milliseconds per clip."""
    model = get_model("runway/gen4_turbo")
    size = model.size("16:9") if model is not None else None
    assert model is not None and size is not None
    width, height = output_size(size, scale)
    image = IMAGE.read_bytes()
    timings = []
    for seed in range(clips):
        job = RenderJob(model.name, width, height, 8, duration, seed, "a dragon",
                        hashlib.sha256(image).hexdigest(), image, mode=mode)
        started = time.perf_counter()
        render_clip(job)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def report(label: str, timings: list[float]) -> None:
    """Print median and p90 of a list of milliseconds."""
    ordered = sorted(timings)
    p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
    print(f"{label:<40} median {statistics.median(ordered):7.1f} ms   p90 {p90:7.1f} ms"
          f"   (n={len(ordered)})")


async def drive_server(base_url: str, count: int) -> tuple[float, int, float]:
    """Submit `count` generations at once, poll each every 0.2 s, download; return stats."""
    uri = "data:image/png;base64," + base64.b64encode(IMAGE.read_bytes()).decode()
    headers = {"Authorization": "Bearer bench"}
    requests_sent = 0
    slowest = 0.0

    async def call(session: aiohttp.ClientSession, method: str, url: str,
                   **kwargs: object) -> tuple[int, bytes]:
        nonlocal requests_sent, slowest
        started = time.perf_counter()
        async with session.request(method, url, **kwargs) as response:  # type: ignore[arg-type]
            data = await response.read()
        requests_sent += 1
        slowest = max(slowest, time.perf_counter() - started)
        return response.status, data

    async def one(session: aiohttp.ClientSession, seed: int) -> None:
        body = {"model": "runway/gen4_turbo", "image_url": uri, "prompt": "bench",
                "duration": 5, "ratio": "16:9", "seed": seed}
        status, data = await call(session, "POST", base_url + ENDPOINT, json=body,
                                  headers=headers)
        assert status == 200, data
        gen_id = json.loads(data)["id"]
        while True:
            await asyncio.sleep(0.2)
            status, data = await call(session, "GET", base_url + ENDPOINT,
                                      params={"generation_id": gen_id}, headers=headers)
            result = json.loads(data)
            if result["status"] == "completed":
                break
        status, video = await call(session, "GET", result["video"][0])
        assert status == 200 and video[4:8] == b"ftyp"

    connector = aiohttp.TCPConnector(limit=count)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(one(session, seed) for seed in range(count)))
        return time.perf_counter() - started, requests_sent, slowest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=20)
    parser.add_argument("--reference-clips", type=int, default=3)
    parser.add_argument("--server", type=int, default=1000)
    args = parser.parse_args()

    report("16:9 5 s, scale 8 (160x90), full", time_renders(8, 5, args.clips, "full"))
    report("16:9 10 s, scale 8 (160x90), full", time_renders(8, 10, args.clips, "full"))
    report("16:9 5 s, scale 8, cheap", time_renders(8, 5, args.clips, "cheap"))
    report("16:9 5 s, scale 1 (1280x720), full",
           time_renders(1, 5, args.reference_clips, "full"))

    if args.server:
        config = SandboxConfig(latency=1.0, jitter=0.2, concurrency=args.server, render="cheap")
        with start_in_thread(config) as running:
            elapsed, sent, slowest = asyncio.run(drive_server(running.base_url, args.server))
            stats = running.stats()
        print(f"server: {args.server} concurrent generations done in {elapsed:.2f} s; "
              f"{sent} requests ({sent / elapsed:.0f}/s); slowest response {slowest * 1000:.0f} ms;"
              f" renders {stats['renders']}, submissions {stats['submissions']}")


if __name__ == "__main__":
    main()
