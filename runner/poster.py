"""Poster frames: one JPEG per video, taken from the video itself with PyAV.

The gallery shows a poster for every video so a reviewer sees the batch at a glance
without the browser downloading a single MP4 (`preload="none"`). Posters are files under
`outputs/<name>/.posters/<id>.jpg`, not data URIs: a gallery of a thousand videos stays a
small HTML file, the browser loads posters lazily and caches them, and regenerating the
gallery skips every poster that is newer than its video.
"""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import av
from PIL import Image

from runner.durable import storage_error, write_atomic

POSTER_DIR = ".posters"  # hidden, so it never collides with an output path template
POSTER_WIDTH = 480  # px: sharp in a grid cell, ~20-40 KB per JPEG
POSTER_AT = 1.0  # seconds in: past the first frame (which is just the input image)


def poster_path(folder: Path, request_id: str) -> Path:
    """Return where the poster of request `request_id` lives in an output folder."""
    return folder / POSTER_DIR / f"{request_id}.jpg"


def ensure_poster(video: Path, poster: Path) -> bool:
    """Write `poster` from `video` unless it is already newer; return whether one exists.

    Returns False (and writes nothing) when the video is missing or cannot be decoded:
    the gallery then shows the cell without a poster instead of failing the run.
    """
    try:
        video_mtime = video.stat().st_mtime_ns
    except FileNotFoundError:
        return False
    try:
        if poster.stat().st_mtime_ns >= video_mtime:
            return True
    except FileNotFoundError:
        pass
    image = _frame_near(video, POSTER_AT)
    if image is None:
        return False
    _save_jpeg(_shrink(image, POSTER_WIDTH), poster)
    return True


def _frame_near(video: Path, seconds: float) -> Image.Image | None:
    """Decode frames up to `seconds` (or the last one) and return it as an image."""
    try:
        with av.open(str(video)) as container:
            if not container.streams.video:
                return None
            stream = container.streams.video[0]
            # Decoding from the start is exact and cheap for a 1 s target; seeking
            # would land on the previous keyframe anyway.
            base = stream.time_base or Fraction(1, 1)
            last: av.VideoFrame | None = None
            for frame in container.decode(stream):
                last = frame  # converted once, below: not every frame on the way
                if frame.pts is not None and float(frame.pts * base) >= seconds:
                    break
            return None if last is None else Image.fromarray(last.to_ndarray(format="rgb24"))
    except (av.error.FFmpegError, OSError):
        return None


def _shrink(image: Image.Image, width: int) -> Image.Image:
    """Return `image` scaled down to `width` pixels wide, keeping its aspect ratio."""
    if image.width <= width:
        return image.convert("RGB")
    height = max(1, round(image.height * width / image.width))
    return image.convert("RGB").resize((width, height), Image.Resampling.BILINEAR)


def _save_jpeg(image: Image.Image, poster: Path) -> None:
    """Write `image` to `poster` atomically (a crash never leaves half a JPEG)."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=82, optimize=True)
    try:
        poster.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise storage_error(exc, poster.parent) from exc
    write_atomic(poster, buffer.getvalue())
