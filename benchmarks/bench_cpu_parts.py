"""Where a generation's CPU goes: each step `runner run` takes, timed alone, in-process.

Scenario 4 measures the runner process as a whole; this splits it into the steps one
generation takes (a create, a poll, a probe, a poster, a sidecar, a manifest record),
each repeated against the same sandbox and timed with getrusage(RUSAGE_SELF), so the
report can say which step the budget goes to.
"""

from __future__ import annotations

import asyncio
import base64
import resource
import tempfile
from collections.abc import Callable
from pathlib import Path

import httpx

from runner.api import ApiClient
from runner.clock import SystemClock
from runner.manifest import Manifest
from runner.poster import ensure_poster
from runner.probe import probe
from runner.sidecar import write_sidecar

ENDPOINT = "/v2/generate/video/runway/generation"


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _per_call(fn: Callable[[int], object], repeat: int) -> float:
    started = _cpu()
    for index in range(repeat):
        fn(index)
    return (_cpu() - started) / repeat * 1000


async def _http(base_url: str, image: Path, repeat: int) -> tuple[float, float]:
    data = base64.b64encode(image.read_bytes()).decode("ascii")
    body = {"model": "runway/gen4_turbo", "image_url": f"data:image/png;base64,{data}",
            "prompt": "cpu parts", "ratio": "16:9", "duration": 5}
    client = ApiClient("sandbox", base_url, "bench", SystemClock(), max_in_flight=50)
    try:
        started = _cpu()
        ids = [(await client.create(ENDPOINT, {**body, "seed": s})).generation_id
               for s in range(repeat)]
        create = (_cpu() - started) / repeat * 1000
        started = _cpu()
        await asyncio.gather(*(client.fetch(ENDPOINT, i) for i in ids))
        poll = (_cpu() - started) / repeat * 1000
    finally:
        await client.aclose()
    return create, poll


def cpu_parts(base_url: str, image: Path, clip_url: str, repeat: int = 100) -> dict[str, float]:
    """Return CPU milliseconds per call of each step of one generation."""
    create, poll = asyncio.run(_http(base_url, image, repeat))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        clip = folder / "clip.mp4"
        clip.write_bytes(httpx.get(clip_url, timeout=30).content)
        sidecar = {"payload": {"prompt": "x" * 200}, "timings": {}, "video": {"width": 160}}
        with Manifest.open(folder / "m") as manifest:
            record = _per_call(lambda i: manifest.record_completed(f"r{i}"), repeat)
        return {
            "create (POST)": create,
            "poll (GET)": poll,
            "probe (PyAV)": _per_call(lambda i: probe(clip), repeat),
            "poster (PyAV + JPEG + atomic write)": _per_call(
                lambda i: ensure_poster(clip, folder / f"p{i}.jpg"), repeat),
            "sidecar (JSON + atomic write)": _per_call(
                lambda i: write_sidecar(folder / f"v{i}.mp4", sidecar), repeat),
            "manifest record (append + fsync)": record,
        }
