"""How much the gallery costs at the end of a run: first build vs. rebuild with posters.

    python benchmarks/gallery_bench.py [--requests 1000] [--repeat 5]

Records N finished requests (seed × ratio) in a real manifest, each pointing to a real
H.264 MP4 (copies of one 160x90, 5 s clip, the sandbox's default size), then times:
`gallery_for` the first time (decodes every video for its poster), a rebuild when every
poster exists (what every later run pays), and the page's size.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import statistics
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from runner.gallery import gallery_for
from runner.manifest import Manifest
from runner.request import Request

RATIOS = ("16:9", "9:16", "1:1", "4:3")


def make_clip(path: Path, width: int = 160, height: int = 90, fps: int = 8) -> None:
    """Encode a 5 s H.264 clip like the sandbox's."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = Fraction(1, fps)
        for i in range(5 * fps):
            pixels = np.full((height, width, 3), (i * 6) % 256, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def populate(folder: Path, count: int) -> None:
    """Record `count` done requests, each with its own copy of a real clip."""
    clip = folder.parent / "clip.mp4"
    make_clip(clip)
    digest = hashlib.sha256(clip.read_bytes()).hexdigest()
    with Manifest.open(folder) as manifest, manifest.group():
        for n in range(count):
            ratio, seed = RATIOS[n % len(RATIOS)], n // len(RATIOS)
            output = f"{ratio.replace(':', 'x')}/seed-{seed}.mp4"
            (folder / output).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(clip, folder / output)
            body = {"model": "runway/gen4_turbo", "prompt": f"shot {n}", "ratio": ratio,
                    "duration": 5, "seed": seed}
            request = Request(f"{n:016x}", "specs/bench.yaml", folder.name, "default",
                              "sandbox", "runway/gen4_turbo", "/v2/x", body, output,
                              {"seed": seed, "ratio": ratio}, False)
            manifest.record_submitting(request)
            manifest.record_submitted(request.id, f"g{n}")
            manifest.record_downloaded(
                request.id, output=output, size=clip.stat().st_size, sha256=digest,
                mtime_ns=(folder / output).stat().st_mtime_ns,
                video={"duration": 5.0, "width": 160, "height": 90, "codec": "h264"},
                download_seconds=0.0,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "bench"
        populate(folder, args.requests)
        start = time.perf_counter()
        page = gallery_for(folder)
        first = time.perf_counter() - start
        rebuilds = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            gallery_for(folder)
            rebuilds.append(time.perf_counter() - start)
        posters = list((folder / ".posters").iterdir())
        print(f"requests: {args.requests}")
        print(f"first build (decode {len(posters)} posters): {first:.2f} s "
              f"({first / args.requests * 1000:.1f} ms per video)")
        print(f"rebuild, posters present: median {statistics.median(rebuilds) * 1000:.0f} ms "
              f"(min {min(rebuilds) * 1000:.0f}, max {max(rebuilds) * 1000:.0f}) "
              f"over {args.repeat} runs")
        print(f"index.html: {page.stat().st_size / 1024:.0f} KiB; posters: "
              f"{sum(p.stat().st_size for p in posters) / len(posters) / 1024:.1f} KiB each")


if __name__ == "__main__":
    main()
