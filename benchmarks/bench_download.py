"""Download throughput and memory through `runner.download` (issue 7, scenario 7).

    python -m benchmarks.bench_download serve            # prints "serving on URL"
    python -m benchmarks.bench_download fetch URL DEST   # prints one JSON line

`serve` is a small aiohttp server streaming `/blob/<MB>`: that many megabytes of random
bytes (one 1 MiB random block repeated), with Content-Length, in 1 MiB writes. `fetch`
downloads one URL with `runner.download.download` (streamed, sha256 while writing,
fsync, rename) through the engine's own download client. Each runs in its own process,
so the fetching process's peak RSS is its own, and server and client each get a core.
`download_cpu()` measures the CPU one small download costs inside this process.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from runner.api import download_client
from runner.download import download

MIB = 1 << 20


async def _blob(request: web.Request) -> web.StreamResponse:
    megabytes = int(request.match_info["mb"])
    block: bytes = request.app["block"]
    response = web.StreamResponse(headers={"Content-Type": "video/mp4"})
    response.content_length = megabytes * MIB
    await response.prepare(request)
    for _ in range(megabytes):
        await response.write(block)
    await response.write_eof()
    return response


async def _serve() -> None:
    app = web.Application()
    app["block"] = os.urandom(MIB)
    app.router.add_get("/blob/{mb:\\d+}", _blob)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    print(f"serving on http://{host}:{port}", flush=True)
    await asyncio.Event().wait()


async def _fetch(url: str, dest: Path) -> dict[str, float | int | str]:
    async with download_client() as client:
        result = await download(client, url, dest, allow_loopback_http=True)
    return {
        "size": result.size,
        "sha256": result.sha256,
        "seconds": result.seconds,
        "mb_per_s": result.size / MIB / result.seconds,
    }


async def _fetch_all(urls: Sequence[str], folder: Path, concurrency: int) -> None:
    gate = asyncio.Semaphore(concurrency)
    async with download_client(max_in_flight=concurrency) as client:

        async def one(index: int, url: str) -> None:
            async with gate:
                await download(client, url, folder / f"{index}.mp4", allow_loopback_http=True)

        await asyncio.gather(*(one(i, u) for i, u in enumerate(urls)))


def download_cpu(urls: Sequence[str], folder: Path, concurrency: int) -> float:
    """Return the CPU seconds per download of `urls` through runner.download, here."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    asyncio.run(_fetch_all(urls, folder, concurrency))
    after = resource.getrusage(resource.RUSAGE_SELF)
    spent = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return spent / max(1, len(urls))


def main(argv: Sequence[str]) -> None:
    """Serve blobs, or fetch one and print its size, digest and speed as JSON."""
    if argv[:1] == ["serve"]:
        asyncio.run(_serve())
    elif argv[:1] == ["fetch"] and len(argv) == 3:
        started = time.perf_counter()
        report = asyncio.run(_fetch(argv[1], Path(argv[2])))
        report["process_seconds"] = time.perf_counter() - started
        print(json.dumps(report))
    else:
        sys.exit("usage: python -m benchmarks.bench_download serve | fetch URL DEST")


if __name__ == "__main__":
    main(sys.argv[1:])
