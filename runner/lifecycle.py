"""One request's life: submit (with retries) → poll → download → probe → sidecar.

Every step records its outcome in the spec's manifest before the next step starts, so
a crash at any instant resumes correctly: the `submitting` intent is durable before the
POST; the generation id is durable before the first poll; a video is recorded only
after it is renamed into place, probed and found to be a video.

A POST is sent again only when it provably did not take effect (connect error, 429,
503); the refused attempt is then `forgotten` in the manifest, so a crash while backing
off leaves a request that the next run submits anew, not an `unknown` one.
"""

from __future__ import annotations

import asyncio
import enum
import json
import os
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from runner.api import (
    ApiClient,
    CallFailed,
    Created,
    GenStatus,
    OutcomeUnknown,
    Rejected,
    Retryable,
)
from runner.budget import Ceilings
from runner.clock import Clock
from runner.download import DownloadError, ExpiredUrl, download
from runner.durable import fsync_dir, storage_error
from runner.errors import AuthError, StorageError
from runner.layout import display_path, sidecar_of
from runner.lockfile import LockWriter
from runner.loopback import is_loopback_url
from runner.manifest import Manifest, format_ts, parse_ts
from runner.polling import PollScheduler, PollSettings
from runner.poster import POSTER_AT, poster_jpeg, poster_path, save_poster, warm_up
from runner.probe import NotAVideo, VideoFacts, probe_frame
from runner.progress import format_duration
from runner.reconcile import HORIZON, Ledger, client_request_id
from runner.request import IMAGE_REF_PREFIX, LocalImage, Request, image_refs, materialize
from runner.retry import GiveUp, Quota, RetryPolicy
from runner.sidecar import render_sidecar, sidecar_for, write_sidecar
from runner.slots import Slot
from runner.store import Store, StoreError
from runner.transport import OPENING

UNREACHABLE_LIMIT = 3  # refused connections, with no answer yet, that stop a provider
NOT_FOUND_LIMIT = 3  # 404s on a poll tolerated (a replica lagging behind) before failing
EMPTY_DONE_LIMIT = 3  # "completed" answers without a URL tolerated before failing
# Images up to this size are read and base64-encoded on the event loop (~0.1 ms): the
# hop to a worker thread and back would cost more CPU than the work itself.
INLINE_IMAGE_BYTES = 256 << 10


class Outcome(enum.Enum):
    """How one request ended in this run."""

    DONE = "done"  # the video is in place and verified
    RESTORED = "restored"  # the recorded video was put back from the store (no API call)
    FAILED = "failed"  # rejected, failed generation, bad download: recorded as failed
    UNKNOWN = "unknown"  # the POST's outcome is unknown: not resubmitted blindly
    LOST = "lost"  # paid, but the provider no longer has it
    TIMED_OUT = "timed_out"  # still running at the deadline: stays pending for next run
    NOT_RUN = "not_run"  # never submitted (provider quota reached)


@dataclass(frozen=True, slots=True)
class Result:
    """What happened to one request in this run."""

    outcome: Outcome
    reason: str | None = None
    video_seconds: float = 0.0
    paid: bool = False  # a generation was submitted (and accepted) for it in this run


@dataclass
class SpecRun:
    """One spec during a run: its folder, its locked manifest, its local images."""

    name: str
    display: str  # the spec file as the user named it
    folder: Path
    manifest: Manifest
    images: Mapping[str, LocalImage]  # sha256 hex -> image
    lock: LockWriter | None = None  # the lock file beside the spec (None for sandbox runs)
    store: Store | None = None  # where verified videos are kept (None: this tree only)
    observation: Any = None  # what runner.observe saw at the start of the run
    # display path per image: resolving it and the working folder is ~30 syscalls
    _shown: dict[str, str] = field(default_factory=dict, repr=False)

    def image_refs(self, request: Request) -> dict[str, str]:
        """Return the `sha256:…` -> display path map of the images `request` uses."""
        refs: dict[str, str] = {}
        for value in image_refs(request.body):
            image = self.images.get(value[len(IMAGE_REF_PREFIX) :])
            if image is not None:
                shown = self._shown.get(value)
                if shown is None:
                    shown = self._shown[value] = display_path(image.path)
                refs[value] = shown
        return refs

    def image_bytes(self, request: Request) -> int:
        """Return the size of the image files `request` sends (0 without images)."""
        total = 0
        for value in image_refs(request.body):
            image = self.images.get(value[len(IMAGE_REF_PREFIX) :])
            total += image.size if image is not None else 0
        return total


