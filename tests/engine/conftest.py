"""Fixtures for the engine tests: a fast clock, hand-built specs, a sandbox.

The network guard covers the whole suite (tests/conftest.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from runner.engine import RunOptions, RunSummary, execute
from runner.polling import PollSettings
from runner.progress import SilentReporter
from runner.request import LocalImage, Request
from runner.retry import RetryPolicy
from runner.sandbox import RunningSandbox, SandboxConfig, start_in_thread

# --------------------------------------------------------------------------- builders
ENDPOINT = "/v2/generate/video/runway/generation"


class FastClock:
    """Real time, run `factor` times faster: a 1 s Retry-After takes 1/factor s.

    The engine's waits stay honest (they really yield to the event loop while a real
    sandbox works in its thread) but a test never waits the seconds it reasons about.
    """

    def __init__(self, factor: float = 50.0) -> None:
        self.factor = factor
        self._mono0 = time.monotonic()
        self._wall0 = time.time()
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self._mono0 + (time.monotonic() - self._mono0) * self.factor

    def wall(self) -> float:
        return self._wall0 + (time.monotonic() - self._mono0) * self.factor

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        await asyncio.sleep(max(0.0, seconds) / self.factor)


@dataclass(frozen=True)
class FakeSpec:
    """A loaded spec, built by hand (the engine needs only these fields)."""

    name: str
    display: str
    requests: tuple[Request, ...]
    images: Mapping[str, LocalImage] = field(default_factory=dict)
    budget: float | None = None  # the spec's `budget:` (USD)


def make_image(
    folder: Path, name: str = "mountain.png", size: tuple[int, int] = (64, 36)
) -> LocalImage:
    """Write a real PNG and return it as the spec layer would."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    image = Image.new("RGB", size)
    for x in range(size[0]):
        for y in range(size[1]):
            image.putpixel((x, y), (x * 4 % 256, y * 7 % 256, (x + y) % 256))
    image.save(path)
    data = path.read_bytes()
    return LocalImage(
        sha256=hashlib.sha256(data).hexdigest(),
        path=path,
        mime="image/png",
        width=size[0],
        height=size[1],
        size=len(data),
    )


def make_request(
    image: LocalImage,
    seed: int,
    *,
    ratio: str = "16:9",
    spec_name: str = "sweep",
    provider: str = "sandbox",
    prompt: str = "A slow push toward the mountain",
) -> Request:
    """Build one request the way the spec layer would, with a content-derived id."""
    body = {
        "model": "runway/gen4_turbo",
        "image_url": image.ref,
        "prompt": prompt,
        "ratio": ratio,
        "duration": 5,
        "seed": seed,
    }
    identity = json.dumps(
        {"provider": provider, "model": body["model"], "endpoint": ENDPOINT, "body": body},
        sort_keys=True,
        separators=(",", ":"),
    )
    return Request(
        id=hashlib.sha256(identity.encode()).hexdigest()[:16],
        spec=f"specs/{spec_name}.yaml",
        spec_name=spec_name,
        job="default",
        provider=provider,
        model="runway/gen4_turbo",
        endpoint=ENDPOINT,
        body=body,
        output=f"{ratio.replace(':', 'x')}/seed-{seed}.mp4",
        matrix={"seed": seed, "ratio": ratio},
        seed_derived=False,
    )


def make_spec(tmp_path: Path, seeds: Sequence[int], name: str = "sweep", **kwargs: str) -> FakeSpec:
    """A spec of one image and one request per seed."""
    image = make_image(tmp_path / "images")
    requests = tuple(make_request(image, s, spec_name=name, **kwargs) for s in seeds)
    return FakeSpec(name, f"specs/{name}.yaml", requests, {image.sha256: image})


FAST_POLL = PollSettings(floor=0.5, ceiling=5.0, timeout=600.0)
FAST_RETRY = RetryPolicy(base=0.5, max_backoff=5.0, max_attempts=8, retry_after_cap=300.0)


@pytest.fixture
def fast_clock() -> FastClock:
    """A clock 50x faster than real time."""
    return FastClock(50.0)


@pytest.fixture
def spec_factory(tmp_path: Path) -> Callable[..., FakeSpec]:
    """Build hand-made specs under the test's tmp folder."""

    def build(seeds: Sequence[int], name: str = "sweep", **kwargs: str) -> FakeSpec:
        return make_spec(tmp_path, seeds, name, **kwargs)

    return build


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    """A real sandbox (in a thread, over loopback HTTP) with tiny latency and small clips."""
    with start_in_thread(SandboxConfig(latency=0.05, jitter=0.02, scale=8, fps=4)) as running:
        yield running


def run_on_sandbox(
    spec: FakeSpec,
    sandbox: RunningSandbox,
    tmp_path: Path,
    clock: FastClock | None = None,
    **options: Any,
) -> RunSummary:
    """Run every request of `spec` against `sandbox` with fast polls and retries."""
    opts = RunOptions(
        output_dir=tmp_path / "outputs",
        base_url=sandbox.base_url,
        poll=options.pop("poll", FAST_POLL),
        retry=options.pop("retry", FAST_RETRY),
        seed=0,
        **options,
    )
    return asyncio.run(
        execute(
            [(spec, list(spec.requests))],
            opts,
            clock=clock or FastClock(50.0),
            reporter=SilentReporter(),
        )
    )


def folder_of(spec: FakeSpec, tmp_path: Path) -> Path:
    """Return where a run puts `spec`'s outputs: sandbox specs under outputs/_sandbox/."""
    from runner.layout import spec_folder

    sandbox = all(r.provider == "sandbox" for r in spec.requests)
    return spec_folder(tmp_path / "outputs", spec.name, sandbox=sandbox)
