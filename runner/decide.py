"""The decision table: what happens to one request, from what is known about it.

`runner plan` and `runner run` both call `decide()`, so what a plan says is what a run
does (the same function decides; only the executor differs, as in snakemake's dry run).
It is pure: `runner.observe` gathers the facts (manifest, lock file, the file on disk and
its sidecar, the store) and `decide` reads them. Its rows, in order:

    status    action     when                                                    paid
    new       submit     nothing recorded (or --force, --retry-failed of a        yes
                         rejected/failed generation, --resubmit-unknown,
                         --regenerate-lost)
    done      skip       the video at its path is the recorded one                 no
    adopt     adopt      no manifest record, but the video at its path is the one   no
                         the lock file (or its sidecar) records: take it over
    restore   restore    this tree had the video, it is gone or changed, and the   no
                         store (or its old output path) holds the recorded bytes
    stored    skip       recorded in the lock, held by the store, not in this tree no
                         (`runner pull` materialises it)
    recover   collect    paid, the file is gone, nothing holds it: poll its        no
                         generation for a fresh URL and download it again
    pending   collect    submitted, no video yet: poll it, never resubmit          no
    unknown   reconcile  a POST without an answer, provider keeps usage logs:      no
                         look its client request id up (found: collect; absent past
                         the horizon: submit — see runner.reconcile)
    unknown   report     the same, without usage logs: the user decides            no
    failed    report     failed before (--retry-failed retries: a generation that   no
                         was paid for is collected again, free)
    lost      report     paid, but the provider no longer has it (or its file is    no
                         gone and no generation id is recorded to fetch it again)

`--force` turns every row but `pending` into a paid `new` (a generation under way is
polled, never bought twice).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from runner.lockfile import LockEntry
from runner.manifest import RequestState


class Action:
    """What a run does with one request (plain strings, for messages and JSON)."""

    SUBMIT = "submit"  # POST (paid), then collect
    SKIP = "skip"  # nothing to do
    ADOPT = "adopt"  # record the video already in place (no API call)
    RESTORE = "restore"  # copy the recorded bytes back from the store or the old path
    COLLECT = "collect"  # poll the recorded generation, then download
    RECONCILE = "reconcile"  # look an unknown outcome up in the usage logs
    REPORT = "report"  # listed with its reason, nothing sent


class FileCheck(enum.Enum):
    """The file at a request's output path, against the recorded result."""

    NO_RESULT = "no_result"  # nothing recorded to compare with
    MATCHES = "matches"  # the recorded bytes (size + sha256) are there
    ABSENT = "absent"
    DIFFERS = "differs"  # another file is there (an edit, another request's video)


@dataclass(frozen=True, slots=True)
class Flags:
    """The user's say on requests that are not simply new or pending."""

    force: bool = False  # regenerate everything selected but generations under way
    retry_failed: bool = False
    resubmit_unknown: bool = False  # accept possibly paying twice
    regenerate_lost: bool = False  # pay again for what the provider lost
    materialize: bool = False  # `runner pull`: bring stored videos into this tree too


@dataclass(frozen=True, slots=True)
class Facts:
    """Everything known about one request before a run, gathered by `runner.observe`."""

    state: RequestState | None = None  # the local manifest's record
    locked: LockEntry | None = None  # the lock file's record
    file: FileCheck = FileCheck.NO_RESULT
    adopt_from: str | None = None  # "lock" / "sidecar": the file here is that record's video
    in_store: bool = False  # the store holds the recorded result's bytes
    moved_from: str | None = None  # the recorded video sits verified at this old output path
    reconcilable: bool = False  # usage logs exist and the POST carried a client request id

    @property
    def result_sha256(self) -> str | None:
        """The sha256 of the video recorded for this request, if any (the lock wins)."""
        if self.locked is not None and self.locked.state == "done":
            return self.locked.sha256
        if self.state is not None and self.state.status == "done":
            return self.state.sha256
        return None

    @property
    def generation_id(self) -> str | None:
        if self.state is not None and self.state.generation_id:
            return self.state.generation_id
        return self.locked.generation_id if self.locked is not None else None

    @property
    def status(self) -> str | None:
        """The recorded status: the manifest's, else the lock's."""
        if self.state is not None:
            return self.state.status
        return self.locked.state if self.locked is not None else None


@dataclass(frozen=True, slots=True)
class Decision:
    """What happens to one request, and why, in words a user reads."""

    status: str  # new | done | adopt | restore | stored | recover | pending | unknown | ...
    action: str  # an Action
    reason: str
    paid: bool = False  # this run would pay for a generation

    @property
    def calls_api(self) -> bool:
        return self.action in (Action.SUBMIT, Action.COLLECT, Action.RECONCILE)


STATUSES = (
    "new", "done", "adopt", "restore", "stored", "recover", "pending", "unknown",
    "failed", "lost", "orphaned",
)


