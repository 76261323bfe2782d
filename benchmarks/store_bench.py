"""How long the object store adds per video: put and get, against loopback S3 and a folder.

    python benchmarks/store_bench.py                      # the full run (a few minutes)
    python benchmarks/store_bench.py --small-n 5 --large-n 2 --inventory 100 --memory-mb 0
    python benchmarks/store_bench.py --json-out store.json

Starts a moto S3 server (`tests/store/moto_server.py`: its own process on 127.0.0.1,
requests signed and checked as AWS would) and makes a `file://` store in a temp folder.
For each, and for a typical sandbox video (`--small-kb`, ~30 KB) and a large one
(`--large-mb`, 20 MB), it puts N distinct random videos one after another (the first
upload of each), puts them all again (already held: what every later run pays), then
gets each back into a fresh output folder (verified, fsynced, renamed). It reports the
median seconds per video of each and the MB/s of the first put and of the get, then the
time `inventory()` takes over `--inventory` stored videos, and the peak Python memory
(tracemalloc) of one put and get of a `--memory-mb` video. Loopback moto is a Python
server on the same two cores, so the S3 figures bound what the store itself costs; a
real bucket adds the network. Figures are reported, never asserted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.store.moto_server

from runner.store import Store, open_store  # noqa: E402 - after the path fix above
from runner.store.base import video_key  # noqa: E402
from tests.store.moto_server import MotoServer  # noqa: E402

MB = 1_000_000  # throughput in decimal megabytes, as disks and networks are quoted
SIDECAR = json.dumps({"id": "3f2a", "size": 0, "video": {"codec": "h264"}}).encode()


def make_videos(folder: Path, size: int, count: int, tag: str) -> list[tuple[Path, str]]:
    """Write `count` distinct random files of `size` bytes; return them with their sha256."""
    folder.mkdir(parents=True, exist_ok=True)
    videos = []
    for n in range(count):
        data = os.urandom(size)
        path = folder / f"{tag}-{n}.mp4"
        path.write_bytes(data)
        videos.append((path, hashlib.sha256(data).hexdigest()))
    return videos


def timed(action: Callable[[], object]) -> float:
    """Return how many seconds `action` took."""
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def per_video(store: Store, videos: list[tuple[Path, str]], out: Path) -> dict[str, float]:
    """Time the first put, the repeated put and the get of each video."""
    first = [timed(lambda v=v, s=s: store.put(v, s, SIDECAR)) for v, s in videos]
    again = [timed(lambda v=v, s=s: store.put(v, s, SIDECAR)) for v, s in videos]
    back = [timed(lambda s=s: store.get(s, out / f"{s}.mp4")) for _, s in videos]
    total = sum(v.stat().st_size for v, _ in videos)
    return {
        "put_s": statistics.median(first),
        "put_again_s": statistics.median(again),
        "get_s": statistics.median(back),
        "put_mb_s": total / MB / sum(first),
        "get_mb_s": total / MB / sum(back),
    }


def inventory_seconds(
    store: Store, plant: Callable[[str], None], count: int
) -> dict[str, float]:
    """Plant `count` video names directly (8 threads), then time one `inventory()`.

    Returns the wall time and this process's CPU time: against loopback moto the gap is
    the server's own listing work, which a real bucket does elsewhere.
    """
    shas = [hashlib.sha256(f"inventory-{n}".encode()).hexdigest() for n in range(count)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda sha: plant(video_key(sha)), shas))
    started, cpu = time.perf_counter(), time.process_time()
    held = store.inventory()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    if not set(shas) <= held:
        msg = f"inventory missed {len(set(shas) - held)} of {count} planted videos"
        raise RuntimeError(msg)
    return {"wall_s": seconds, "client_cpu_s": cpu}


def peak_memory(store: Store, folder: Path, megabytes: int) -> int:
    """Return the peak traced Python memory of one put and one get of a video that big."""
    [(video, sha)] = make_videos(folder, megabytes * MB, 1, "memory")
    tracemalloc.start()
    try:
        store.put(video, sha, SIDECAR)
        store.get(sha, folder / "memory-back.mp4")
        peak: int = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    video.unlink()
    (folder / "memory-back.mp4").unlink()
    return peak


@contextmanager
def backends(tmp: Path) -> Iterator[dict[str, tuple[Store, Callable[[str], None]]]]:
    """Yield the two stores under test, each with a way to plant a raw object."""
    with MotoServer(log=tmp / "moto.log") as moto:
        bucket = moto.create_bucket("runner-store-bench")
        client = moto.client()
        s3 = open_store(f"s3://{bucket}/bench", environ=moto.env())
        root = tmp / "file-store"
        local = open_store(str(root))

        def plant_s3(name: str) -> None:
            client.put_object(Bucket=bucket, Key=f"bench/{name}", Body=b"")

        def plant_local(name: str) -> None:
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()

        yield {"s3 (moto, loopback)": (s3, plant_s3), "file:// (temp folder)": (local, plant_local)}


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Run every measurement; return the JSON document."""
    sizes = [("small", int(args.small_kb * 1000), args.small_n)]
    sizes.append(("large", int(args.large_mb * MB), args.large_n))
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="store-bench-") as name:
        tmp = Path(name)
        with backends(tmp) as stores:
            for backend, (store, _) in stores.items():
                for tag, size, count in sizes:
                    videos = make_videos(tmp / "videos" / tag, size, count, tag)
                    figures = per_video(store, videos, tmp / "out" / backend / tag)
                    rows.append({"backend": backend, "size_bytes": size, "n": count, **figures})
                    for video, _ in videos:
                        video.unlink()
            inventory = {
                backend: inventory_seconds(store, plant, args.inventory)
                for backend, (store, plant) in stores.items()
            }
            memory = {}
            if args.memory_mb:
                memory = {
                    backend: peak_memory(store, tmp / "memory", args.memory_mb)
                    for backend, (store, _) in stores.items()
                }
    return {
        "machine": {"nproc": os.cpu_count(), "python": platform.python_version()},
        "rows": rows,
        "inventory": {"objects": args.inventory, "seconds": inventory},
        "memory": {"megabytes": args.memory_mb, "peak_bytes": memory},
    }


