"""Unit tests of the resume decision table (runner.resume.decide)."""

from __future__ import annotations

import pytest

from runner.manifest import RequestState
from runner.resume import Action, Flags, decide


def _state(status: str, **fields: object) -> RequestState:
    return RequestState(id="r", status=status, generation_id="g", **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("state", "refetch", "flags", "action"),
    [
        (None, False, Flags(), Action.SUBMIT),
        (_state("pending"), False, Flags(), Action.COLLECT),
        (_state("pending"), False, Flags(force=True), Action.COLLECT),  # never pay twice
        (_state("done"), False, Flags(), Action.SKIP),
        (_state("done"), True, Flags(), Action.COLLECT),  # file missing: fetch again
        (_state("done"), False, Flags(force=True), Action.SUBMIT),
        (_state("failed", stage="generate"), False, Flags(), Action.REPORT),
        (_state("failed", stage="generate"), False, Flags(retry_failed=True), Action.SUBMIT),
        (_state("failed", stage="probe"), False, Flags(retry_failed=True), Action.COLLECT),
        (_state("failed", stage="download"), False, Flags(retry_failed=True), Action.COLLECT),
        (_state("unknown"), False, Flags(), Action.REPORT),
        (_state("unknown"), False, Flags(retry_failed=True), Action.REPORT),
        (_state("unknown"), False, Flags(resubmit_unknown=True), Action.SUBMIT),
    ],
)
def test_decision_table(
    state: RequestState | None, refetch: bool, flags: Flags, action: str
) -> None:
    """Each manifest state and flag combination maps to the documented action."""
    assert decide(state, refetch, flags)[0] == action


def test_reported_requests_say_which_flag_would_act() -> None:
    """A skipped failed/unknown request names the flag that would retry it."""
    _, failed_why = decide(_state("failed", reason="boom"), False, Flags())
    assert failed_why is not None and "--retry-failed" in failed_why and "boom" in failed_why
    _, unknown_why = decide(_state("unknown", reason="lost"), False, Flags())
    assert unknown_why is not None and "--resubmit-unknown" in unknown_why
