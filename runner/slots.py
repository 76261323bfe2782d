"""Generation slots: `--concurrency` bounds generations in flight, not downloads.

A slot is taken before a request's POST (or before polling a recorded generation) and
given back the moment the provider answers that the generation ended. Downloading,
probing and recording its video happen after, outside the slot, so the next request is
submitted while the last one's file is still arriving: a provider's concurrency tier
counts generations, and a slot held through a download leaves one of them idle.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class Slot:
    """One held slot; `release()` gives it back once, however often it is called."""

    def __init__(self, semaphore: asyncio.Semaphore) -> None:
        self._semaphore: asyncio.Semaphore | None = semaphore

    def release(self) -> None:
        """Give the slot back (the generation ended); later calls do nothing."""
        if self._semaphore is not None:
            self._semaphore.release()
            self._semaphore = None


class Slots:
    """`limit` generation slots, handed out first come, first served."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            msg = f"at least one slot is needed, got {limit}"
            raise ValueError(msg)
        self._semaphore = asyncio.Semaphore(limit)

    @asynccontextmanager
    async def held(self) -> AsyncIterator[Slot]:
        """Wait for a slot and hold it until the block ends or it is released early."""
        await self._semaphore.acquire()
        slot = Slot(self._semaphore)
        try:
            yield slot
        finally:
            slot.release()
