"""Fixtures for the workflow tests: real MP4 files made with PyAV, and output folders."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from runner.manifest import Manifest
from runner.request import Request

MakeVideo = Callable[..., Path]


def write_mp4(path: Path, width: int = 160, height: int = 90, seconds: float = 2.0,
              fps: int = 12, hue: int = 0) -> Path:
    """Encode a real H.264 MP4: a coloured gradient that slides, so frames differ."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = Fraction(1, fps)
        xs = np.arange(width, dtype=np.uint16)
        for i in range(round(seconds * fps)):
            img = np.zeros((height, width, 3), dtype=np.uint8)
            img[..., 0] = ((xs + i * 8 + hue) % 256).astype(np.uint8)
            img[..., 1] = (hue * 3) % 256
            img[..., 2] = np.linspace(0, 255, height, dtype=np.uint8)[:, None]
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_sidecar(folder: Path, output: str, fields: Mapping[str, Any]) -> Path:
    """Write the sidecar of `output` as docs/ARCHITECTURE.md shapes it, with `fields` over it."""
    video = folder / output
    data: dict[str, Any] = {
        "runner_version": "0.1.0",
        "id": "0" * 16,
        "spec": "specs/test.yaml",
        "spec_name": folder.name,
        "job": "default",
        "provider": "sandbox",
        "model": "runway/gen4_turbo",
        "endpoint": "/v2/generate/video/runway/generation",
        "payload": {"model": "runway/gen4_turbo", "image_url": "sha256:ab", "prompt": "p",
                    "ratio": "16:9", "duration": 5, "seed": 1},
        "images": {},
        "seed": 1,
        "seed_derived": False,
        "matrix": {},
        "generation_id": "gen-1",
        "output": output,
        "timings": {},
        "size": video.stat().st_size if video.exists() else 0,
        "sha256": hashlib.sha256(video.read_bytes()).hexdigest() if video.exists() else "",
        "video": {"duration": 2.0, "width": 160, "height": 90, "codec": "h264"},
        "reproduction_of": None,
    }
    data.update(fields)
    sidecar = video.with_suffix(".json")
    sidecar.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return sidecar


@pytest.fixture
def make_video(tmp_path: Path) -> MakeVideo:
    """Return a function writing a real MP4 under tmp_path/<relative path>."""

    def make(relative: str, **kwargs: Any) -> Path:
        return write_mp4(tmp_path / relative, **kwargs)

    return make


def make_request(
    spec_name: str,
    matrix: Mapping[str, Any],
    *,
    prompt: str = "A dragon rushes toward the camera",
    job: str = "default",
    output: str | None = None,
) -> Request:
    """Return a Request shaped like the spec layer's, with a content-derived id."""
    seed = int(matrix.get("seed", 7))
    ratio = str(matrix.get("ratio", "16:9"))
    body = {"model": "runway/gen4_turbo", "image_url": "sha256:" + "ab" * 32,
            "prompt": prompt, "duration": int(matrix.get("duration", 5)),
            "ratio": ratio, "seed": seed}
    rid = hashlib.sha256(
        json.dumps({"job": job, "body": body, "m": dict(matrix)}, sort_keys=True).encode()
    ).hexdigest()[:16]
    return Request(
        id=rid, spec=f"specs/{spec_name}.yaml", spec_name=spec_name, job=job,
        provider="sandbox", model="runway/gen4_turbo",
        endpoint="/v2/generate/video/runway/generation", body=body,
        output=output or f"{ratio.replace(':', 'x')}/seed-{seed}.mp4",
        matrix=dict(matrix), seed_derived=False,
    )


def record_done(manifest: Manifest, request: Request, folder: Path, **video: Any) -> Path:
    """Write a real MP4 for `request` and record it in `manifest` as downloaded."""
    path = write_mp4(folder / request.output, **video)
    manifest.record_submitting(request)
    manifest.record_submitted(request.id, f"gen-{request.id}")
    manifest.record_completed(request.id)
    manifest.record_downloaded(
        request.id, output=request.output, size=path.stat().st_size,
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(), mtime_ns=path.stat().st_mtime_ns,
        video={"duration": 2.0, "width": video.get("width", 160),
               "height": video.get("height", 90), "codec": "h264"},
        download_seconds=0.1,
    )
    return path


def record_failed(manifest: Manifest, request: Request, reason: str) -> None:
    """Record `request` as submitted and then failed by the API with `reason`."""
    manifest.record_submitting(request)
    manifest.record_submitted(request.id, f"gen-{request.id}")
    manifest.record_failed(request.id, reason, stage="generate", retryable=False)


def sandbox_gallery_folder(tmp_path: Path) -> Path:
    """Return an output folder with 4 finished videos (seed × ratio) and 1 failure."""
    folder = tmp_path / "outputs" / "sweep"
    with Manifest.open(folder) as manifest:
        for seed in (1, 2):
            for ratio, size in (("16:9", (160, 90)), ("9:16", (90, 160))):
                request = make_request("sweep", {"seed": seed, "ratio": ratio})
                record_done(manifest, request, folder, width=size[0], height=size[1],
                            hue=seed * 70)
        record_failed(manifest, make_request("sweep", {"seed": 3, "ratio": "16:9"}),
                      "the provider refused the prompt")
    return folder
