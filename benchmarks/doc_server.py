"""A stand-in video API that follows only the documented protocol, for the benchmarks.

    python -m benchmarks.doc_server [--port 0] [--latency 4] [--spread 0.1]
                                    [--concurrency 40] [--seed 7]

Written from the API's documentation (`shared/api-facts.md`), independent of the runner's
own sandbox (it imports nothing from `runner`), so a benchmark can show the runner is
not tuned to its own emulator. It serves:

- `POST/GET /v2/video/generations` (unified) and `POST/GET
  /v2/generate/video/runway/generation` (legacy Runway): a bearer key is required; a
  create answers `{"id", "status": "queued", "meta"}`; a poll `{"id", "status":
  queued|generating|completed, "video": {"url"} | null, "error": null, "meta"}` on the
  unified path and `{"id", "status", "video": [url]}` on the legacy one;
- `GET /files/<id>.mp4`: one tiny valid MP4 (H.264, made once with PyAV at startup);
- `GET /models/metrics` (no key): `duration_ms` p50/p75/p90/p99 per model over the
  generations that ended in the last 300 s, absent when none did;
- `GET /_bench/stats` (and `DELETE` to reset): submissions, duplicate bodies, polls,
  polls per generation in the order accepted, each generation's notice delay (from
  its end to the first poll answering `completed`), and when (`time.monotonic()`, the
  clock every process of the machine shares) the first create came and the last video
  went.

Generations queue first come first served for `--concurrency` slots and take
`latency x (1 + e)` seconds, e normal with sd `spread / 2`, clipped to ±`spread`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import heapq
import io
import json
import math
import random
import statistics
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import av
from aiohttp import web

UNIFIED = "/v2/video/generations"
LEGACY = "/v2/generate/video/runway/generation"
WINDOW = 300.0


def tiny_mp4() -> bytes:
    """Return a valid one-second 64x36 H.264 MP4."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("h264", rate=8)
        stream.width, stream.height, stream.pix_fmt = 64, 36, "yuv420p"
        for i in range(8):
            frame = av.VideoFrame(64, 36, "yuv420p")
            for plane in frame.planes:
                plane.update(bytes([(i * 30) % 256]) * plane.buffer_size)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buffer.getvalue()


@dataclass
class Generation:
    """One accepted generation, on the server's monotonic clock."""

    id: str
    model: str
    submitted: float
    start: float
    end: float


@dataclass
class Counters:
    """What `/_bench/stats` reports."""

    requests: int = 0
    submissions: int = 0
    duplicate_submissions: int = 0
    polls: int = 0
    downloads: int = 0
    bodies: dict[str, int] = field(default_factory=dict)
    accepted: list[str] = field(default_factory=list)
    work_seconds: list[float] = field(default_factory=list)  # slot time of each, in order
    polled: dict[str, int] = field(default_factory=dict)
    notice: dict[str, float] = field(default_factory=dict)
    first_create: float | None = None  # time.monotonic() of the first accepted create
    last_download: float | None = None  # ... and of the last video served


