"""What the gallery costs for N videos: building it, and opening it in Chromium.

    python benchmarks/gallery_bench.py [--requests 1000] [--repeat 5] [--loads 5]

Records N finished requests (seed × ratio, one input image) in a real manifest, each
pointing to a real H.264 MP4 (copies of one 160x90, 5 s clip, the sandbox's default size)
with its sidecar, then times:

- the first build (`gallery_for` decodes every video for its poster and thumbnails the
  input image) and a rebuild when every poster exists (what each later run pays);
- opening the page in headless Chromium at 1280×900 from a loopback HTTP server, cache
  off, `--loads` times: DOMContentLoaded, the page's script ready (`gallery-ready`),
  the load event, the first screen's posters received, and the largest contentful paint;
  and how many posters were fetched by then (lazy loading fetches the first screens only);
- the same page with a `<video preload="none" poster=…>` per cell instead of the lazy
  `<img>` (what the page did before), to show why it builds no video element up front.

Prints one line per figure. Nothing here is a test: tests/bench only checks it runs.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image

from runner.gallery import gallery_for
from runner.manifest import Manifest, read_state
from runner.request import Request
from runner.sidecar import sidecar_for, write_sidecar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the browser tests' DevTools driver

from workflow.browser import open_page, served  # noqa: E402

RATIOS = ("16:9", "9:16", "1:1", "4:3")
WIDTH, HEIGHT = 1280, 900
TIMINGS_JS = """new Promise(done => {
  const nav = performance.getEntriesByType('navigation')[0];
  const ready = performance.getEntriesByName('gallery-ready')[0];
  const inView = [...document.querySelectorAll('img.poster, video[poster]')].filter(e => {
    const r = e.getBoundingClientRect(); return r.bottom > 0 && r.top < innerHeight; });
  const urls = new Set(inView.map(e => e.tagName === 'IMG' ? e.src : e.poster));
  const posters = () => performance.getEntriesByType('resource')
    .filter(r => r.name.includes('/.posters/') && !r.name.includes('/input-'));
  const measure = (lcp) => {
    // Lazy images do not hold up the load event: wait until the first screen's arrived.
    const first = posters().filter(r => urls.has(r.name));
    if (first.length < urls.size) return requestAnimationFrame(() => measure(lcp));
    done({
      dcl: nav.domContentLoadedEventEnd, load: nav.loadEventEnd,
      ready: ready ? ready.startTime : null,
      first_posters: first.length ? Math.max(...first.map(r => r.responseEnd)) : null,
      lcp: lcp ? lcp.startTime : null,
      fetched: posters().length, in_view: inView.length,
      elements: document.getElementsByTagName('*').length,
      videos: document.querySelectorAll('video').length,
    });
  };
  new PerformanceObserver(list => measure(list.getEntries().at(-1)))
    .observe({type: 'largest-contentful-paint', buffered: true});
})"""


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
    """Record `count` done requests from one input image, each with its own clip and sidecar."""
    clip = folder.parent / "clip.mp4"
    make_clip(clip)
    digest = hashlib.sha256(clip.read_bytes()).hexdigest()
    image = folder.parent / "mountain.png"
    Image.fromarray(np.linspace(0, 255, 640 * 360 * 3, dtype=np.uint8).reshape(360, 640, 3)
                    ).save(image)
    image_ref = "sha256:" + hashlib.sha256(image.read_bytes()).hexdigest()
    with Manifest.open(folder) as manifest, manifest.group():
        for n in range(count):
            ratio, seed = RATIOS[n % len(RATIOS)], n // len(RATIOS)
            output = f"{ratio.replace(':', 'x')}/seed-{seed}.mp4"
            (folder / output).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(clip, folder / output)
            body = {"model": "runway/gen4_turbo", "image_url": image_ref,
                    "prompt": f"shot {n}", "ratio": ratio, "duration": 5, "seed": seed}
            request = Request(f"{n:016x}", "specs/bench.yaml", folder.name, "default",
                              "sandbox", "runway/gen4_turbo", "/v2/x", body, output,
                              {"seed": seed, "ratio": ratio}, False)
            manifest.record_submitting(request, {image_ref: str(image)})
            manifest.record_submitted(request.id, f"g{n}")
            manifest.record_downloaded(
                request.id, output=output, size=clip.stat().st_size, sha256=digest,
                mtime_ns=(folder / output).stat().st_mtime_ns,
                video={"duration": 5.0, "width": 160, "height": 90, "codec": "h264"},
                download_seconds=0.0,
            )
    states = read_state(folder)
    for state in states.values():
        write_sidecar(folder / (state.output or ""), sidecar_for(state))


def video_variant(page: str) -> str:
    """Return the page with a `<video preload=none poster>` per cell instead of a lazy img."""
    pattern = re.compile(r'<a class="play" href="([^"]+)"[^>]*><img class="poster" src="([^"]+)"'
                         r'[^>]*></a>')
    return pattern.sub(r'<video controls preload="none" src="\1" poster="\2"></video>', page)


async def page_loads(url: str, loads: int, trace: Path | None) -> list[dict[str, Any]]:
    """Open `url` `loads` times with the cache off; return the page's timings each time."""
    results = []
    async with open_page(width=WIDTH, height=HEIGHT, trace=trace) as page:
        await page.send("Network.setCacheDisabled", cacheDisabled=True)
        for _ in range(loads):
            await page.goto("about:blank")
            await page.goto(url)
            results.append(await page.evaluate(TIMINGS_JS))
        if page.log.problems():
            raise SystemExit(f"the page logged errors: {page.log.problems()[:3]}")
    return results


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def report(name: str, runs: list[dict[str, Any]]) -> None:
    """Print the median of each timing over the loads, and what was fetched."""
    def median(key: str) -> str:
        values = [r[key] for r in runs if r[key] is not None]
        return f"{statistics.median(values):.0f} ms" if values else "n/a"

    last = runs[-1]
    print(f"{name}: DOMContentLoaded {median('dcl')}, script ready {median('ready')}, "
          f"load {median('load')}, first-screen posters {median('first_posters')}, "
          f"LCP {median('lcp')} (median of {len(runs)} cold loads)")
    print(f"{name}: {last['fetched']} posters fetched for {last['in_view']} in view; "
          f"{last['elements']} elements, {last['videos']} <video>")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5, help="rebuilds to time")
    parser.add_argument("--loads", type=int, default=5, help="page loads to time")
    parser.add_argument("--trace-dir", type=Path,
                        help="run Chromium under strace, one trace per page here (slower)")
    args = parser.parse_args()
    traces = {name: args.trace_dir / f"{name}.trace" if args.trace_dir else None
              for name in ("page", "variant")}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "bench"
        populate(folder, args.requests)
        first = timed(lambda: gallery_for(folder))
        rebuilds = [timed(lambda: gallery_for(folder)) for _ in range(args.repeat)]
        page = folder / "index.html"
        posters = [p for p in (folder / ".posters").iterdir() if not p.name.startswith("input-")]
        print(f"requests: {args.requests}")
        print(f"first build (decode {len(posters)} posters, 1 input thumbnail): {first:.2f} s "
              f"({first / args.requests * 1000:.1f} ms per video)")
        print(f"rebuild, posters present: median {statistics.median(rebuilds) * 1000:.0f} ms "
              f"(min {min(rebuilds) * 1000:.0f}, max {max(rebuilds) * 1000:.0f}) "
              f"over {args.repeat} runs")
        print(f"index.html: {page.stat().st_size / 1024:.0f} KiB; posters: "
              f"{sum(p.stat().st_size for p in posters) / len(posters) / 1024:.1f} KiB each")
        (folder / "videos.html").write_text(video_variant(page.read_text(encoding="utf-8")),
                                            encoding="utf-8")
        with served(folder) as origin:
            report("page (lazy <img> posters)",
                   asyncio.run(page_loads(f"{origin}/index.html", args.loads, traces["page"])))
            report("variant (<video preload=none poster>)",
                   asyncio.run(page_loads(f"{origin}/videos.html", args.loads,
                                          traces["variant"])))


if __name__ == "__main__":
    main()
