"""Render the sandbox's videos: real H.264 MP4s animated from the first frame.

A clip is the first-frame image under a slow camera move (zoom or pan) chosen from the
model, prompt and seed, at the model's documented output size divided by the scale
factor. The bytes are a pure function of the `RenderJob`: colour conversion is integer
numpy, libx264 runs single-threaded without its macroblock tree (which made one job's
bytes vary now and then) and the muxer is bit-exact, so identical requests give identical
files and another seed gives another file.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

import av
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps

RenderMode = Literal["full", "cheap"]

SOURCE_OVERSAMPLE = 2  # the source is kept at twice the output size so zooms stay sharp
SOURCE_LIMIT = 4096  # px per side of a decoded input: twice the widest output (1584) and more
MOVES = ("zoom_in", "zoom_out", "pan_left", "pan_right", "pan_up", "pan_down", "drift")


class RenderError(Exception):
    """Raised when an input image cannot be decoded into frames."""


@dataclass(frozen=True, slots=True)
class RenderJob:
    """Everything that decides a clip's bytes."""

    model: str
    width: int
    height: int
    fps: int
    duration: int  # seconds
    seed: int
    prompt: str
    image_sha256: str  # of `image`, or of the https URL when rendering a placeholder
    image: bytes | None  # encoded first frame; None renders a generated placeholder
    last_image: bytes | None = None  # optional last frame (gen3a_turbo), cross-faded in
    mode: RenderMode = "full"

    def key(self) -> str:
        """Return the content key the render cache files this clip under."""
        if self.mode == "cheap":
            # One clip per size and length: benchmarks must never wait on the renderer.
            parts: list[object] = ["cheap", self.width, self.height, self.fps, self.duration]
        else:
            last = hashlib.sha256(self.last_image).hexdigest() if self.last_image else None
            parts = [
                "full", self.model, self.width, self.height, self.fps, self.duration,
                self.seed, self.prompt, self.image_sha256, self.image is None, last,
            ]
        blob = json.dumps(parts, separators=(",", ":"), ensure_ascii=False).encode()
        return hashlib.sha256(blob).hexdigest()


@dataclass(frozen=True, slots=True)
class CameraMove:
    """A camera move: view centre (0..1 of the frame) and zoom (>= 1) at start and end."""

    name: str
    start: tuple[float, float, float]
    end: tuple[float, float, float]


def output_size(size: tuple[int, int], scale: int) -> tuple[int, int]:
    """Divide a documented output size by `scale`, keeping both sides even (yuv420p)."""
    width, height = size
    return max(2, round(width / scale / 2) * 2), max(2, round(height / scale / 2) * 2)


def camera_move(model: str, prompt: str, seed: int) -> CameraMove:
    """Choose the camera move for a request, deterministically."""
    blob = json.dumps([model, prompt, seed], ensure_ascii=False).encode()
    digest = hashlib.sha256(blob).digest()

    def u(i: int) -> float:
        return digest[i] / 255.0

    name = MOVES[digest[0] % len(MOVES)]
    zoom = 1.15 + 0.25 * u(1)
    half = 0.5 / zoom  # a view at this zoom may centre anywhere in [half, 1 - half]

    def at(x: float) -> float:
        return half + (1.0 - 2.0 * half) * x

    still = (at(u(2)), at(u(3)), zoom)
    if name == "zoom_in":
        return CameraMove(name, (0.5, 0.5, 1.0), still)
    if name == "zoom_out":
        return CameraMove(name, still, (0.5, 0.5, 1.0))
    if name in ("pan_left", "pan_right"):
        lo, hi = (at(0.0), zoom), (at(1.0), zoom)
        y = at(u(3))
        a, b = (hi, lo) if name == "pan_left" else (lo, hi)
        return CameraMove(name, (a[0], y, zoom), (b[0], y, zoom))
    if name in ("pan_up", "pan_down"):
        x = at(u(2))
        top, bottom = at(0.0), at(1.0)
        a_y, b_y = (bottom, top) if name == "pan_up" else (top, bottom)
        return CameraMove(name, (x, a_y, zoom), (x, b_y, zoom))
    corner = (at(round(u(2))), at(round(u(3))), zoom)  # drift: zoom toward a corner
    return CameraMove(name, (0.5, 0.5, 1.0), corner)