@dataclass
class Shared:
    """What every request of a run shares: clients, schedule, policy, provider gates."""

    clients: Mapping[str, ApiClient]  # provider name -> client
    downloads: httpx.AsyncClient  # no Authorization header
    scheduler: PollScheduler
    poll: PollSettings
    policy: RetryPolicy
    clock: Clock
    rng: random.Random
    notify: Callable[[str], None]
    download_attempts: int = 3
    url_refreshes: int = 3
    ledgers: Mapping[str, Ledger] = field(default_factory=dict)  # provider -> its usage logs
    unstored: list[str] = field(default_factory=list)  # videos the store did not take
    stopped: dict[str, str] = field(default_factory=dict)  # provider -> why it stopped
    abort: AuthError | StorageError | None = None  # 401/403, cannot write: nothing more sent
    posting: set[asyncio.Task[Any]] = field(default_factory=set)  # tasks awaiting a POST
    not_before: dict[str, float] = field(default_factory=dict)  # provider -> monotonic
    send_slots: dict[str, asyncio.Semaphore] = field(default_factory=dict)
    answered: set[str] = field(default_factory=set)  # providers that answered this run
    ceilings: Ceilings = field(default_factory=Ceilings)  # runner.budget
    budget_noted: set[str] = field(default_factory=set)  # budget stops already told
    estimates: Callable[[Request], float | None] = lambda _request: None
    connect_failures: dict[str, int] = field(default_factory=dict)
    warming: asyncio.Task[None] | None = None  # runner.poster.warm_up, once a run

    def warm_up(self) -> None:
        """Load the video tools in a worker thread while generations are being made
        (runner.poster.warm_up), once a run."""
        if self.warming is None:
            self.warming = asyncio.create_task(asyncio.to_thread(_warm_up))

    def stop_provider(self, provider: str, why: str) -> None:
        """Stop every further submission to `provider` for this run (a quota)."""
        if provider not in self.stopped:
            self.stopped[provider] = why
            self.notify(why)

    async def wait_gate(self, provider: str) -> None:
        """Wait until `provider`'s last Retry-After has passed (one 429 pauses all)."""
        while (delay := self.not_before.get(provider, 0.0) - self.clock.monotonic()) > 0:
            await self.clock.sleep(delay)

    def estimate(self, request: Request) -> float | None:
        """Return what the price list says `request` costs (None: unknown)."""
        return self.estimates(request)

    def reached(self, provider: str) -> None:
        """Note that `provider` answered: later connect errors are hiccups, not absence."""
        self.answered.add(provider)

    def cannot_connect(self, provider: str, message: str) -> bool:
        """Count a connection `provider` refused; True once it has stopped the provider.

        A provider that never answered this run and refused UNREACHABLE_LIMIT connections
        is not there (a closed port, a wrong --base-url, no network): waiting out eight
        backoffs per request would cost 200 requests most of an hour for nothing.
        """
        if provider in self.answered:
            return False
        count = self.connect_failures[provider] = self.connect_failures.get(provider, 0) + 1
        if count >= UNREACHABLE_LIMIT and provider not in self.stopped:
            why = (
                f"{provider} cannot be reached ({message}); nothing more is sent to it this "
                "run and its requests stay as they were — check --base-url or the network, "
                "then run the same command again"
            )
            self.stop_provider(provider, why)
        return provider in self.stopped

    def sending(self, provider: str) -> asyncio.Semaphore:
        """Return the slots for POSTs sent to `provider` and not yet answered."""
        slots = self.send_slots.get(provider)
        if slots is None:
            slots = self.send_slots[provider] = asyncio.Semaphore(OPENING)
        return slots

    def hold(self, provider: str, seconds: float) -> None:
        """Pause all of `provider`'s submissions for `seconds`."""
        until = self.clock.monotonic() + seconds
        self.not_before[provider] = max(self.not_before.get(provider, 0.0), until)


