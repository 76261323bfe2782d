"""Time as an injectable dependency, so tests never really wait.

The engine, the poll scheduler, the retry policy and the sandbox take a `Clock`. The
real one reads the system clocks and sleeps; `FakeClock` advances only when someone
sleeps on it, so a test of a 10-minute deadline finishes in milliseconds; `VirtualClock`
does the same for many concurrent sleepers (engine tests, the polling benchmark).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import heapq
import time
from collections.abc import Coroutine
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Clock(Protocol):
    """What the runner needs to know about time."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (for durations and deadlines)."""
        ...

    def wall(self) -> float:
        """Seconds since the epoch (for timestamps written to files)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` (or pretend to)."""
        ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class FakeClock:
    """A clock for tests: `sleep` advances time instantly instead of waiting."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self._now = start
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds

    async def sleep(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        self.slept.append(seconds)
        self._now += seconds
        await asyncio.sleep(0)  # let other tasks run, as a real sleep would


class VirtualClock:
    """Virtual time for many concurrent sleepers: idle waits are skipped, not summed.

    `FakeClock` advances by every sleep it is given, so four workers each sleeping 10 s
    move it 40 s. Here a sleeper waits for virtual time to reach its wake
    time, and a driver jumps to the earliest wake time only once the loop is quiet: no
    thread job (probe, fsync, image read) running and ready tasks flushed. Start the
    work with `clock.run(coro)` so thread jobs go through the counting executor.
    """

    def __init__(self, start: float = 1_000_000.0) -> None:
        self._now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = 0
        self._driver: asyncio.Task[None] | None = None
        self._jobs: list[asyncio.Future[Any]] = []
        self._handed = 0  # jobs handed to threads so far
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._now

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` in a fresh loop whose thread jobs this clock can see."""
        clock = self

        async def main() -> T:
            loop = asyncio.get_running_loop()
            loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(max_workers=4))
            hand_off = loop.run_in_executor

            def counted(executor: Any, fn: Any, *args: Any) -> asyncio.Future[Any]:
                # The loop's side of the job: done only once the loop has taken the
                # thread's result. The thread's own future is done a moment earlier,
                # before it hands the result over, and time must not jump in between.
                job = hand_off(executor, fn, *args)
                clock._jobs.append(job)
                clock._handed += 1
                return job

            loop.run_in_executor = counted  # type: ignore[method-assign,assignment]
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
            handed = self._handed
            for _ in range(50):  # flush callbacks: thread results, then the tasks they wake
                await asyncio.sleep(0)
            # A job handed over during the flush may be done already, and the task it
            # wakes not yet run: flush again rather than let time jump past that task.
            if self._handed == handed and not any(not job.done() for job in self._jobs):
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
