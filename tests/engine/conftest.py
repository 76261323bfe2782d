"""Fixtures for the engine tests: a network guard, a fast clock, hand-built specs."""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import heapq
import ipaddress
import json
import socket
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from PIL import Image

from runner.polling import PollSettings
from runner.request import LocalImage, Request
from runner.retry import RetryPolicy


def _is_loopback(address: Any) -> bool:
    if isinstance(address, str | bytes):  # AF_UNIX paths
        return True
    host = address[0] if isinstance(address, tuple) else ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Refuse every connection that would leave the machine."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def guarded_connect(self: socket.socket, address: Any) -> None:
        if not _is_loopback(address):
            msg = f"test tried to reach the network: {address!r}"
            raise ConnectionRefusedError(msg)
        real_connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: Any) -> int:
        if not _is_loopback(address):
            msg = f"test tried to reach the network: {address!r}"
            raise ConnectionRefusedError(msg)
        return real_connect_ex(self, address)

    real_getaddrinfo = socket.getaddrinfo

    def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name is not None and not _is_loopback((name,)):
            msg = f"test tried to resolve a network name: {name!r}"
            raise OSError(msg)
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)
    yield


# --------------------------------------------------------------------------- builders
ENDPOINT = "/v2/generate/video/runway/generation"
T = TypeVar("T")


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


class VirtualClock:
    """Virtual time for many concurrent sleepers: idle waits are skipped, not summed.

    `runner.clock.FakeClock` advances by every sleep it is given, so four workers each
    sleeping 10 s move it 40 s. Here a sleeper waits for virtual time to reach its wake
    time, and a driver jumps to the earliest wake time only once the loop is quiet: no
    thread job (probe, fsync, image read) running and ready tasks flushed. Start the
    work with `clock.run(coro)` so thread jobs go through the counting executor.
    """

    def __init__(self, start: float = 1_000_000.0) -> None:
        self._now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = 0
        self._driver: asyncio.Task[None] | None = None
        self._jobs: list[concurrent.futures.Future[Any]] = []
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._now

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` in a fresh loop whose thread jobs this clock can see."""
        clock = self

        class Counting(concurrent.futures.ThreadPoolExecutor):
            def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
                job = super().submit(fn, *args, **kwargs)
                clock._jobs.append(job)
                return job

        async def main() -> T:
            asyncio.get_running_loop().set_default_executor(Counting(max_workers=4))
            return await coro

        return asyncio.run(main())

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._seq += 1
        heapq.heappush(self._sleepers, (self._now + max(0.0, seconds), self._seq, future))
        if self._driver is None or self._driver.done():
            self._driver = loop.create_task(self._drive())
        await future

    async def _quiet(self) -> None:
        """Wait until no thread job runs and the tasks they woke have run too."""
        while True:
            self._jobs = [job for job in self._jobs if not job.done()]
            if self._jobs:
                await asyncio.sleep(0.0005)
                continue
            for _ in range(50):  # flush callbacks: thread results, then the tasks they wake
                await asyncio.sleep(0)
            if not any(not job.done() for job in self._jobs):
                return

    async def _drive(self) -> None:
        while self._sleepers:
            await self._quiet()
            while self._sleepers and self._sleepers[0][2].done():  # cancelled sleepers
                heapq.heappop(self._sleepers)
            if not self._sleepers:
                return
            self._now = max(self._now, self._sleepers[0][0])
            while self._sleepers and self._sleepers[0][0] <= self._now:
                _, _, future = heapq.heappop(self._sleepers)
                if not future.done():
                    future.set_result(None)


@dataclass(frozen=True)
class FakeSpec:
    """A loaded spec, built by hand (the engine needs only these fields)."""

    name: str
    display: str
    requests: tuple[Request, ...]
    images: Mapping[str, LocalImage] = field(default_factory=dict)


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
