"""Unit tests of the retry policy and Retry-After parsing."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from runner.retry import GiveUp, Quota, RetryPolicy, Wait, parse_retry_after

NOW = 1_750_000_000.0


def test_retry_after_seconds() -> None:
    """A Retry-After in seconds is read as seconds."""
    assert parse_retry_after({"Retry-After": "7"}, NOW) == 7.0


def test_retry_after_ms_wins_over_seconds() -> None:
    """retry-after-ms takes precedence over Retry-After and is converted to seconds."""
    headers = {"retry-after-ms": "1500", "Retry-After": "30"}
    assert parse_retry_after(headers, NOW) == 1.5


def test_retry_after_http_date() -> None:
    """A Retry-After HTTP date becomes the seconds from now until then."""
    when = datetime.fromtimestamp(NOW + 90, tz=UTC)
    headers = {"retry-after": format_datetime(when, usegmt=True)}
    assert parse_retry_after(headers, NOW) == pytest.approx(90.0)


def test_retry_after_date_in_past_is_zero() -> None:
    """A date already past means retry now, not a negative wait."""
    when = datetime.fromtimestamp(NOW - 3600, tz=UTC)
    assert parse_retry_after({"Retry-After": format_datetime(when, usegmt=True)}, NOW) == 0.0


@pytest.mark.parametrize("value", ["soon", "-5", "nan", "", "inf"])
def test_retry_after_garbage_is_ignored(value: str) -> None:
    """Unparseable or negative Retry-After values are ignored, not trusted."""
    assert parse_retry_after({"Retry-After": value}, NOW) is None


def test_no_header_means_no_wish() -> None:
    """Without either header the server asks for nothing."""
    assert parse_retry_after({"content-type": "application/json"}, NOW) is None


def test_full_jitter_stays_within_bounds() -> None:
    """Backoff is uniform in [0, min(max_backoff, base*2^attempt)] and spreads out."""
    policy = RetryPolicy(base=1.0, max_backoff=10.0)
    rng = random.Random(4)
    for attempt, ceiling in [(0, 1.0), (1, 2.0), (3, 8.0), (4, 10.0), (50, 10.0), (5000, 10.0)]:
        samples = [policy.backoff(attempt, rng) for _ in range(300)]
        assert all(0.0 <= s <= ceiling for s in samples)
        # Full jitter uses the whole range, not a fixed value near the ceiling.
        assert min(samples) < 0.2 * ceiling
        assert max(samples) > 0.8 * ceiling


def test_decide_honours_retry_after_up_to_cap() -> None:
    """A server wait under the cap is honoured (never shortened), with small jitter."""
    policy = RetryPolicy(retry_after_cap=120.0)
    rng = random.Random(1)
    for _ in range(50):
        decision = policy.decide(0, 30.0, rng)
        assert isinstance(decision, Wait)
        assert 30.0 <= decision.seconds <= 31.0


def test_retry_after_beyond_cap_is_a_quota() -> None:
    """A Retry-After longer than the cap (a daily quota) stops instead of sleeping."""
    policy = RetryPolicy(retry_after_cap=120.0)
    assert policy.decide(0, 86_400.0, random.Random(0)) == Quota(86_400.0)


def test_attempts_run_out() -> None:
    """After max_attempts refusals the policy gives up."""
    policy = RetryPolicy(max_attempts=3)
    rng = random.Random(0)
    assert isinstance(policy.decide(0, None, rng), Wait)
    assert isinstance(policy.decide(1, None, rng), Wait)
    assert policy.decide(2, None, rng) == GiveUp(3)


@pytest.mark.parametrize(("value", "seconds"), [("0", 0.0), ("0.5", 0.5)])
def test_retry_after_zero_or_fractional_means_now_or_soon(value: str, seconds: float) -> None:
    """`Retry-After: 0` and sub-second waits are the server's wish, not garbage."""
    assert parse_retry_after({"Retry-After": value}, now=0) == seconds
    assert parse_retry_after({"retry-after-ms": value}, now=0) == seconds / 1000


def test_a_retry_after_equal_to_the_cap_is_still_waited_out() -> None:
    """The cap is the longest wait honoured: exactly the cap waits, a hair more is a quota."""
    policy = RetryPolicy(retry_after_cap=120.0)
    assert isinstance(policy.decide(0, 120.0, random.Random(0)), Wait)
    assert policy.decide(0, 120.5, random.Random(0)) == Quota(120.5)


def test_jitter_on_a_server_wait_is_a_tenth_of_it_up_to_a_second() -> None:
    """On top of Retry-After: a jitter in [0, min(1 s, 10 %)] that really spreads a fleet."""
    policy = RetryPolicy()
    rng = random.Random(3)
    short = [policy.decide(0, 2.0, rng).seconds for _ in range(200)]  # type: ignore[union-attr]
    assert all(2.0 <= s <= 2.2 for s in short) and max(short) > 2.15 and min(short) < 2.05
    long = [policy.decide(0, 100.0, rng).seconds for _ in range(200)]  # type: ignore[union-attr]
    assert all(100.0 <= s <= 101.0 for s in long) and max(long) > 100.9


def test_without_a_server_wish_the_wait_is_the_jittered_backoff() -> None:
    """No Retry-After: the wait is a full-jitter backoff under the attempt's ceiling."""
    policy = RetryPolicy(base=1.0, max_backoff=60.0)
    rng = random.Random(5)
    waits = [policy.decide(2, None, rng) for _ in range(100)]
    assert all(isinstance(w, Wait) and 0.0 <= w.seconds <= 4.0 for w in waits)
    assert max(w.seconds for w in waits if isinstance(w, Wait)) > 3.0
