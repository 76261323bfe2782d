"""The adaptive poll scheduler: poll near the expected completion, not every 10 s.

The batch teaches the schedule. Every finished generation reports how long it took
(from submission to the poll that saw it done); the scheduler keeps the most recent of
those durations and, for a request submitted `elapsed` seconds ago, sleeps until a low
quantile of them (most generations are not done before it), then polls at a pace set by
the spread of the durations, slowing down geometrically for stragglers. Until anything
has finished it starts at the floor and backs off. Every delay stays within
[floor, ceiling], gets a little jitter so a batch does not poll in lock-step, and never
overshoots the request's deadline.
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass

RECENT = 256  # durations remembered: enough for a stable quantile, cheap to sort


@dataclass(frozen=True, slots=True)
class PollSettings:
    """Bounds of the poll schedule."""

    floor: float = 5.0  # never poll one generation more often (Runway asks for >= 5 s)
    ceiling: float = 60.0  # never leave one generation unpolled longer
    timeout: float = 1800.0  # per-request deadline, seconds after submission
    jitter: float = 0.1  # +/- this fraction on every delay


def quantile(sorted_values: list[float], q: float) -> float:
    """Return the q-quantile (0..1) of already sorted values, interpolating linearly."""
    if not sorted_values:
        msg = "quantile of no values"
        raise ValueError(msg)
    position = q * (len(sorted_values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    fraction = position - low
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * fraction


class PollScheduler:
    """Decide when to poll each running generation, learning from the batch."""

    def __init__(self, settings: PollSettings, rng: random.Random | None = None) -> None:
        if settings.floor <= 0 or settings.ceiling < settings.floor:
            msg = f"poll bounds must satisfy 0 < floor <= ceiling, got {settings}"
            raise ValueError(msg)
        self.settings = settings
        self._rng = rng or random.Random()
        self._durations: deque[float] = deque(maxlen=RECENT)

    def observe(self, duration: float) -> None:
        """Record how long a finished generation took (submission to seen done)."""
        if duration >= 0 and math.isfinite(duration):
            self._durations.append(duration)

    @property
    def observed(self) -> int:
        """How many durations the schedule has learned from (bounded by RECENT)."""
        return len(self._durations)

    def expected(self) -> float | None:
        """Return the median generation time seen so far, or None before any finished."""
        if not self._durations:
            return None
        return quantile(sorted(self._durations), 0.5)

    def next_delay(self, elapsed: float, polls: int) -> float:
        """Return seconds to wait before polling a generation submitted `elapsed` s ago.

        `polls` is how many times this generation has been polled already.
        """
        s = self.settings
        remaining = s.timeout - elapsed
        if remaining <= 0:
            return 0.0
        delay = self._raw_delay(elapsed, polls)
        delay *= 1.0 + self._rng.uniform(-s.jitter, s.jitter)
        delay = min(max(delay, s.floor), s.ceiling)
        # Poll once more right at the deadline rather than sleeping past it.
        return min(delay, remaining)

    def _raw_delay(self, elapsed: float, polls: int) -> float:
        s = self.settings
        if not self._durations:
            # Nothing learned yet: floor, then back off by 1.5x per poll.
            return s.floor * 1.5 ** min(polls, 20)
        ordered = sorted(self._durations)
        early = quantile(ordered, 0.1)
        late = quantile(ordered, 0.9)
        if elapsed < early:
            # Almost nothing finishes this fast: sleep straight to the early edge.
            return early - elapsed
        # Inside the usual window, poll at a pace set by its width (a tight batch gets
        # polled tightly); past it, slow down geometrically: a straggler may take long.
        step = max((late - early) / 4.0, s.floor)
        if elapsed <= late:
            return step
        overdue = elapsed - late
        return max(step, overdue / 2.0)
