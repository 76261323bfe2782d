"""Building a large plan without the cyclic garbage collector rescanning it.

Expanding a 100,000-request spec allocates millions of containers (bodies, matrices,
requests, plan entries) that all stay alive. Each allocation burst triggers a collection,
and the oldest generation's collections walk everything built so far, again and again:
measured on the issue-15 grid (`benchmarks/run_bench.py --only 6`), a fifth of the plan's
wall time went to finding no garbage at all. Reference counting still frees every
temporary the moment it is dropped; only reference cycles wait, and the collector takes
them as soon as the phase ends.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for the block (nested blocks keep it paused)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
