"""Unit tests of the decision table (runner.decide.decide), row by row."""

from __future__ import annotations

import pytest

from runner.decide import Action, Facts, FileCheck, Flags, decide
from runner.lockfile import LockEntry
from runner.manifest import RequestState

SHA = "a" * 64


def _state(status: str, **fields: object) -> RequestState:
    fields = {"generation_id": "g", **fields}
    if status == "done":
        fields = {"sha256": SHA, "size": 10, **fields}
    return RequestState(id="r", status=status, **fields)  # type: ignore[arg-type]


def _lock(state: str, **fields: object) -> LockEntry:
    fields = {"generation_id": "g", **fields}
    if state == "done":
        fields = {"sha256": SHA, "size": 10, **fields}
    return LockEntry(
        id="r", state=state, output="a.mp4", provider="aimlapi", model="m", endpoint="/e",  # type: ignore[arg-type]
        payload={}, **fields,  # type: ignore[arg-type]
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
        # adopted from a bare sidecar, then deleted: nothing can fetch it, paying is asked for
        (Facts(state=_state("done", generation_id=None), file=GONE), Flags(), "lost",
         Action.REPORT, False),
        (Facts(locked=_lock("done", generation_id=None), file=GONE), Flags(), "lost",
         Action.REPORT, False),
        (Facts(state=_state("done", generation_id=None), file=GONE),
         Flags(regenerate_lost=True), "new", Action.SUBMIT, True),
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


@pytest.mark.parametrize(
    ("facts", "flags", "status", "reason"),
    [
        (Facts(), Flags(), "new", "new"),
        (Facts(state=_state("pending")), Flags(), "pending",
         "submitted as generation g — a run polls it (never resubmits it)"),
        (DONE_HERE, Flags(), "done", "done"),
        (DONE_HERE, Flags(force=True), "new", "forced (--force regenerates it, paid again)"),
        (Facts(state=_state("done"), file=GONE), Flags(), "recover",
         "paid, but the video is missing and no store holds it — polls generation g for a "
         "fresh URL and downloads it again (free)"),
        (Facts(state=_state("done"), file=FileCheck.DIFFERS), Flags(), "recover",
         "paid, but the video is changed and no store holds it — polls generation g for a "
         "fresh URL and downloads it again (free)"),
        (Facts(state=_state("done"), file=FileCheck.DIFFERS, in_store=True), Flags(), "restore",
         "the video is changed — restored from the store (no API call)"),
        (Facts(state=_state("done"), file=GONE, moved_from="old.mp4"), Flags(), "restore",
         "its video is at its old path old.mp4 — moved to the new one (no API call)"),
        (Facts(locked=_lock("done"), file=GONE, in_store=True), Flags(), "stored",
         "in the store, not in this tree — `runner pull` fetches it"),
        (Facts(locked=_lock("done"), file=GONE, in_store=True), Flags(materialize=True),
         "restore", "the video is missing — restored from the store (no API call)"),
        (Facts(locked=_lock("done"), file=FileCheck.MATCHES), Flags(), "adopt",
         "the video here is the one the lock file records — taken over without any API call"),
        (Facts(adopt_from="sidecar"), Flags(), "adopt",
         "the video here is the one its sidecar records — taken over without any API call"),
        (Facts(state=_state("lost", reason="404 on poll")), Flags(), "lost",
         "paid, but lost: 404 on poll — --regenerate-lost pays for it again"),
        (Facts(locked=_lock("lost", reason="expired upstream")), Flags(), "lost",
         "paid, but lost: expired upstream — --regenerate-lost pays for it again"),
        (Facts(state=_state("lost")), Flags(), "lost",
         "paid, but lost: the provider no longer has this generation — --regenerate-lost "
         "pays for it again"),
        (Facts(state=_state("lost", reason="404")), Flags(regenerate_lost=True), "new",
         "lost (404) — generated again (paid)"),
        # the manifest's `lost` outranks the lock's `done`: a lost generation is not polled
        (Facts(state=_state("lost", reason="404"), locked=_lock("done"), file=GONE), Flags(),
         "lost", "paid, but lost: 404 — --regenerate-lost pays for it again"),
        (Facts(state=_state("failed", reason="boom", stage="generate")), Flags(), "failed",
         "failed before: boom — use --retry-failed"),
        (Facts(state=_state("failed", stage="generate")), Flags(), "failed",
         "failed before: no reason recorded — use --retry-failed"),
        (Facts(state=_state("failed", reason="boom", stage="generate")),
         Flags(retry_failed=True), "new", "failed before (boom) — retried"),
        (Facts(state=_state("failed", reason="truncated", stage="download")),
         Flags(retry_failed=True), "recover",
         "failed at download (truncated) — the paid generation g is fetched again (free)"),
        (Facts(state=_state("unknown", reason="timeout")), Flags(), "unknown",
         "outcome unknown (timeout) — check the provider's dashboard; --resubmit-unknown "
         "submits it again (it may be billed twice)"),
        (Facts(state=_state("unknown")), Flags(), "unknown",
         "outcome unknown (a request was sent without an answer) — check the provider's "
         "dashboard; --resubmit-unknown submits it again (it may be billed twice)"),
        (Facts(state=_state("unknown", reason="timeout"), reconcilable=True), Flags(), "unknown",
         "outcome unknown (timeout) — a run looks its client request id up in the provider's "
         "usage logs: found, it is collected; still absent past the horizon, it is submitted "
         "again"),
        (Facts(state=_state("unknown")), Flags(resubmit_unknown=True), "new",
         "outcome unknown — resubmitted (--resubmit-unknown: it may be billed twice)"),
        # only the lock file (another machine's run) knows the POST went unanswered
        (Facts(locked=_lock("unknown")), Flags(), "unknown",
         "outcome unknown (a request was sent without an answer) — check the provider's "
         "dashboard; --resubmit-unknown submits it again (it may be billed twice)"),
        (Facts(state=_state("done", generation_id=None), file=FileCheck.DIFFERS), Flags(),
         "lost", "paid, but lost: the video is changed and no generation id is recorded to "
         "fetch it again — --regenerate-lost pays for it again"),
    ],
)
def test_each_row_tells_the_user_why_and_what_it_costs(
    facts: Facts, flags: Flags, status: str, reason: str
) -> None:
    """The plan's words for each row: the recorded reason, the generation, paid or free."""
    decision = decide(facts, flags)
    assert (decision.status, decision.reason) == (status, reason)
