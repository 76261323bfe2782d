"""Building a large plan without the cyclic garbage collector rescanning it.

Expanding a 100,000-request spec allocates millions of containers (bodies, matrices,
requests, plan entries) that all stay alive. Each allocation burst triggers a collection,
and the oldest generation's collections walk everything built so far, again and again:
counted with `gc.callbacks` over `runner plan --json` of the issue-15 grid (100,000
requests; `python -m benchmarks.gc_bench`), 1,274 collections took 0.81 s of a 5 s plan
and found next to nothing; paused, one takes 0.03 s. Reference counting still frees every
temporary the moment it is dropped; only reference cycles wait, and the collector takes
them as soon as the block ends.
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