NEW = Decision("new", Action.SUBMIT, "new", paid=True)  # nothing recorded: most of a first plan


def decide(facts: Facts, flags: Flags) -> Decision:
    """Return what a run does with one request (see the table in the module docstring)."""
    status = facts.status
    if status is None and facts.adopt_from is None:
        return NEW
    if flags.force and status != "pending":
        return Decision("new", Action.SUBMIT, "forced (--force regenerates it, paid again)", True)
    if facts.result_sha256 is not None or facts.adopt_from is not None:
        return _result(facts, flags)
    if status == "lost":
        return _lost(facts, flags)
    if status == "pending":
        return Decision(
            "pending", Action.COLLECT, f"submitted as generation {facts.generation_id} — a run "
            "polls it (never resubmits it)"
        )
    if status == "unknown":
        return _unknown(facts, flags)
    if status == "failed":
        return _failed(facts, flags)
    return Decision("new", Action.SUBMIT, "new", paid=True)  # pragma: no cover - all covered


def _result(facts: Facts, flags: Flags) -> Decision:
    """The rows of a request whose video is recorded (done in the manifest or the lock)."""
    if facts.file is FileCheck.MATCHES:
        manifest_agrees = (
            facts.state is not None
            and facts.state.status == "done"
            and facts.state.sha256 == facts.result_sha256
        )
        if manifest_agrees:
            return Decision("done", Action.SKIP, "done")
        return Decision(
            "adopt", Action.ADOPT, "the video here is the one the lock file records — taken "
            "over without any API call"
        )
    if facts.adopt_from == "sidecar":
        return Decision(
            "adopt", Action.ADOPT, "the video here is the one its sidecar records — taken "
            "over without any API call"
        )
    here = facts.state is not None and facts.state.status == "done"
    what = "changed" if facts.file is FileCheck.DIFFERS else "missing"
    if facts.moved_from is not None:
        return Decision(
            "restore", Action.RESTORE, f"its video is at its old path {facts.moved_from} — "
            "moved to the new one (no API call)"
        )
    if facts.in_store:
        if here or flags.materialize:
            return Decision(
                "restore", Action.RESTORE, f"the video is {what} — restored from the store "
                "(no API call)"
            )
        return Decision(
            "stored", Action.SKIP, "in the store, not in this tree — `runner pull` fetches it"
        )
    if facts.status == "lost":
        return _lost(facts, flags)
    if facts.generation_id is not None:
        return Decision(
            "recover", Action.COLLECT, f"paid, but the video is {what} and no store holds it "
            f"— polls generation {facts.generation_id} for a fresh URL and downloads it again "
            "(free)"
        )
    # A record without a generation id (adopted from a bare sidecar) cannot be fetched
    # again: it is lost, and paying for it again is the user's call, as for any lost one.
    return _lost(facts, flags, f"the video is {what} and no generation id is recorded to "
                 "fetch it again")


def _lost(facts: Facts, flags: Flags, fallback: str | None = None) -> Decision:
    why = facts.state.reason if facts.state is not None and facts.state.reason else None
    if why is None and facts.locked is not None:
        why = facts.locked.reason
    why = why or fallback or "the provider no longer has this generation"
    if flags.regenerate_lost:
        return Decision("new", Action.SUBMIT, f"lost ({why}) — generated again (paid)", True)
    return Decision(
        "lost", Action.REPORT, f"paid, but lost: {why} — --regenerate-lost pays for it again"
    )


def _unknown(facts: Facts, flags: Flags) -> Decision:
    why = facts.state.reason if facts.state is not None and facts.state.reason else None
    why = why or "a request was sent without an answer"
    if flags.resubmit_unknown:
        return Decision(
            "new", Action.SUBMIT, "outcome unknown — resubmitted (--resubmit-unknown: it may be "
            "billed twice)", True
        )
    if facts.reconcilable:
        return Decision(
            "unknown", Action.RECONCILE, f"outcome unknown ({why}) — a run looks its client "
            "request id up in the provider's usage logs: found, it is collected; still absent "
            "past the horizon, it is submitted again"
        )
    return Decision(
        "unknown", Action.REPORT, f"outcome unknown ({why}) — check the provider's dashboard; "
        "--resubmit-unknown submits it again (it may be billed twice)"
    )


def _failed(facts: Facts, flags: Flags) -> Decision:
    state = facts.state
    assert state is not None  # only the manifest records failures
    reason = state.reason or "no reason recorded"
    if flags.retry_failed:
        if state.stage in ("download", "probe") and state.generation_id:
            return Decision(
                "recover", Action.COLLECT, f"failed at {state.stage} ({reason}) — the paid "
                f"generation {state.generation_id} is fetched again (free)"
            )
        return Decision("new", Action.SUBMIT, f"failed before ({reason}) — retried", True)
    return Decision("failed", Action.REPORT, f"failed before: {reason} — use --retry-failed")
