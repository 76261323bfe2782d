"""Decide, reproducibly, when to inject each fault.

Each kind has its own seeded random stream and its own counter, so enabling one fault
does not shift when another fires, and a test that sets `first=N` knows exactly which
requests fail.
"""

from __future__ import annotations

import random

from runner.sandbox.config import FAULT_KINDS, SandboxConfig


class FaultDice:
    """Roll for faults under the current config."""

    def __init__(self, config: SandboxConfig) -> None:
        self._config = config
        self._rngs = {kind: random.Random(f"{config.seed}:{kind}") for kind in FAULT_KINDS}
        self._seen = dict.fromkeys(FAULT_KINDS, 0)

    def reconfigure(self, config: SandboxConfig, reset: set[str]) -> None:
        """Adopt a new config; restart the `first N` count of the kinds in `reset`."""
        if config.seed != self._config.seed:
            self._rngs = {kind: random.Random(f"{config.seed}:{kind}") for kind in FAULT_KINDS}
            reset = set(FAULT_KINDS)
        self._config = config
        for kind in reset:
            self._seen[kind] = 0

    def fires(self, kind: str) -> bool:
        """Count one event eligible for `kind` and tell whether the fault hits it."""
        spec = self._config.fault(kind)
        self._seen[kind] += 1
        if self._seen[kind] <= spec.first:
            return True
        # Always draw, so the stream does not depend on whether the rate is zero.
        return self._rngs[kind].random() < spec.rate

    def choose(self, kind: str, options: tuple[int, ...]) -> int:
        """Pick one of `options` from the kind's random stream (e.g. which 5xx)."""
        return self._rngs[kind].choice(options)