async def submit(
    shared: Shared, spec: SpecRun, request: Request, *, forget: str | None = None
) -> str | Result:
    """POST `request` within the run's budgets (runner.budget); return its generation id.

    `forget` (why it is asked for again: --force, --retry-failed...) drops what an
    earlier attempt recorded, once the budget lets it go; kept back, it stays as it was.
    """
    rid = request.id
    ceilings, display = shared.ceilings, spec.display
    refused = ceilings.reserve(display, rid, shared.estimate(request))
    if refused is not None:
        if refused not in shared.budget_noted:
            shared.budget_noted.add(refused)
            shared.notify(refused)
        return Result(Outcome.NOT_RUN, refused)
    if forget is not None and rid in spec.manifest.state:
        await spec.manifest.record_forgotten(rid, forget)
    try:
        outcome = await _submit(shared, spec, request)
    finally:
        # Whatever happened, the manifest says whether anything may have been made.
        state = spec.manifest.state.get(rid)
        sent = state is not None and (
            state.generation_id is not None or state.status in ("unknown", "lost")
        )
        if sent:
            usd = (state.cost or {}).get("usd") if state is not None else None
            ceilings.settle(display, rid, usd if isinstance(usd, int | float) else None)
            if state is not None and state.status == "failed" and state.stage == "generate":
                ceilings.refund(display, rid)  # a failed generation is not billed
        else:
            ceilings.release(display, rid)
    return outcome


async def _submit(shared: Shared, spec: SpecRun, request: Request) -> str | Result:
    """POST `request`, retrying only provable non-effects; return its generation id."""
    client = shared.clients[request.provider]
    manifest = spec.manifest
    rid = request.id
    if request.provider in shared.stopped:
        return Result(Outcome.NOT_RUN, shared.stopped[request.provider])
    if spec.image_bytes(request) <= INLINE_IMAGE_BYTES:
        body = materialize(request.body, spec.images)
    else:  # reading and encoding megabytes would stall every other request's I/O
        body = await asyncio.to_thread(materialize, request.body, spec.images)
    attempt = 0
    while True:
        await shared.wait_gate(request.provider)
        if request.provider in shared.stopped:
            return Result(Outcome.NOT_RUN, shared.stopped[request.provider])
        if shared.abort is not None:
            return Result(Outcome.NOT_RUN, str(shared.abort))
        # Announce, send and hear back while holding one of the provider's few sending
        # slots: a POST waiting for a connection is not yet announced, so a crash leaves
        # an unknown outcome only for a request that really went out.
        async with shared.sending(request.provider):
            if request.provider in shared.stopped:
                return Result(Outcome.NOT_RUN, shared.stopped[request.provider])
            if shared.abort is not None:
                return Result(Outcome.NOT_RUN, str(shared.abort))
            state = manifest.state.get(rid)
            client_id = client_request_id(rid, (state.attempts if state is not None else 0) + 1)
            try:
                outcome: Created | CallFailed = await _post(
                    shared, spec, request, client, body, client_id
                )
            except AuthError:
                await manifest.record_forgotten(
                    rid, "refused by the API (401/403): nothing was created"
                )
                raise
            except CallFailed as exc:
                outcome = exc
        if not (isinstance(outcome, Retryable) and outcome.unreachable):
            shared.reached(request.provider)
        try:
            if isinstance(outcome, CallFailed):
                raise outcome
            created = outcome
        except Retryable as exc:
            if exc.unreachable and shared.cannot_connect(request.provider, exc.message):
                await manifest.record_forgotten(rid, f"not sent: {exc.message}")
                return Result(Outcome.NOT_RUN, shared.stopped[request.provider])
            decision = shared.policy.decide(attempt, exc.retry_after, shared.rng)
            if isinstance(decision, GiveUp):
                reason = f"not accepted after {decision.attempts} attempts: {exc.message}"
                await manifest.record_failed(rid, reason, stage="submit", retryable=True)
                return Result(Outcome.FAILED, reason)
            await manifest.record_forgotten(rid, f"not accepted, nothing created: {exc.message}")
            if isinstance(decision, Quota):
                why = (
                    f"{request.provider} asks to wait {format_duration(decision.seconds)} "
                    f"({exc.message}): a quota, not a hiccup — its remaining submissions "
                    f"stop for this run; run the same command again later"
                )
                shared.stop_provider(request.provider, why)
                return Result(Outcome.NOT_RUN, why)
            if exc.retry_after is not None:
                shared.hold(request.provider, decision.seconds)
            await shared.clock.sleep(decision.seconds)
            attempt += 1
            continue
        except OutcomeUnknown as exc:
            await manifest.record_unknown(rid, exc.message)
            if request.provider in shared.ledgers:
                return await reconcile(shared, spec, request)
            return Result(Outcome.UNKNOWN, exc.message)
        except Rejected as exc:
            reason = f"rejected by {request.provider}: {exc.message}"
            await manifest.record_failed(rid, reason, stage="submit", retryable=False)
            return Result(Outcome.FAILED, reason)
        generation_id = created.generation_id
        try:
            cost = cost_of(created.usd, created.credits)
            await manifest.record_submitted(rid, generation_id, cost=cost)
        except StorageError as exc:
            # The generation exists and is paid for; only this run knows its id now. Say
            # it, so the user can find the video on the provider's side.
            msg = (
                f"{exc} — request {rid} was accepted as generation {generation_id!r}, "
                f"which could not be recorded: the next run reports it as unknown; look "
                f"it up with the provider before choosing --resubmit-unknown"
            )
            raise StorageError(msg) from exc
        return generation_id


