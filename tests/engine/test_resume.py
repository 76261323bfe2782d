"""Unit tests of the decision table (runner.decide.decide), row by row."""

from __future__ import annotations

import pytest

from runner.decide import Action, Facts, FileCheck, Flags, decide
from runner.lockfile import LockEntry
from runner.manifest import RequestState

SHA = "a" * 64


def _state(status: str, **fields: object) -> RequestState:
    if status == "done":
        fields = {"sha256": SHA, "size": 10, **fields}
    return RequestState(id="r", status=status, generation_id="g", **fields)  # type: ignore[arg-type]


def _lock(state: str, **fields: object) -> LockEntry:
    if state == "done":
        fields = {"sha256": SHA, "size": 10, **fields}
    return LockEntry(
        id="r", state=state, output="a.mp4", provider="aimlapi", model="m", endpoint="/e",  # type: ignore[arg-type]
        payload={}, generation_id="g", **fields,  # type: ignore[arg-type]
    )


DONE_HERE = Facts(state=_state("done"), file=FileCheck.MATCHES)
GONE = FileCheck.ABSENT


@pytest.mark.parametrize(
    ("facts", "flags", "status", "action", "paid"),
    [
        (Facts(), Flags(), "new", Action.SUBMIT, True),
        (Facts(state=_state("pending")), Flags(), "pending", Action.COLLECT, False),
        # a generation under way is never bought twice, even with --force
        (Facts(state=_state("pending")), Flags(force=True), "pending", Action.COLLECT, False),
        (DONE_HERE, Flags(), "done", Action.SKIP, False),
        (DONE_HERE, Flags(force=True), "new", Action.SUBMIT, True),
        (Facts(state=_state("done"), file=GONE), Flags(), "recover", Action.COLLECT, False),
        (Facts(state=_state("done"), file=FileCheck.DIFFERS), Flags(), "recover",
         Action.COLLECT, False),
        (Facts(state=_state("done"), file=GONE, in_store=True), Flags(), "restore",
         Action.RESTORE, False),
        (Facts(state=_state("done"), file=GONE, moved_from="old.mp4"), Flags(), "restore",
         Action.RESTORE, False),
        (Facts(locked=_lock("done"), file=GONE, in_store=True), Flags(), "stored",
         Action.SKIP, False),
        (Facts(locked=_lock("done"), file=GONE, in_store=True), Flags(materialize=True),
         "restore", Action.RESTORE, False),
        (Facts(locked=_lock("done"), file=FileCheck.MATCHES), Flags(), "adopt",
         Action.ADOPT, False),
        (Facts(state=_state("pending"), locked=_lock("done"), file=FileCheck.MATCHES), Flags(),
         "adopt", Action.ADOPT, False),
        (Facts(adopt_from="sidecar"), Flags(), "adopt", Action.ADOPT, False),
        (Facts(locked=_lock("done"), file=GONE), Flags(), "recover", Action.COLLECT, False),
        (Facts(locked=_lock("pending")), Flags(), "pending", Action.COLLECT, False),
        (Facts(state=_state("lost", reason="404")), Flags(), "lost", Action.REPORT, False),
        (Facts(state=_state("lost")), Flags(regenerate_lost=True), "new", Action.SUBMIT, True),
        (Facts(locked=_lock("lost")), Flags(), "lost", Action.REPORT, False),
        (Facts(state=_state("failed", stage="generate")), Flags(), "failed", Action.REPORT,
         False),
        (Facts(state=_state("failed", stage="generate")), Flags(retry_failed=True), "new",
         Action.SUBMIT, True),
        (Facts(state=_state("failed", stage="probe")), Flags(retry_failed=True), "recover",
         Action.COLLECT, False),
        (Facts(state=_state("failed", stage="download")), Flags(retry_failed=True), "recover",
         Action.COLLECT, False),
        (Facts(state=_state("unknown")), Flags(), "unknown", Action.REPORT, False),
        (Facts(state=_state("unknown"), reconcilable=True), Flags(), "unknown",
         Action.RECONCILE, False),
        (Facts(state=_state("unknown")), Flags(retry_failed=True), "unknown", Action.REPORT,
         False),
        (Facts(state=_state("unknown")), Flags(resubmit_unknown=True), "new", Action.SUBMIT,
         True),
        (Facts(state=_state("unknown")), Flags(force=True), "new", Action.SUBMIT, True),
    ],
)
def test_decision_table(facts: Facts, flags: Flags, status: str, action: str, paid: bool) -> None:
    """Each combination of facts and flags maps to the documented row."""
    decision = decide(facts, flags)
    assert (decision.status, decision.action, decision.paid) == (status, action, paid)


def test_reported_requests_say_which_flag_would_act() -> None:
    """A reported failed/unknown/lost request names the flag that would act on it."""
    failed = decide(Facts(state=_state("failed", reason="boom")), Flags()).reason
    assert "--retry-failed" in failed and "boom" in failed
    unknown = decide(Facts(state=_state("unknown", reason="timeout")), Flags()).reason
    assert "--resubmit-unknown" in unknown
    lost = decide(Facts(state=_state("lost", reason="404 on poll")), Flags()).reason
    assert "--regenerate-lost" in lost and "404 on poll" in lost
