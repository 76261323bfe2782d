"""Run the sweep example on the sandbox and screenshot its gallery into docs/gallery.png.

    python scripts/gallery_screenshot.py [--spec specs/sweep.yaml] [--out docs/gallery.png]

Runs `runner run --sandbox` in a subprocess (the real CLI, into a temporary output
folder, so outputs/ is left alone), serves the spec's output folder from a loopback
HTTP server, loads `index.html` in headless Chromium at 1280 px and saves a full-page
PNG. It uses the same DevTools driver as the gallery's browser tests (loopback only),
and refuses to write the picture if the page logged an error, a poster or input image
failed to load, or the page scrolls sideways.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the browser tests' DevTools driver

from workflow.browser import open_page, served  # noqa: E402

from runner.layout import spec_folder  # noqa: E402
from runner.spec import load_specs  # noqa: E402

IMAGES_LOADED = """
Promise.all([...document.querySelectorAll('img.poster, a.input img')].map(
  i => i.decode().then(() => i.naturalWidth, () => 0)))
"""
OVERFLOW = "document.documentElement.scrollWidth - window.innerWidth"


def run_sweep(spec: Path, output_dir: Path) -> Path:
    """Run `spec` on the embedded sandbox with the real CLI; return its output folder."""
    command = [sys.executable, "-m", "runner", "run", "--sandbox", str(spec),
               "--output-dir", str(output_dir)]
    subprocess.run(command, check=True, cwd=ROOT)
    (loaded,) = load_specs([spec])
    return spec_folder(output_dir, loaded.name, sandbox=True)


async def screenshot(url: str, out: Path, width: int) -> None:
    """Load `url` in headless Chromium, check it, and save a full-page PNG to `out`."""
    async with open_page(width=width) as page:
        await page.goto(url)
        if await page.evaluate(OVERFLOW) > 0:
            raise SystemExit("the gallery scrolls sideways")
        await page.screenshot(out, width=width)  # the whole page: every lazy image loads
        widths = await page.evaluate(IMAGES_LOADED)
        if log := page.log.problems():
            raise SystemExit(f"the gallery logged errors: {log}")
        if not widths or min(widths) == 0:
            raise SystemExit(f"an image did not load: {widths}")
    print(f"wrote {out} ({len(widths)} posters and input images)")


def main() -> None:
    """Parse the flags, run, serve, screenshot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=ROOT / "specs" / "sweep.yaml")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "gallery.png")
    parser.add_argument("--width", type=int, default=1280)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="runner-gallery-") as tmp:
        folder = run_sweep(args.spec.resolve(), Path(tmp))
        with served(folder) as origin:
            asyncio.run(screenshot(f"{origin}/index.html", args.out.resolve(), args.width))


if __name__ == "__main__":
    main()