async def _post(
    shared: Shared,
    spec: SpecRun,
    request: Request,
    client: ApiClient,
    body: Mapping[str, object],
    client_id: str,
) -> Created:
    """Record the intent, then send the create.

    From the intent on, a run-wide abort lets the POST go out and hear back: awaiting the
    intent's write is a moment an abort could otherwise cut in, leaving a request that
    was announced but never sent, which looks unknown (maybe paid) to every later run.
    """
    task = asyncio.current_task()
    assert task is not None  # always called from a worker task
    shared.posting.add(task)
    try:
        await spec.manifest.record_submitting(
            request, spec.image_refs(request), client_request_id=client_id
        )
        return await client.create(request.endpoint, body, client_request_id=client_id)
    finally:
        shared.posting.discard(task)


async def reconcile(
    shared: Shared, spec: SpecRun, request: Request, slot: Slot | None = None
) -> Result:
    """Settle an unknown outcome from the usage logs, then collect or submit (runner.reconcile).

    Waits like a generation does (the ledger row appears only when the generation ends),
    until `--timeout` after the POST; past that the request stays unknown for next run.
    `slot` is the generation slot the request holds (given back when it ends).
    """
    manifest = spec.manifest
    rid = request.id
    state = manifest.state[rid]
    client_id = state.client_request_id
    if client_id is None or request.provider not in shared.ledgers:
        return Result(Outcome.UNKNOWN, state.reason)
    ledger = shared.ledgers[request.provider]
    since = parse_ts(state.requested_at).timestamp() if state.requested_at else shared.clock.wall()
    checks = 0
    while True:
        row, evidence = await ledger.lookup(client_id, since)
        if ledger.unavailable is not None:
            why = (
                f"{state.reason}; {request.provider}'s usage logs cannot be read "
                f"({ledger.unavailable})"
            )
            return Result(Outcome.UNKNOWN, why)
        age = shared.clock.wall() - since
        if row is not None:
            cost = cost_of(row.usd, row.credits)
            await manifest.record_submitted(
                rid, row.inference_id, cost=cost, evidence=evidence.to_dict(),
                submitted_at=format_ts(since),
            )
            return await collect(
                shared, spec, request, row.inference_id, since, learn=False, poll_now=True,
                slot=slot,
            )
        if age >= HORIZON:
            hours = HORIZON / 3600
            await manifest.record_forgotten(
                rid,
                f"absent from {request.provider}'s usage logs {hours:g} h after its POST: "
                "the request never arrived, so nothing was made or billed",
                evidence=evidence.to_dict(),
            )
            submitted = await submit(shared, spec, request)
            if isinstance(submitted, Result):
                return submitted
            return replace_paid(
                await collect(
                    shared, spec, request, submitted, shared.clock.wall(), learn=True, slot=slot
                )
            )
        if age >= shared.poll.timeout:
            reason = (
                f"{state.reason or 'sent without an answer'}; not in {request.provider}'s usage "
                f"logs {format_duration(age)} after the POST (a video's row appears when it "
                f"ends) — the next run looks again, and submits it only once {HORIZON / 3600:g} h "
                "have passed without a row"
            )
            return Result(Outcome.UNKNOWN, reason)
        checks += 1
        await shared.clock.sleep(shared.scheduler.next_delay(age, checks, request.model))


