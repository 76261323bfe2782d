"""The virtual clock the engine tests run on: time jumps only when the loop is quiet.

Tests of ordering ("the next request goes out while the last video downloads") are only
as sound as this: a jump while work is still on its way makes them flaky, not wrong.
"""

from __future__ import annotations

import asyncio

from runner.clock import VirtualClock


def test_time_does_not_jump_while_a_chain_of_thread_jobs_is_on_its_way() -> None:
    """A task doing 300 quick thread jobs in a row (fsyncs, probes) finishes them all at
    the same virtual instant: a sleeper 100 s away is not woken in between, even when a
    job is handed over and done within one quiet check."""
    clock = VirtualClock()
    order: list[str] = []

    async def chain() -> float:
        for _ in range(300):
            await asyncio.to_thread(int)
        order.append("chain")
        return clock.monotonic()

    async def sleeper() -> None:
        await clock.sleep(100)
        order.append("sleeper")

    async def scenario() -> float:
        finished, _ = await asyncio.gather(chain(), sleeper())
        return finished

    start = clock.monotonic()
    assert clock.run(scenario()) == start
    assert order == ["chain", "sleeper"]
    assert clock.monotonic() == start + 100
