"""The adaptive poll scheduler: poll near the expected completion, not every 10 s.

The schedule of one generation comes from a distribution of generation times (from
submission to the poll that saw it done) for its model, in this order:

1. this run's own durations of the model, once there are `MIN_OBSERVED` of them (the
   most recent `RECENT`);
2. before that, those few together with the model's prior (`runner.priors`): the
   provider's published latency percentiles (`GET /models/metrics`), read once at the
   start of the run, and the durations earlier runs recorded for the model — so the
   first wave, submitted before anything has finished, is already polled on schedule;
3. with neither, a cold start: the floor, then 1.5x longer each poll, until the first
   generation of the model finishes.

From the distribution: `typical` is its median, `early` its 5th percentile, and the
polls of one generation are `gap = GAP x typical` apart (at least the floor). The first
poll is at `early + gap` — almost nothing is done before `early`, and whatever finishes
between the two is seen within one gap — and the next ones follow every `gap` up to the
95th percentile, past which a straggler is polled half as often as it is overdue. A
generation that ends at a uniformly random moment between two polls is seen `gap / 2`
late on average: with GAP = 0.08 that is 4% of its generation time, while a tight
distribution (a model that takes 4 s ± 10%) needs one or two polls. Every wait gets
±`jitter` so a batch does not poll in lock-step, lies within [floor, ceiling] — except
the first, which may sleep up to the distribution's early edge, since polling before
the earliest expected completion only costs a request — and never passes the deadline.

What a finished generation adds to the distribution: the midpoint between the last
poll that saw it running and the one that saw it done, when those were close; when its
first poll already saw it done, or the last one that saw it running was long before
(a cold-start poll), a time `CENSORED` gaps before the poll that saw it done (it ended
at some unknown moment before; taking the poll time itself would move each next first
poll one gap later, and a wide bracket's midpoint would move it far too early).

At the benchmarks' scale (L = 4 s +-10 %, floor 0.31 s, i.e. Runway's 5 s scaled by
4/65) the gap is 0.32 s: the first poll comes ~3.9 s after submission, the next ones
0.32 s apart, so a generation is polled 1-3 times and seen ~0.16 s after it ends.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

RECENT = 256  # durations remembered per model: enough for a stable quantile, cheap to sort
MIN_OBSERVED = 5  # from this many of its own durations on, a run ignores the prior
GAP = 0.08  # polls of one generation this fraction of the typical duration apart
EARLY, LATE = 0.05, 0.95  # the quantiles where the usual window begins and ends
PRECISE = 0.25  # a duration bracketed this tightly (a fraction of it) is kept as history
CENSORED = 1.5  # gaps before its first poll that a generation already done then is taken


@dataclass(frozen=True, slots=True)
class PollSettings:
    """Bounds of the poll schedule."""

    floor: float = 5.0  # never poll one generation more often (Runway asks for >= 5 s)
    ceiling: float = 60.0  # never leave one generation unpolled longer between two polls
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
    """Decide when to poll each running generation, from its model's prior and the batch.

    `kind` names the model (None: one pool for everything, as before models had priors);
    `priors` holds, per kind, durations known before the run (see the module docstring).
    """

    def __init__(
        self,
        settings: PollSettings,
        rng: random.Random | None = None,
        priors: Mapping[str, Iterable[float]] | None = None,
    ) -> None:
        if settings.floor <= 0 or settings.ceiling < settings.floor:
            msg = f"poll bounds must satisfy 0 < floor <= ceiling, got {settings}"
            raise ValueError(msg)
        self.settings = settings
        self._rng = rng or random.Random()
        self._durations: dict[str | None, deque[float]] = {}
        self._precise: dict[str | None, deque[float]] = {}
        self._priors = {
            kind: sorted(d for d in values if d >= 0 and math.isfinite(d))[-RECENT:]
            for kind, values in (priors or {}).items()
        }
        self._cache: dict[str | None, tuple[float, float, float] | None] = {}

    def add_prior(self, kind: str, durations: Iterable[float]) -> None:
        """Add durations known from elsewhere (metrics arriving after the run started)."""
        kept = [d for d in durations if d >= 0 and math.isfinite(d)]
        if kept:
            self._priors[kind] = sorted([*self._priors.get(kind, []), *kept])[-RECENT:]
            self._cache.pop(kind, None)

    def observe(
        self,
        duration: float,
        kind: str | None = None,
        running_at: float | None = None,
        *,
        censored: bool = False,
    ) -> None:
        """Record how long a finished generation took (submission to seen done).

        `running_at`, when given, is when a poll last saw it running: it ended in between,
        so the midpoint is taken. `censored`: no poll saw it running, so it ended at some
        moment before `duration`; on a schedule it is taken as `CENSORED` gaps earlier —
        recorded at the poll itself, the earliest time on record could never lie before
        the first poll, and each first poll would land one gap later than the last. A
        time known that well (or seen done by a first poll made on schedule) also goes
        into `learned()`, the history later runs start from; one bracketed by cold-start
        polls far apart does not.
        """
        if not (duration >= 0 and math.isfinite(duration)):
            return
        window = self._window(kind)
        gap = max(GAP * window[1], self.settings.floor) if window is not None else 0.0
        if running_at is not None and 0 <= running_at <= duration:
            precise = duration - running_at <= PRECISE * duration
            if precise or window is None:
                duration = (running_at + duration) / 2
            else:
                # A wide bracket (last seen running long before: a cold-start poll made
                # before the prior arrived) says no more than a first poll that found it
                # done; its midpoint would pull the early edge, and every first poll after
                # it, far too soon (6 polls a generation from the second wave on).
                duration = max(duration - CENSORED * gap, running_at)
        else:
            precise = window is not None
            if censored and window is not None:
                duration = max(duration - CENSORED * gap, 0.0)
        self._durations.setdefault(kind, deque(maxlen=RECENT)).append(duration)
        if precise:
            self._precise.setdefault(kind, deque(maxlen=RECENT)).append(duration)
        self._cache.pop(kind, None)

    @property
    def observed(self) -> int:
        """How many durations this run has learned from (bounded by RECENT per model)."""
        return sum(len(d) for d in self._durations.values())

    def learned(self) -> dict[str | None, list[float]]:
        """Return this run's well-known durations per kind (the next run's history)."""
        return {kind: list(values) for kind, values in self._precise.items()}

    def has_prior(self, kind: str | None) -> bool:
        """Whether `kind` starts from a prior rather than cold."""
        return bool(self._priors.get(kind)) if kind is not None else False

    def expected(self, kind: str | None = None) -> float | None:
        """Return the typical generation time of `kind`, or None before anything is known."""
        window = self._window(kind)
        return None if window is None else window[1]

    def next_delay(self, elapsed: float, polls: int, kind: str | None = None) -> float:
        """Return seconds to wait before polling a generation submitted `elapsed` s ago.

        `polls` is how many times this generation has been polled already.
        """
        s = self.settings
        remaining = s.timeout - elapsed
        if remaining <= 0:
            return 0.0
        window = self._window(kind)
        delay, longest = self._raw_delay(window, elapsed, polls)
        delay *= 1.0 + self._rng.uniform(-s.jitter, s.jitter)
        delay = min(max(delay, s.floor), longest)
        # Poll once more right at the deadline rather than sleeping past it.
        return min(delay, remaining)

    def _window(self, kind: str | None) -> tuple[float, float, float] | None:
        """Return (first poll, typical, late edge) of `kind`'s distribution, or None."""
        if kind in self._cache:
            return self._cache[kind]
        own = list(self._durations.get(kind, ()))
        prior = self._priors.get(kind, []) if kind is not None else []
        samples = own if len(own) >= MIN_OBSERVED else own + prior
        window = None
        if samples:
            ordered = sorted(samples)
            typical = quantile(ordered, 0.5)
            gap = max(GAP * typical, self.settings.floor)
            window = (quantile(ordered, EARLY) + gap, typical, quantile(ordered, LATE))
        self._cache[kind] = window
        return window

    def _raw_delay(
        self, window: tuple[float, float, float] | None, elapsed: float, polls: int
    ) -> tuple[float, float]:
        """Return the wait before jitter and bounds, and the longest wait allowed."""
        s = self.settings
        if window is None:
            # Nothing known yet: floor, then back off by 1.5x per poll.
            return s.floor * 1.5 ** min(polls, 20), s.ceiling
        first, typical, late = window
        gap = max(GAP * typical, s.floor)
        if elapsed < first - s.floor / 2:
            # Almost nothing finishes this fast: sleep straight to the first poll.
            wait = first - elapsed
            return wait, max(s.ceiling, wait) if polls == 0 else s.ceiling
        if elapsed <= late:
            return gap, s.ceiling
        # Past the usual window: a straggler may take long; slow down geometrically.
        return max(gap, (elapsed - late) / 2.0), s.ceiling