def cost_of(usd: float | None, credits: int | None) -> dict[str, Any] | None:
    """Return a recorded cost, or None when the provider did not say (never 0 by default)."""
    if usd is None and credits is None:
        return None
    return {"usd": usd, "credits": credits}


def replace_paid(result: Result) -> Result:
    """Mark a result as coming from a generation this run paid for."""
    return Result(result.outcome, result.reason, result.video_seconds, paid=True)


@dataclass
class _PollState:
    polls: int = 0
    not_found: int = 0
    empty_done: int = 0
    refreshes: int = 0
    last_seen: str = "not polled yet"
    running_at: float | None = None  # seconds after submission of the last poll it ran


async def collect(
    shared: Shared,
    spec: SpecRun,
    request: Request,
    generation_id: str,
    submitted_at: float,
    *,
    learn: bool,
    poll_now: bool = False,
    recovering: bool = False,
    slot: Slot | None = None,
) -> Result:
    """Poll the generation until it ends, then download, probe and record its video.

    `submitted_at` is wall-clock epoch seconds (it may come from an earlier run);
    `learn` feeds the finished duration to the scheduler (only for this run's
    submissions: a resumed one's age includes the time nobody was polling);
    `recovering`: its video was downloaded once, so a file the provider cannot give
    again any more is lost, not a download to retry. `slot`, the generation slot the
    request holds (runner.slots), is given back as soon as the generation has ended.
    """
    client = shared.clients[request.provider]
    manifest = spec.manifest
    rid = request.id
    st = _PollState()
    completed = manifest.state[rid].completed_at is not None if rid in manifest.state else False
    immediate = poll_now
    while True:
        elapsed = shared.clock.wall() - submitted_at
        # The deadline bounds waiting for a generation, not fetching a fresh URL for one
        # that is done (a resumed video weeks old is still fetched again).
        if not immediate and elapsed >= shared.poll.timeout and st.polls > 0:
            reason = (
                f"still {st.last_seen} {format_duration(elapsed)} after submission "
                f"(--timeout {format_duration(shared.poll.timeout)}); it stays pending — "
                f"run again to keep polling it, it will not be resubmitted"
            )
            return Result(Outcome.TIMED_OUT, reason)
        delay = 0.0 if immediate else shared.scheduler.next_delay(elapsed, st.polls, request.model)
        immediate = False
        if delay > 0:
            shared.warm_up()  # the first wait of the run: nothing else needs the CPU now
        await shared.clock.sleep(delay)
        st.polls += 1
        try:
            generation = await client.fetch(request.endpoint, generation_id)
            shared.reached(request.provider)
        except Retryable as exc:
            if exc.unreachable and shared.cannot_connect(request.provider, exc.message):
                return Result(Outcome.NOT_RUN, shared.stopped[request.provider])  # pending
            if not exc.unreachable:
                shared.reached(request.provider)
            st.last_seen = f"unreachable ({exc.message})"
            if exc.retry_after is not None:
                await shared.clock.sleep(min(exc.retry_after, shared.poll.ceiling))
            continue
        except Rejected as exc:
            if exc.status == 404 and st.not_found < NOT_FOUND_LIMIT:
                st.not_found += 1
                continue
            if exc.status == 404:
                # Accepted (so paid) once, unknown now: that is not a failure to retry.
                reason = (
                    f"{request.provider} no longer knows generation {generation_id} (polls "
                    f"answer 404: {exc.message}); it was paid for — `runner run "
                    f"--regenerate-lost` pays for a new one"
                )
                await manifest.record_lost(rid, reason)
                return Result(Outcome.LOST, reason)
            reason = f"polling generation {generation_id} failed: {exc.message}"
            await manifest.record_failed(rid, reason, stage="generate", retryable=True)
            return Result(Outcome.FAILED, reason)
        st.last_seen = generation.raw_status
        if generation.status is GenStatus.RUNNING:
            st.running_at = elapsed + delay
            continue
        if generation.status is GenStatus.FAILED:
            shared.ceilings.refund(spec.display, rid)  # failed generations are not billed
            reason = f"generation {generation.raw_status}: {generation.error or 'no reason given'}"
            await manifest.record_failed(rid, reason, stage="generate", retryable=True)
            return Result(Outcome.FAILED, reason)
        if not completed:
            completed = True
            await manifest.record_completed(rid)
            if learn:
                seen = shared.clock.wall() - submitted_at
                shared.scheduler.observe(seen, request.model, running_at=st.running_at,
                                         censored=st.running_at is None)
        if generation.video_url is None:
            st.empty_done += 1
            if st.empty_done > EMPTY_DONE_LIMIT:
                reason = f"generation {generation.raw_status} but the API named no video URL"
                await manifest.record_failed(rid, reason, stage="download", retryable=True)
                return Result(Outcome.FAILED, reason)
            continue
        if slot is not None:
            slot.release()  # the provider is done with it: the next request may go out
        try:
            return await fetch_video(shared, spec, request, client, generation.video_url)
        except ExpiredUrl as exc:
            st.refreshes += 1
            if st.refreshes > shared.url_refreshes:
                reason = f"{exc} — {shared.url_refreshes} fresh URLs were refused too"
                if recovering:
                    reason = (
                        f"the video of paid generation {generation_id} can no longer be "
                        f"downloaded ({reason}) — `runner run --regenerate-lost` pays for a "
                        "new one"
                    )
                    await manifest.record_lost(rid, reason)
                    return Result(Outcome.LOST, reason)
                await manifest.record_failed(rid, reason, stage="download", retryable=True)
                return Result(Outcome.FAILED, reason)
            immediate = True  # ask the API for a freshly signed URL right away


