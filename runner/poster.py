"""Poster frames: one JPEG per video, taken from the video itself with PyAV, and one
small JPEG per input image.

The gallery shows a poster for every video so a reviewer sees the batch at a glance
without the browser downloading a single MP4 (`preload="none"`). Posters are files under
`outputs/<name>/.posters/<id>.jpg`, not data URIs: a gallery of a thousand videos stays a
small HTML file, the browser loads posters lazily and caches them, and regenerating the
gallery skips every poster that is newer than its video.

Input images are copied in small, as `.posters/input-<sha256>.jpg`, rather than linked
where the spec keeps them: the gallery folder then works on its own as a CI artifact,
the name is the image's recorded content hash (so a later edit of the spec's image never
shows a picture the videos were not made from, and one image used by a hundred requests
is one file), and a thumbnail made once stays valid for good.
"""

from __future__ import annotations

import hashlib
import io
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from runner.durable import storage_error, write_atomic
from runner.probe import NotAVideo, probe_frame

if TYPE_CHECKING:
    import av
    from av.video.reformatter import VideoReformatter

POSTER_DIR = ".posters"  # hidden, so it never collides with an output path template
POSTER_WIDTH = 480  # px: sharp in a grid cell, ~20-40 KB per JPEG
POSTER_AT = 1.0  # seconds in: past the first frame (which is just the input image)
INPUT_WIDTH = 320  # px: an input thumbnail is shown small, beside its video
INPUT_PREFIX = "input-"

_local = threading.local()


def poster_path(folder: Path, request_id: str) -> Path:
    """Return where the poster of request `request_id` lives in an output folder."""
    return folder / POSTER_DIR / f"{request_id}.jpg"


def input_thumb_path(folder: Path, sha256_hex: str) -> Path:
    """Return where the thumbnail of the input image with this content hash lives."""
    return folder / POSTER_DIR / f"{INPUT_PREFIX}{sha256_hex}.jpg"


def ensure_input_thumb(source: Path, sha256_hex: str, thumb: Path) -> bool:
    """Write `thumb` from the image `source` unless it exists; return whether one exists.

    The image must still hash to `sha256_hex` (what the requests were made from); when it
    is gone, changed or unreadable, nothing is written and False is returned.
    """
    if thumb.exists():
        return True  # named by content: an existing thumbnail is never stale
    try:
        data = source.read_bytes()
    except OSError:
        return False
    if hashlib.sha256(data).hexdigest() != sha256_hex:
        return False
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.thumbnail((INPUT_WIDTH, INPUT_WIDTH * 4))
            buffer = io.BytesIO()
            image.convert("RGB").save(buffer, format="JPEG", quality=80, optimize=True)
    except (OSError, ValueError, Image.DecompressionBombError):
        return False  # not an image Pillow can read (a spec check would have said so)
    save_poster(buffer.getvalue(), thumb)
    return True


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
    frame = _frame_near(video, POSTER_AT)
    if frame is None:
        return False
    write_poster(frame, poster)
    return True


def write_poster(frame: av.VideoFrame, poster: Path) -> None:
    """Write `frame`, scaled down to `POSTER_WIDTH`, as the JPEG `poster` (atomically)."""
    save_poster(poster_jpeg(frame), poster)


def poster_jpeg(frame: av.VideoFrame) -> bytes:
    """Return `frame` scaled down to `POSTER_WIDTH` wide, as JPEG bytes."""
    width, height = frame.width, frame.height
    if width > POSTER_WIDTH:
        width, height = POSTER_WIDTH, max(1, round(height * POSTER_WIDTH / width))
    # One swscale pass converts and scales; the thread's reformatter keeps its context
    # between posters (building one costs more than converting a small frame).
    rgb = _reformatter().reformat(
        frame, width=width, height=height, format="rgb24", interpolation="BILINEAR"
    )
    buffer = io.BytesIO()
    Image.fromarray(rgb.to_ndarray()).save(buffer, format="JPEG", quality=82, optimize=True)
    return buffer.getvalue()


def warm_up() -> None:
    """Load what the first video's probe and poster would load (FFmpeg, numpy, the JPEG
    encoder: 0.2–0.5 s of CPU) by making the poster of a tiny blank frame.

    A run calls it in a worker thread while its first generations are still being made,
    so that CPU is spent while the run only waits, not when 40 videos arrive at once and
    the next wave is being submitted.
    """
    import av  # as in runner.probe: only runs that download videos load FFmpeg

    poster_jpeg(av.VideoFrame(16, 16, "yuv420p"))


def save_poster(data: bytes, poster: Path) -> None:
    """Write the JPEG `data` to `poster` atomically (a crash never leaves half a JPEG)."""
    try:
        poster.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise storage_error(exc, poster.parent) from exc
    write_atomic(poster, data)


def _reformatter() -> VideoReformatter:
    """Return this thread's reformatter (one is not safe to share between threads)."""
    formatter: VideoReformatter | None = getattr(_local, "reformatter", None)
    if formatter is None:
        from av.video.reformatter import VideoReformatter  # with the first video (probe)

        formatter = _local.reformatter = VideoReformatter()
    return formatter


def _frame_near(video: Path, seconds: float) -> av.VideoFrame | None:
    """Return the frame at `seconds` (or the last one), or None if it is not a video."""
    try:
        return probe_frame(video, seconds)[1]
    except (NotAVideo, OSError):
        return None
