"""The two clients `runner run` is compared with (issue 7, scenario 3).

`docs_client`: the approach of the API docs' example — one request at a time with plain
`requests`, POST, then poll every 10 s (scaled here to the benchmark's latency) until the
status leaves the running set, then download the video.

`naive_client`: what a user writes next — the same loop in asyncio with httpx, at most
`concurrency` generations in flight, a fixed poll interval, the video written to disk.

Both send the same bodies `runner run` sends (same image, prompt, seeds) and do the same
work per generation (submit, poll, download to a file), so only the scheduling differs.
Polls are counted by the sandbox, not by the clients.
"""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import requests

ENDPOINT = "/v2/generate/video/runway/generation"
API_KEY = "<YOUR_AIMLAPI_KEY>"  # the sandbox accepts any bearer key
RUNNING = ("waiting", "active", "queued", "generating")


@dataclass(frozen=True, slots=True)
class ClientRun:
    """What one comparison client did."""

    generations: int
    completed: int
    makespan: float  # seconds from the first POST to the last video on disk


def body(image: Path, seed: int) -> dict[str, Any]:
    """Return the create body `runner run` sends for the benchmark spec's `seed`."""
    data = base64.b64encode(image.read_bytes()).decode("ascii")
    return {
        "model": "runway/gen4_turbo",
        "image_url": f"data:image/png;base64,{data}",
        "prompt": "A slow dolly shot over a misty lake at dawn",
        "ratio": "16:9",
        "duration": 5,
        "seed": seed,
    }


# --- the docs' approach: one at a time, plain requests, fixed sleep -----------------------


def _docs_one(base_url: str, payload: dict[str, Any], poll_every: float, dest: Path) -> bool:
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    url = base_url + ENDPOINT
    created = requests.post(url, json=payload, headers=headers, timeout=60)
    if created.status_code >= 400:
        return False
    gen_id = created.json().get("id")
    while True:
        result = requests.get(url, params={"generation_id": gen_id}, headers=headers, timeout=60)
        data = result.json()
        if data.get("status") in RUNNING:
            time.sleep(poll_every)
            continue
        if data.get("status") != "completed":
            return False
        video = requests.get(data["video"][0], timeout=60)
        dest.write_bytes(video.content)
        return True


def docs_client(
    base_url: str, image: Path, seeds: range, poll_every: float, out: Path
) -> ClientRun:
    """Run the docs' example over `seeds`, strictly one generation after another."""
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    completed = sum(
        _docs_one(base_url, body(image, seed), poll_every, out / f"seed-{seed}.mp4")
        for seed in seeds
    )
    return ClientRun(len(seeds), completed, time.perf_counter() - started)


# --- a naive asyncio client: a semaphore and a fixed poll interval ------------------------


async def _naive_one(
    client: httpx.AsyncClient,
    gate: asyncio.Semaphore,
    payload: dict[str, Any],
    poll_every: float,
    dest: Path,
) -> bool:
    async with gate:
        created = await client.post(ENDPOINT, json=payload)
        if created.status_code >= 400:
            return False
        gen_id = created.json()["id"]
        while True:
            await asyncio.sleep(poll_every)
            data = (await client.get(ENDPOINT, params={"generation_id": gen_id})).json()
            if data.get("status") in RUNNING:
                continue
            if data.get("status") != "completed":
                return False
            video = await client.get(data["video"][0])
            dest.write_bytes(video.content)
            return True


async def _naive(
    base_url: str, image: Path, seeds: range, poll_every: float, concurrency: int, out: Path
) -> int:
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency + 8)
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, limits=limits, timeout=60.0
    ) as client:
        done = await asyncio.gather(
            *(
                _naive_one(client, gate, body(image, s), poll_every, out / f"seed-{s}.mp4")
                for s in seeds
            )
        )
    return sum(done)


def naive_client(
    base_url: str, image: Path, seeds: range, poll_every: float, concurrency: int, out: Path
) -> ClientRun:
    """Run every seed with `concurrency` generations in flight, polling every `poll_every`."""
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    completed = asyncio.run(_naive(base_url, image, seeds, poll_every, concurrency, out))
    return ClientRun(len(seeds), completed, time.perf_counter() - started)


# --- the provider's own SDK: generate_with_polling from a thread pool ---------------------


def sdk_client(
    base_url: str, payloads: list[dict[str, Any]], poll_every: float, concurrency: int, out: Path
) -> ClientRun:
    """Run each body through `aimlapi-sdk-python`'s `videos.generate_with_polling`.

    What a user of the SDK writes for a batch: a thread pool of `concurrency` workers,
    each calling the documented helper (unified endpoint, a fixed `poll_interval`, the
    video returned as bytes) and writing the file. `model` and `prompt` are its named
    arguments; the rest of the body (image, ratio, duration, seed) goes in `extra_body`.
    """
    from concurrent.futures import ThreadPoolExecutor

    import aimlapi  # the `bench` extra: only this comparison needs it

    client = aimlapi.AIMLAPI(api_key=API_KEY, base_url=f"{base_url}/v1")
    out.mkdir(parents=True, exist_ok=True)

    def one(index: int, payload: dict[str, Any]) -> bool:
        rest = {k: v for k, v in payload.items() if k not in ("model", "prompt")}
        video = client.videos.generate_with_polling(
            model=payload["model"], prompt=payload.get("prompt", ""), extra_body=rest,
            poll_interval=poll_every, poll_timeout=600.0, return_bytes=True,
        )
        if not isinstance(video, bytes):
            return False
        (out / f"video-{index}.mp4").write_bytes(video)
        return True

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        done = list(pool.map(one, range(len(payloads)), payloads))
    return ClientRun(len(payloads), sum(done), time.perf_counter() - started)