async def fetch_video(
    shared: Shared, spec: SpecRun, request: Request, client: ApiClient, url: str
) -> Result:
    """Download, probe and record one video; raise `ExpiredUrl` to get a fresh URL."""
    manifest = spec.manifest
    rid = request.id
    dest = spec.folder / request.output
    allow_http = is_loopback_url(client.base_url)  # the sandbox serves plain http locally
    attempt = 0
    while True:
        try:
            result = await download(shared.downloads, url, dest, allow_loopback_http=allow_http)
            break
        except ExpiredUrl:
            raise
        except DownloadError as exc:
            attempt += 1
            if not exc.retryable or attempt >= shared.download_attempts:
                await manifest.record_failed(
                    rid, str(exc), stage="download", retryable=exc.retryable
                )
                return Result(Outcome.FAILED, str(exc))
            await shared.clock.sleep(shared.policy.backoff(attempt, shared.rng))
    return await _settle(shared, spec, request, result.size, result.sha256, result.seconds, "api")


async def _settle(
    shared: Shared,
    spec: SpecRun,
    request: Request,
    size: int,
    sha256: str,
    seconds: float,
    source: str,
) -> Result:
    """Probe the video now at its path, record it, write its sidecar and poster, store it."""
    manifest = spec.manifest
    rid = request.id
    dest = spec.folder / request.output
    try:
        facts, jpeg = await asyncio.to_thread(_probe_and_poster, dest)
    except NotAVideo as exc:
        dest.unlink(missing_ok=True)  # never leave a non-video where a video belongs
        reason = f"the {'downloaded' if source == 'api' else 'restored'} file is not a video: {exc}"
        await manifest.record_failed(rid, reason, stage="probe", retryable=True)
        return Result(Outcome.FAILED, reason)
    await manifest.record_downloaded(
        rid,
        output=request.output,
        size=size,
        sha256=sha256,
        mtime_ns=os.stat(dest).st_mtime_ns,
        video=facts.to_dict(),
        download_seconds=seconds,
        source=source,
    )
    # The sidecar, and the poster the end-of-run gallery shows (made now, while other
    # generations run, not all after the last one: 1,000 added ~4 s to a run's end).
    # In a thread: the sidecar's two fsyncs would hold up every other request's I/O.
    sidecar = sidecar_for(manifest.state[rid])
    await asyncio.to_thread(_write_beside, dest, sidecar, jpeg, poster_path(spec.folder, rid))
    if spec.store is not None and source != "store":
        await store_video(shared, spec, dest, sha256, render_sidecar(sidecar))
    outcome = Outcome.DONE if source == "api" else Outcome.RESTORED
    return Result(outcome, video_seconds=facts.duration)