class DocServer:
    """The documented protocol over aiohttp."""

    def __init__(self, latency: float, spread: float, concurrency: int, seed: int) -> None:
        self.latency, self.spread = latency, spread
        self.rng = random.Random(seed)
        self.free_at = [0.0] * concurrency
        self.generations: dict[str, Generation] = {}
        self.counters = Counters()
        self.clip = tiny_mp4()

    def app(self) -> web.Application:
        """Build the aiohttp application."""
        app = web.Application(client_max_size=16 * 2**20)
        for path in (UNIFIED, LEGACY):
            app.router.add_post(path, self.create)
            app.router.add_get(path, self.poll)
        app.router.add_get("/files/{name}", self.download)
        app.router.add_get("/models/metrics", self.metrics)
        app.router.add_get("/_bench/stats", self.stats)
        app.router.add_delete("/_bench/stats", self.reset)
        return app

    def _duration(self) -> float:
        error = max(-self.spread, min(self.spread, self.rng.gauss(0.0, self.spread / 2)))
        return self.latency * (1.0 + error)

    async def create(self, request: web.Request) -> web.Response:
        self.counters.requests += 1
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            return _error(request, 401, "Unauthorized")
        try:
            body = await request.json()
        except ValueError:
            return _error(request, 400, "Body validation error!")
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            return _error(request, 400, "Body validation error!")
        now = time.monotonic()
        start = max(now, heapq.heappop(self.free_at))
        end = start + self._duration()
        heapq.heappush(self.free_at, end)
        gen = Generation(str(uuid.uuid4()), body["model"], now, start, end)
        self.generations[gen.id] = gen
        digest = hashlib.sha256(
            json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest()
        c = self.counters
        c.submissions += 1
        c.duplicate_submissions += 1 if c.bodies.get(digest) else 0
        c.bodies[digest] = c.bodies.get(digest, 0) + 1
        c.accepted.append(gen.id)
        c.work_seconds.append(end - start)
        if c.first_create is None:
            c.first_create = now
        usage = {"credits_used": 0, "usd_spent": 0.0}
        return web.json_response({"id": gen.id, "status": "queued", "meta": {"usage": usage}},
                                 headers={"x-inference-id": gen.id})

    async def poll(self, request: web.Request) -> web.Response:
        self.counters.requests += 1
        self.counters.polls += 1
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            return _error(request, 401, "Unauthorized")
        gen = self.generations.get(request.query.get("generation_id", ""))
        if gen is None:
            return _error(request, 404, "Generation not found")
        self.counters.polled[gen.id] = self.counters.polled.get(gen.id, 0) + 1
        now = time.monotonic()
        status = "queued" if now < gen.start else "generating" if now < gen.end else "completed"
        url = f"{request.scheme}://{request.host}/files/{gen.id}.mp4"
        if status == "completed":
            self.counters.notice.setdefault(gen.id, now - gen.end)
        if request.path == LEGACY:
            result: dict[str, Any] = {"id": gen.id, "status": status}
            if status == "completed":
                result["video"] = [url]
        else:
            result = {"id": gen.id, "status": status,
                      "video": {"url": url} if status == "completed" else None, "error": None,
                      "meta": {"usage": {"credits_used": 0, "usd_spent": 0.0}}}
        return web.json_response(result, headers={"x-inference-id": gen.id})

    async def download(self, request: web.Request) -> web.Response:
        self.counters.requests += 1
        self.counters.downloads += 1
        if request.match_info["name"].removesuffix(".mp4") not in self.generations:
            return _error(request, 404, "not found")
        self.counters.last_download = time.monotonic()
        return web.Response(body=self.clip, content_type="video/mp4")

    async def metrics(self, request: web.Request) -> web.Response:
        aliases = request.query.getall("aliases", None)
        now = time.monotonic()
        durations: dict[str, list[float]] = {}
        for gen in self.generations.values():
            if now - WINDOW <= gen.end <= now and (aliases is None or gen.model in aliases):
                durations.setdefault(gen.model, []).append((gen.end - gen.submitted) * 1000)
        models = []
        for model, values in sorted(durations.items()):
            values.sort()
            shown = {f"p{p}": round(_percentile(values, p), 1) for p in (50, 75, 90, 99)}
            models.append({"alias": model, "endpoint": UNIFIED,
                           "metrics": {"duration_ms": shown}})
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        return web.json_response({"window_seconds": int(WINDOW), "generated_at": stamp,
                                  "models": models})

    async def stats(self, _request: web.Request) -> web.Response:
        c = self.counters
        notices = sorted(c.notice.values())
        return web.json_response({
            "requests": c.requests, "submissions": c.submissions,
            "duplicate_submissions": c.duplicate_submissions, "polls": c.polls,
            "downloads": c.downloads, "first_create": c.first_create,
            "last_download": c.last_download,
            "polls_by_generation": [c.polled.get(g, 0) for g in c.accepted],
            "work_seconds": [round(w, 4) for w in c.work_seconds],
            "notice_delay": {
                "count": len(notices),
                "mean": statistics.fmean(notices) if notices else None,
                "median": statistics.median(notices) if notices else None,
                "p90": notices[int(0.9 * (len(notices) - 1))] if notices else None,
            },
        })

    async def reset(self, _request: web.Request) -> web.Response:
        self.counters = Counters()
        return web.json_response({"reset": True})


def _percentile(ordered: list[float], p: float) -> float:
    position = p / 100 * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _error(request: web.Request, status: int, message: str) -> web.Response:
    body = {"message": message, "path": request.path, "requestId": str(uuid.uuid4()),
            "statusCode": status, "timestamp": datetime.now(UTC).isoformat()}
    return web.json_response(body, status=status)


async def _serve(args: argparse.Namespace) -> None:
    server = DocServer(args.latency, args.spread, args.concurrency, args.seed)
    runner = web.AppRunner(server.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", args.port, backlog=1024)
    await site.start()
    port = runner.addresses[0][1]
    print(f"serving on http://127.0.0.1:{port}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main() -> None:
    """Serve until interrupted."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=4.0)
    parser.add_argument("--spread", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C / SIGINT is how it stops
        asyncio.run(_serve(parser.parse_args()))


if __name__ == "__main__":
    main()
