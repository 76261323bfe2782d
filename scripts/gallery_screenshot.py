"""Run the sweep example on the sandbox and screenshot its gallery into docs/gallery.png.

    python scripts/gallery_screenshot.py [--spec specs/sweep.yaml] [--out docs/gallery.png]

Runs `runner run --sandbox` in a subprocess (the real CLI, into a temporary output
folder, so outputs/ is left alone), serves the spec's output folder from a loopback
HTTP server, loads `index.html` in headless Chromium and saves a full-page PNG. It uses
the same DevTools driver as the gallery's browser test, and refuses to write the
picture if the page logged an error or a poster failed to load.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import http.server
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the browser test's DevTools driver

from workflow.browser import open_page  # noqa: E402

POSTERS_LOADED = """
Promise.all([...document.querySelectorAll('video')].map(v => new Promise(done => {
  const img = new Image();
  img.onload = () => done(img.naturalWidth);
  img.onerror = () => done(0);
  img.src = v.poster;
})))
"""


SETTLE_SECONDS = 5.0


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib's name
        """Keep the terminal for the script's own lines."""


def run_sweep(spec: Path, output_dir: Path) -> Path:
    """Run `spec` on the embedded sandbox with the real CLI; return its output folder."""
    command = [sys.executable, "-m", "runner", "run", "--sandbox", str(spec),
               "--output-dir", str(output_dir)]
    subprocess.run(command, check=True, cwd=ROOT)
    (folder,) = [p for p in output_dir.iterdir() if (p / "index.html").is_file()]
    return folder


async def screenshot(url: str, out: Path, width: int) -> None:
    """Load `url` in headless Chromium, check it, and save a full-page PNG to `out`."""
    async with open_page(width=width) as page:
        await page.goto(url)
        widths = await page.evaluate(POSTERS_LOADED)
        if log := page.log.problems():
            raise SystemExit(f"the gallery logged errors: {log}")
        if not widths or min(widths) == 0:
            raise SystemExit(f"a poster did not load: {widths}")
        # Chromium's media controls flash a loading spinner over an unplayed video for a
        # moment after load; a person never sees it, so neither should the picture.
        await asyncio.sleep(SETTLE_SECONDS)
        await page.screenshot(out, width=width)
    print(f"wrote {out} ({len(widths)} videos with posters)")


def main() -> None:
    """Parse the flags, run, serve, screenshot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=ROOT / "specs" / "sweep.yaml")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "gallery.png")
    parser.add_argument("--width", type=int, default=1280)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="runner-gallery-") as tmp:
        folder = run_sweep(args.spec.resolve(), Path(tmp))
        handler = functools.partial(_Quiet, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            url = f"http://127.0.0.1:{server.server_address[1]}/index.html"
            asyncio.run(screenshot(url, args.out.resolve(), args.width))
        finally:
            server.shutdown()
            server.server_close()


if __name__ == "__main__":
    main()
