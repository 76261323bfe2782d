"""Which of the decision table's actions need the API (and so its key)."""

from __future__ import annotations

import pytest

from runner.decide import Action, Decision


@pytest.mark.parametrize(
    ("action", "calls"),
    [(Action.SUBMIT, True), (Action.COLLECT, True), (Action.RECONCILE, True),
     (Action.SKIP, False), (Action.ADOPT, False), (Action.RESTORE, False),
     (Action.REPORT, False)],
)
def test_only_submitting_polling_and_reconciling_call_the_api(action: str, calls: bool) -> None:
    """A run that only skips, adopts, restores or reports needs no API key; one that
    submits, collects or reconciles does (the engine asks for the key by this)."""
    assert Decision("new", action, "why").calls_api is calls