def render_clip(job: RenderJob) -> bytes:
    """Render one clip and return the MP4 bytes."""
    size = (job.width, job.height)
    source_size = (job.width * SOURCE_OVERSAMPLE, job.height * SOURCE_OVERSAMPLE)
    frames = job.fps * job.duration
    if job.mode == "cheap":
        still = _yuv420(placeholder_image("cheap", size))
        return _encode((still for _ in range(frames)), job.width, job.height, job.fps)
    if job.image is None:
        source = placeholder_image(job.image_sha256, source_size)
    else:
        source = _cover(_decode(job.image, "image_url"), source_size)
    last = _cover(_decode(job.last_image, "last_image_url"), size) if job.last_image else None
    move = camera_move(job.model, job.prompt, job.seed)
    glint = _Glint.of(job.model, job.prompt, job.seed, size)

    def generate() -> Iterator[npt.NDArray[np.uint8]]:
        for i in range(frames):
            t = i / (frames - 1) if frames > 1 else 0.0
            e = t * t * (3.0 - 2.0 * t)  # ease in and out, like a real camera
            cx, cy, zoom = (a + (b - a) * e for a, b in zip(move.start, move.end, strict=True))
            bw, bh = source.width / zoom, source.height / zoom
            # Clamp: rounding may put an edge-hugging view a hair outside the source.
            x0 = min(max(cx * source.width - bw / 2, 0.0), source.width - bw)
            y0 = min(max(cy * source.height - bh / 2, 0.0), source.height - bh)
            frame = source.resize(size, Image.Resampling.BILINEAR, box=(x0, y0, x0 + bw, y0 + bh))
            if last is not None:
                frame = Image.blend(frame, last, e)
            yield glint.over(_yuv420(frame), t)

    return _encode(generate(), job.width, job.height, job.fps)


@dataclass(frozen=True)
class _Glint:
    """A soft light that drifts across the frame along a path chosen by the seed.

    The camera move alone leaves a flat one-colour image identical under every move, so
    two seeds of such a request gave the same bytes; the glint differs by seed whatever
    the image, as another seed's video does.
    """

    start: tuple[float, float]
    end: tuple[float, float]
    radius: float
    strength: int
    width: int
    height: int

    @classmethod
    def of(cls, model: str, prompt: str, seed: int, size: tuple[int, int]) -> _Glint:
        blob = json.dumps(["glint", model, prompt, seed], ensure_ascii=False).encode()
        d = hashlib.sha256(blob).digest()
        width, height = size
        return cls(
            start=(d[0] / 255 * width, d[1] / 255 * height),
            end=(d[2] / 255 * width, d[3] / 255 * height),
            radius=max(2.0, min(width, height) * (0.08 + 0.10 * d[4] / 255)),
            strength=24 + d[5] % 40,
            width=width,
            height=height,
        )

    def over(self, plane: npt.NDArray[np.uint8], t: float) -> npt.NDArray[np.uint8]:
        """Brighten the luma of a yuv420p frame around the glint's place at time `t`."""
        cx = self.start[0] + (self.end[0] - self.start[0]) * t
        cy = self.start[1] + (self.end[1] - self.start[1]) * t
        r = self.radius
        x0, x1 = max(0, int(cx - 2 * r)), min(self.width, int(cx + 2 * r) + 1)
        y0, y1 = max(0, int(cy - 2 * r)), min(self.height, int(cy + 2 * r) + 1)
        if x0 >= x1 or y0 >= y1:
            return plane
        yy, xx = np.mgrid[y0:y1, x0:x1]
        # A cone of light (sqrt is exactly rounded, so the bytes are the same everywhere).
        dist = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
        lift = np.clip((2 * r - dist) / (2 * r) * self.strength, 0, None).astype(np.int16)
        luma = plane[y0:y1, x0:x1].astype(np.int16) + lift
        out = plane.copy()
        out[y0:y1, x0:x1] = np.clip(luma, 16, 235).astype(np.uint8)
        return out


