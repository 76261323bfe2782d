"""Backoff with full jitter, and the server's `Retry-After` in its three forms.

A retry policy answers one question: after the `attempt`-th refusal (0-based), wait how
long, or stop? The server's own wish wins when it states one (`retry-after-ms`, then
`Retry-After` as seconds or an HTTP date), up to a cap; a wish longer than the cap is a
quota (Runway's daily cap answers 429 with hours to wait), and the caller stops that
provider's submissions instead of parking coroutines for hours.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime


def parse_retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Return the seconds the server asks us to wait, or None when it asks nothing.

    `now` is the wall clock (epoch seconds), used for the HTTP-date form. A date in the
    past means "now" (0 s). Unparseable values are ignored rather than trusted.
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    millis = lowered.get("retry-after-ms")
    if millis is not None:
        seconds = _non_negative_float(millis)
        if seconds is not None:
            return seconds / 1000.0
    value = lowered.get("retry-after")
    if value is None:
        return None
    seconds = _non_negative_float(value)
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; an offset-less one is read as such
        return None
    return max(0.0, when.timestamp() - now)


def _non_negative_float(text: str) -> float | None:
    try:
        number = float(text.strip())
    except ValueError:
        return None
    if not math.isfinite(number) or number < 0:
        return None
    return number


@dataclass(frozen=True, slots=True)
class Wait:
    """Try again after `seconds`."""

    seconds: float


@dataclass(frozen=True, slots=True)
class GiveUp:
    """Stop retrying this call: the attempts are spent."""

    attempts: int


@dataclass(frozen=True, slots=True)
class Quota:
    """The server asked for a wait longer than the cap: stop calling this provider."""

    seconds: float


Decision = Wait | GiveUp | Quota


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded attempts, a cap on server waits."""

    base: float = 1.0  # first backoff ceiling, seconds
    max_backoff: float = 60.0  # no computed wait exceeds this
    max_attempts: int = 8  # refusals tolerated before giving up on one call
    retry_after_cap: float = 300.0  # a Retry-After above this is a quota, not a hiccup

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Return a full-jitter wait for the `attempt`-th retry: uniform in [0, ceiling]."""
        # 2**attempt overflows float for absurd attempts; cap the exponent first.
        ceiling = min(self.max_backoff, self.base * 2.0 ** min(attempt, 62))
        return rng.uniform(0.0, ceiling)

    def decide(self, attempt: int, retry_after: float | None, rng: random.Random) -> Decision:
        """Decide what to do after the `attempt`-th refusal (0-based)."""
        if retry_after is not None and retry_after > self.retry_after_cap:
            return Quota(retry_after)
        if attempt + 1 >= self.max_attempts:
            return GiveUp(attempt + 1)
        if retry_after is not None:
            # Honour the server's wish; a little jitter on top keeps a fleet of waiting
            # coroutines from stampeding back at the same instant.
            return Wait(retry_after + rng.uniform(0.0, min(1.0, 0.1 * retry_after)))
        return Wait(self.backoff(attempt, rng))
