"""Measure the manifest: append cost per event against batch size, and load time.

    python benchmarks/manifest_bench.py [--dir DIR] [--appends N]

For 100, 10,000 and 100,000 requests it writes a manifest holding each request's full
history (submitting, submitted, completed, downloaded: 4 lines per request), opens it,
then times `--appends` single durable appends (write + fsync each) and the same number
grouped into one fsync. The per-event cost must not grow with the batch. It also times
`read_state` (no lock) and `Manifest.open` (lock + load) of the 10,000-request manifest.
Run it on the disk you care about (`--dir`); fsync cost is the disk's, not ours.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from runner.manifest import Manifest, read_state
from runner.request import Request


def request(n: int) -> Request:
    """A realistic request: the body of a runway/gen4_turbo generation."""
    return Request(
        id=f"{n:016x}",
        spec="specs/sweep.yaml",
        spec_name="sweep",
        job="default",
        provider="aimlapi",
        model="runway/gen4_turbo",
        endpoint="/v2/generate/video/runway/generation",
        body={
            "model": "runway/gen4_turbo",
            "image_url": "sha256:" + "ab" * 32,
            "prompt": "A menacing evil dragon rushes toward the camera, cinematic lighting",
            "ratio": "16:9",
            "duration": 5,
            "seed": n,
        },
        output=f"16x9/seed-{n}.mp4",
        matrix={"seed": n, "ratio": "16:9"},
        seed_derived=False,
    )


def fill(folder: Path, requests: int) -> None:
    """Write every request's whole history, grouped so filling is quick."""
    with Manifest.open(folder) as m:
        for start in range(0, requests, 1000):
            for n in range(start, min(requests, start + 1000)):
                m.record_submitting(request(n))  # flushes on its own: that is its contract
            with m.group():
                for n in range(start, min(requests, start + 1000)):
                    rid = f"{n:016x}"
                    m.record_submitted(rid, f"gen-{n}")
                    m.record_completed(rid)
                    m.record_downloaded(
                        rid,
                        output=f"16x9/seed-{n}.mp4",
                        size=2_000_000 + n,
                        sha256="0" * 64,
                        mtime_ns=1_700_000_000_000_000_000 + n,
                        video={"duration": 5.0, "width": 1280, "height": 720, "codec": "h264"},
                        download_seconds=0.8,
                    )


def time_appends(folder: Path, appends: int) -> tuple[float, float]:
    """Return (median µs per durable append, µs per event when grouped)."""
    with Manifest.open(folder) as m:
        ids = list(m.state)[:appends]
        single = []
        for rid in ids:
            t0 = time.perf_counter()
            m.record_verified(rid, 1)
            single.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        with m.group():
            for rid in ids:
                m.record_verified(rid, 2)
        grouped = (time.perf_counter() - t0) / len(ids)
    return statistics.median(single) * 1e6, grouped * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: /tmp)")
    parser.add_argument("--appends", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp)
        print(f"{'requests':>9} {'lines':>7} {'MiB':>6} {'append µs':>10} {'grouped µs/ev':>14}")
        for requests in (100, 10_000, 100_000):
            folder = root / f"n{requests}"
            fill(folder, requests)
            size = (folder / "manifest.jsonl").stat().st_size
            single, grouped = time_appends(folder, args.appends)
            print(
                f"{requests:>9} {requests * 4:>7} {size / 2**20:>6.1f} {single:>10.0f} "
                f"{grouped:>14.1f}"
            )
        folder = root / "n10000"
        runs = []
        for _ in range(5):
            t0 = time.perf_counter()
            state = read_state(folder)
            runs.append(time.perf_counter() - t0)
        assert len(state) == 10_000
        print(f"read_state of 10,000 requests: {min(runs) * 1e3:.0f} ms (best of 5)")
        t0 = time.perf_counter()
        Manifest.open(folder, compact=False).close()
        print(f"Manifest.open of 10,000 requests: {(time.perf_counter() - t0) * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