def placeholder_image(hint: str, size: tuple[int, int]) -> Image.Image:
    """Draw a deterministic stand-in frame (gradient, checkerboard, sun) named by `hint`."""
    width, height = size
    digest = hashlib.sha256(hint.encode()).digest()
    top = np.frombuffer(digest[0:3], dtype=np.uint8).astype(np.float32)
    bottom = np.frombuffer(digest[3:6], dtype=np.uint8).astype(np.float32)
    ys = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    pixels = top * (1.0 - ys) + bottom * ys + np.zeros((1, width, 1), dtype=np.float32)
    # A checkerboard makes camera motion visible even at 160x90.
    tile = max(2, min(width, height) // 6)
    yy, xx = np.mgrid[0:height, 0:width]
    checker = ((yy // tile + xx // tile) % 2).astype(np.float32)[:, :, None]
    pixels = pixels * (0.75 + 0.25 * checker)
    # A bright disc, placed by the hint, gives the frame a subject.
    cx, cy = width * (0.25 + 0.5 * digest[6] / 255), height * (0.25 + 0.5 * digest[7] / 255)
    radius = min(width, height) * 0.18
    disc = ((xx - cx) ** 2 + (yy - cy) ** 2 <= radius**2)[:, :, None]
    pixels = np.where(disc, np.array([250.0, 220.0, 120.0], dtype=np.float32), pixels)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def _decode(data: bytes | None, field: str) -> Image.Image:
    try:
        with Image.open(io.BytesIO(data or b"")) as img:
            # Down to what a clip can use before any copy: a 9000x9000 PNG decoded, turned
            # and converted at full size took about a gigabyte.
            img.thumbnail((SOURCE_LIMIT, SOURCE_LIMIT), Image.Resampling.BILINEAR)
            return ImageOps.exif_transpose(img).convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        msg = f"{field} could not be decoded as an image: {exc}"
        raise RenderError(msg) from exc


def _cover(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Crop the centre to the target aspect ratio and resize, as the API frames inputs."""
    return ImageOps.fit(image, size, Image.Resampling.BILINEAR)


def _yuv420(image: Image.Image) -> npt.NDArray[np.uint8]:
    """Convert RGB to planar yuv420p (BT.601, limited range) with integer math only."""
    rgb = np.asarray(image, dtype=np.int32)
    height, width = rgb.shape[:2]
    r, g, b = rgb[:, :, 0], rgb[:, :, 1], rgb[:, :, 2]
    y = ((66 * r + 129 * g + 25 * b + 128) >> 8) + 16
    # Chroma from the 2x2 mean colour: a quarter of the work of converting then averaging.
    quads = rgb.reshape(height // 2, 2, width // 2, 2, 3)
    mean = (quads[:, 0, :, 0] + quads[:, 0, :, 1] + quads[:, 1, :, 0] + quads[:, 1, :, 1] + 2) >> 2
    r, g, b = mean[:, :, 0], mean[:, :, 1], mean[:, :, 2]
    u = ((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128
    v = ((112 * r - 94 * g - 18 * b + 128) >> 8) + 128
    # Limited-range formulas on 0..255 inputs stay within 16..240: no clipping needed.
    flat = np.concatenate([y.ravel(), u.ravel(), v.ravel()]).astype(np.uint8)
    return flat.reshape(height * 3 // 2, width)


def _encode(
    frames: Iterable[npt.NDArray[np.uint8]], width: int, height: int, fps: int
) -> bytes:
    buffer = io.BytesIO()
    # bitexact keeps version strings and timestamps out of the file.
    with av.open(buffer, "w", format="mp4", options={"fflags": "+bitexact"}) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.thread_count = 1  # threaded x264 may vary between runs
        stream.options = {
            "preset": "veryfast",
            "crf": "26",
            "flags": "+bitexact",
            # mbtree off: x264's macroblock-tree pass made the same frames encode to other
            # bytes now and then within one process (2–4 distinct files in 30 renders of
            # one job under pytest; with mbtree=0, 1 in 4 × 30). Single-threaded as well.
            "x264-params": "threads=1:mbtree=0",
            "g": str(fps),  # a keyframe every second: seekable in the gallery
        }
        for pts, plane in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(plane, format="yuv420p")
            frame.pts = pts
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buffer.getvalue()
