"""Time as an injectable dependency, so tests never really wait.

The engine, the poll scheduler, the retry policy and the sandbox take a `Clock`. The
real one reads the system clocks and sleeps; `FakeClock` advances only when someone
sleeps on it, so a test of a 10-minute deadline finishes in milliseconds.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


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
