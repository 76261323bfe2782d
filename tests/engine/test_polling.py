"""Unit tests of the adaptive poll scheduler."""

from __future__ import annotations

import random

import pytest

from runner.polling import PollScheduler, PollSettings, quantile


def _scheduler(**kwargs: float) -> PollScheduler:
    settings = PollSettings(**{"floor": 5.0, "ceiling": 60.0, "timeout": 1800.0, **kwargs})
    return PollScheduler(settings, random.Random(0))


def test_quantile_interpolates() -> None:
    """The quantile interpolates linearly between sorted values."""
    assert quantile([10.0, 20.0, 30.0], 0.5) == 20.0
    assert quantile([10.0, 20.0], 0.25) == 12.5
    assert quantile([7.0], 0.9) == 7.0
    assert quantile([1.0, 2.0, 3.0, 4.0, 5.0], 50 / 100) == 3.0  # the sandbox's p50
    assert quantile([1.0, 3.0], 75 / 100) == 2.5


def test_cold_start_backs_off_from_floor() -> None:
    """Before anything finished, polls start at the floor and grow toward the ceiling."""
    sched = _scheduler(jitter=0.0)
    delays = [sched.next_delay(elapsed=0.0, polls=n) for n in range(12)]
    assert delays[0] == 5.0
    assert delays == sorted(delays)
    assert delays[-1] == 60.0


def test_learns_to_sleep_until_expected_completion() -> None:
    """Once generations take ~65 s, a fresh request sleeps to about then (its first poll is
    one gap past the earliest of them) instead of polling at 10 s."""
    sched = _scheduler(jitter=0.0, ceiling=120.0)
    for duration in [62.0, 64.0, 65.0, 66.0, 67.0, 70.0]:
        sched.observe(duration)
    first = sched.next_delay(elapsed=0.0, polls=0)
    assert 62.0 + 0.08 * 65.0 <= first <= 62.5 + 0.08 * 65.5
    # Inside the usual window, polls are dense (the window is narrow: floor).
    assert sched.next_delay(elapsed=64.0, polls=1) == 5.0


def test_polls_needed_for_a_typical_request_drop() -> None:
    """After learning, a typical generation needs far fewer polls than a fixed 10 s."""
    sched = _scheduler(ceiling=120.0)
    for duration in [60.0, 63.0, 65.0, 66.0, 68.0, 72.0]:
        sched.observe(duration)
    elapsed, polls = 0.0, 0
    while elapsed < 66.0:
        elapsed += sched.next_delay(elapsed, polls)
        polls += 1
    fixed = 66 // 10 + 1
    assert polls <= 3 < fixed


def test_stragglers_are_polled_less_often() -> None:
    """Far past the usual window the delay grows, up to the ceiling."""
    sched = _scheduler(jitter=0.0)
    for duration in [20.0, 22.0, 25.0]:
        sched.observe(duration)
    near = sched.next_delay(elapsed=30.0, polls=3)
    far = sched.next_delay(elapsed=100.0, polls=6)
    very_far = sched.next_delay(elapsed=900.0, polls=20)
    assert near < far <= very_far == 60.0


def test_delay_never_passes_the_deadline() -> None:
    """The last poll lands on the deadline; past it the delay is zero."""
    sched = _scheduler(timeout=100.0)
    assert sched.next_delay(elapsed=97.0, polls=10) == pytest.approx(3.0)
    assert sched.next_delay(elapsed=100.0, polls=11) == 0.0


def test_delay_respects_floor_and_ceiling_with_jitter() -> None:
    """Whatever was learned, every delay lies within [floor, ceiling] (or the deadline)."""
    sched = PollScheduler(PollSettings(floor=2.0, ceiling=30.0, timeout=10_000.0), random.Random(3))
    for duration in [1.0, 500.0, 3.0, 900.0]:
        sched.observe(duration)
    for elapsed in [0.0, 0.5, 2.0, 100.0, 450.0, 2000.0, 9000.0]:
        for polls in range(5):
            assert 2.0 <= sched.next_delay(elapsed, polls) <= 30.0


def test_invalid_bounds_are_refused() -> None:
    """A floor above the ceiling is a configuration error."""
    with pytest.raises(ValueError, match="floor"):
        PollScheduler(PollSettings(floor=10.0, ceiling=5.0))


def _follow(sched: PollScheduler, ends: list[float]) -> tuple[list[float], list[int], list[float]]:
    """Poll generations ending at `ends` one after another as the lifecycle does; return
    each one's first-poll delay, polls and notice delay."""
    firsts, polls, notices = [], [], []
    for end in ends:
        elapsed, count, running_at = 0.0, 0, None
        while True:
            elapsed += sched.next_delay(elapsed, count, "m")
            if count == 0:
                firsts.append(elapsed)
            count += 1
            if elapsed < end:
                running_at = elapsed
                continue
            sched.observe(elapsed, "m", running_at=running_at, censored=running_at is None)
            break
        polls.append(count)
        notices.append(elapsed - end)
    return firsts, polls, notices


def test_first_poll_does_not_drift_later_when_it_finds_generations_done() -> None:
    """Generations of 4 s +-10 % seen done by their first poll (the end unknown, only
    "before") keep the first poll near the early edge: it does not move one gap later
    per round, so polls stay <= 3 and the notice delay within 10 % of the duration."""
    rng = random.Random(3)
    sched = PollScheduler(PollSettings(floor=0.31, ceiling=3.69, timeout=60.0, jitter=0.1),
                          random.Random(0), priors={"m": [3.6, 3.8, 4.0, 4.2, 4.4]})
    ends = [4.0 * (1 + max(-0.1, min(0.1, rng.gauss(0, 0.05)))) for _ in range(1500)]
    firsts, polls, notices = _follow(sched, ends)
    late = firsts[-300:]
    assert max(late) < min(ends) + 2 * 0.32  # still at the early edge, not drifting away
    assert sum(polls[-300:]) / 300 <= 3
    assert sorted(notices[-300:])[150] <= 0.4


def test_a_wide_bracket_from_a_cold_poll_does_not_pull_first_polls_early() -> None:
    """Generations last seen running by a poll made before the prior arrived (0.31 s)
    and seen done on schedule (3.95 s) say only "ended before 3.95 s": the next ones are
    still first polled near their end, not from the bracket's midpoint (~2.1 s) on, which
    cost 6 polls a generation from the second wave of a batch on."""
    sched = PollScheduler(PollSettings(floor=0.31, ceiling=3.69, timeout=60.0, jitter=0.0),
                          random.Random(0), priors={"m": [3.6, 3.8, 4.0, 4.2, 4.4]})
    for _ in range(40):
        sched.observe(3.95, "m", running_at=0.31)
    assert sched.next_delay(0.0, 0, "m") > 3.3
    firsts, polls, _ = _follow(sched, [4.0] * 40)
    assert min(firsts) > 3.3 and max(polls) <= 3


def test_censored_durations_count_only_on_a_schedule() -> None:
    """A cold-start completion (no schedule yet) is recorded as seen; from then on, one
    seen done by its first poll is taken as ended before it."""
    sched = _scheduler(jitter=0.0)
    sched.observe(40.0, "m", censored=True)
    assert sched.expected("m") == 40.0
    sched.observe(40.0, "m", censored=True)
    assert sched.expected("m") < 40.0