def size_label(size: int) -> str:
    """Write a byte count as KB or MB."""
    return f"{size / MB:g} MB" if size >= MB else f"{size / 1000:g} KB"


def markdown(document: dict[str, Any]) -> str:
    """Render the figures as Markdown tables."""
    lines = [
        "| store | video | n | put (new) s/video | put (held) s/video | get s/video "
        "| put MB/s | get MB/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in document["rows"]:
        lines.append(
            f"| {row['backend']} | {size_label(row['size_bytes'])} | {row['n']} "
            f"| {row['put_s']:.4f} | {row['put_again_s']:.4f} | {row['get_s']:.4f} "
            f"| {row['put_mb_s']:.1f} | {row['get_mb_s']:.1f} |"
        )
    inventory = document["inventory"]
    listed = f"inventory() of {inventory['objects']:,} videos"
    lines += ["", f"| store | {listed}: wall s | client CPU s |", "|---|---|---|"]
    for name, figures in inventory["seconds"].items():
        lines.append(f"| {name} | {figures['wall_s']:.3f} | {figures['client_cpu_s']:.3f} |")
    memory = document["memory"]
    if memory["peak_bytes"]:
        lines += ["", f"| store | peak Python memory, put + get of {memory['megabytes']} MB |"]
        lines += ["|---|---|"]
        for name, peak in memory["peak_bytes"].items():
            lines.append(f"| {name} | {peak / 2**20:.1f} MiB |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse the options, measure, print the tables (and write the JSON when asked)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small-kb", type=float, default=30.0, help="typical video, KB")
    parser.add_argument("--small-n", type=int, default=50, help="videos of the typical size")
    parser.add_argument("--large-mb", type=float, default=20.0, help="large video, MB")
    parser.add_argument("--large-n", type=int, default=8, help="videos of the large size")
    parser.add_argument("--inventory", type=int, default=10_000, help="videos to list")
    parser.add_argument("--memory-mb", type=int, default=200, help="0 skips the memory run")
    parser.add_argument("--json-out", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    document = measure(args)
    if args.json_out:
        args.json_out.write_text(json.dumps(document, indent=2) + "\n")
    print(markdown(document))
    return 0


if __name__ == "__main__":
    sys.exit(main())