async def store_video(
    shared: Shared, spec: SpecRun, video: Path, sha256: str, sidecar: bytes
) -> None:
    """Give a verified video and its sidecar to the store; a refusal is noted, not fatal.

    The video is safe in this tree either way; the next run offers it to the store again.
    """
    assert spec.store is not None
    try:
        await asyncio.to_thread(spec.store.put, video, sha256, sidecar)
    except StoreError as exc:
        shared.unstored.append(f"{video}: {exc}")


async def restore(
    shared: Shared, spec: SpecRun, request: Request, moved_from: str | None
) -> Result:
    """Put a recorded video back at its path: from its old output path, else the store."""
    state = spec.manifest.state[request.id]
    sha, size = state.sha256, state.size
    dest = spec.folder / request.output
    if sha is None or size is None:  # pragma: no cover - decide() restores recorded videos only
        msg = f"request {request.id} has no recorded video to restore"
        raise AssertionError(msg)
    started = shared.clock.monotonic()
    if moved_from is not None:
        old = spec.folder / moved_from
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(old, dest)
            fsync_dir(dest.parent)
            fsync_dir(old.parent)
            old_sidecar = sidecar_of(old)
            if old_sidecar.is_file() and _names(old_sidecar, request.id):
                old_sidecar.unlink()
        except OSError as exc:
            raise storage_error(exc, dest) from exc
        source = "local"
    else:
        assert spec.store is not None
        try:
            size = await asyncio.to_thread(spec.store.get, sha, dest)
        except StoreError as exc:
            reason = f"could not restore it from the store: {exc}"
            return Result(Outcome.FAILED, reason)
        source = "store"
    seconds = shared.clock.monotonic() - started
    return await _settle(shared, spec, request, size, sha, seconds, source)


def _names(sidecar: Path, rid: str) -> bool:
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("id") == rid


def _write_beside(video: Path, sidecar: Mapping[str, Any], jpeg: bytes | None,
                  poster: Path) -> None:
    """Write a video's sidecar and (when there is one) its poster (in a worker thread)."""
    write_sidecar(video, sidecar)
    if jpeg is not None:
        save_poster(jpeg, poster)


def _probe_and_poster(video: Path) -> tuple[VideoFacts, bytes | None]:
    """Probe `video` and render its poster from the same opening (in a worker thread).

    Raises `NotAVideo`; a frame swscale refuses only costs the poster (None).
    """
    import av  # loaded with the first video, as in runner.probe

    facts, frame = probe_frame(video, POSTER_AT)
    try:
        return facts, poster_jpeg(frame)
    except av.FFmpegError:
        return facts, None


def _warm_up() -> None:
    """`runner.poster.warm_up`, whose failure changes nothing: the first video then loads
    the same tools itself, and reports what goes wrong with them."""
    try:
        warm_up()
    except Exception:  # noqa: BLE001 - an optimisation only; the probe reports real errors
        return
