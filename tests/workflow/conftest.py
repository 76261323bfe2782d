"""Fixtures for the workflow tests: real MP4 files made with PyAV, and output folders."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from PIL import Image

from runner.engine import RunOptions, RunSummary, execute
from runner.manifest import Manifest
from runner.polling import PollSettings
from runner.request import LocalImage, Request
from runner.sandbox import FaultSpec, RunningSandbox, SandboxConfig, start_in_thread

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


ENDPOINT = "/v2/generate/video/runway/generation"


@dataclass(frozen=True)
class HandSpec:
    """A loaded spec built by hand: what `runner.engine.execute` needs."""

    name: str
    display: str
    requests: tuple[Request, ...]
    images: Mapping[str, LocalImage]
    budget: float | None = None  # the spec's `budget:` (USD)


def write_png(path: Path, size: tuple[int, int] = (96, 54), shade: int = 0) -> LocalImage:
    """Write a real PNG (a gradient) and return it as the spec layer would."""
    path.parent.mkdir(parents=True, exist_ok=True)
    xs = np.linspace(0, 255, size[0], dtype=np.uint8)
    pixels = np.zeros((size[1], size[0], 3), dtype=np.uint8)
    pixels[..., 0] = xs[None, :]
    pixels[..., 1] = np.linspace(0, 255, size[1], dtype=np.uint8)[:, None]
    pixels[..., 2] = shade
    Image.fromarray(pixels).save(path)
    data = path.read_bytes()
    return LocalImage(hashlib.sha256(data).hexdigest(), path, "image/png", size[0], size[1],
                      len(data))


def hand_spec(root: Path, combos: Sequence[Mapping[str, Any]], name: str = "sweep",
              prompt: str = "A slow push toward the mountain") -> HandSpec:
    """Return a sandbox spec with one request per matrix combination (seed, ratio)."""
    image = write_png(root / "images" / "mountain.png")
    requests = []
    for combo in combos:
        body = {"model": "runway/gen4_turbo", "image_url": image.ref, "prompt": prompt,
                "ratio": combo["ratio"], "duration": 5, "seed": combo["seed"]}
        identity = json.dumps({"provider": "sandbox", "model": body["model"],
                               "endpoint": ENDPOINT, "body": body},
                              sort_keys=True, separators=(",", ":"))
        requests.append(Request(
            id=hashlib.sha256(identity.encode()).hexdigest()[:16],
            spec=f"specs/{name}.yaml", spec_name=name, job="default", provider="sandbox",
            model="runway/gen4_turbo", endpoint=ENDPOINT, body=body,
            output=f"{str(combo['ratio']).replace(':', 'x')}/seed-{combo['seed']}.mp4",
            matrix=dict(combo), seed_derived=False,
        ))
    return HandSpec(name, f"specs/{name}.yaml", tuple(requests), {image.sha256: image})


def run_on_sandbox(spec: HandSpec, output_dir: Path, sandbox: RunningSandbox) -> RunSummary:
    """Run `spec` through the real engine against a running sandbox, polling briskly."""
    options = RunOptions(output_dir=output_dir, concurrency=4,
                         poll=PollSettings(floor=0.01, ceiling=0.1))
    return asyncio.run(execute([(spec, list(spec.requests))], options,
                               sandbox_url=sandbox.base_url))


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    """A real sandbox server on loopback that answers at once (no latency)."""
    with start_in_thread(SandboxConfig(latency=0.0, jitter=0.0)) as running:
        yield running


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Work in tmp_path, as a user in their repository would (relative paths)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


SWEEP = [{"seed": s, "ratio": r} for s in (1, 2) for r in ("16:9", "9:16")] + [
    {"seed": 3, "ratio": "16:9"}]


def sandbox_gallery_folder(tmp_path: Path) -> Path:
    """Run a 5-request sweep on a real sandbox whose first generation fails; return its folder."""
    spec = hand_spec(tmp_path, SWEEP)
    faults = {"failed_generation": FaultSpec(first=1)}
    with start_in_thread(SandboxConfig(latency=0.0, jitter=0.0, faults=faults)) as running:
        summary = run_on_sandbox(spec, tmp_path / "outputs", running)
    assert [r.outcome for r in summary.reports].count("failed") == 1
    return tmp_path / "outputs" / "_sandbox" / spec.name  # sandbox runs keep their own tree
