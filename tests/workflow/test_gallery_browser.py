"""The gallery in a real headless Chromium: it renders, every poster loads, no errors."""

from __future__ import annotations

import asyncio
import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.gallery import gallery_for

from .browser import open_page
from .conftest import sandbox_gallery_folder

POSTERS_JS = """
Promise.all([...document.querySelectorAll('video')].map(v => new Promise(done => {
  const img = new Image();
  img.onload = () => done({poster: v.poster, width: img.naturalWidth});
  img.onerror = () => done({poster: v.poster, width: 0});
  img.src = v.poster;
})))
"""
LAYOUT_JS = """({
  figures: document.querySelectorAll('figure').length,
  tables: document.querySelectorAll('table').length,
  failed: [...document.querySelectorAll('figure.st-failed')].map(f => f.innerText),
  invisible: [...document.querySelectorAll('figure')].filter(
    f => f.getBoundingClientRect().width < 50 || f.getBoundingClientRect().height < 50).length,
  preload: [...document.querySelectorAll('video')].map(v => v.preload),
})"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib's name
        """Keep pytest's output clean."""


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """Serve a gallery of a real sandbox run from a loopback HTTP server."""
    folder = sandbox_gallery_folder(tmp_path)
    gallery_for(folder)
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", folder
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


async def inspect(url: str) -> tuple[dict[str, Any], list[dict[str, Any]], Any]:
    """Load the page in headless Chromium; return layout facts, poster sizes and its log."""
    async with open_page() as page:
        await page.goto(url)
        layout = await page.evaluate(LAYOUT_JS)
        posters = await page.evaluate(POSTERS_JS)
        return layout, posters, page.log


@pytest.mark.browser
def test_gallery_renders_with_every_poster_and_no_errors(served: tuple[str, Path]) -> None:
    """Chromium lays out every request, decodes every poster, logs no error, fetches no MP4."""
    origin, folder = served
    layout, posters, log = asyncio.run(inspect(f"{origin}/index.html"))
    assert log.problems() == []
    assert layout["figures"] == 5 and layout["tables"] == 1 and layout["invisible"] == 0
    assert len(layout["failed"]) == 1 and "generation error" in layout["failed"][0]
    assert len(posters) == 4 and set(layout["preload"]) == {"none"}
    assert all(p["width"] > 0 and p["poster"].startswith(f"{origin}/.posters/") for p in posters)
    fetched = [u for u in log.requested_urls if not u.startswith("data:")]
    assert all(u.startswith(origin + "/") for u in fetched), "a request left the gallery"
    assert {p["poster"] for p in posters} <= set(fetched)  # loaded by the page itself
    assert not any(u.endswith(".mp4") for u in fetched)  # preload="none" is honoured


@pytest.mark.browser
def test_gallery_works_from_a_file_url(served: tuple[str, Path]) -> None:
    """Opened from disk (a downloaded CI artifact), the page renders every poster, no errors."""
    _, folder = served
    layout, posters, log = asyncio.run(inspect((folder / "index.html").resolve().as_uri()))
    assert log.problems() == []
    assert layout["figures"] == 5 and len(posters) == 4
    assert all(p["width"] > 0 and p["poster"].startswith("file://") for p in posters)
