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
import os
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import httpx

from runner.api import ApiClient, GenStatus, OutcomeUnknown, Rejected, Retryable
from runner.clock import Clock
from runner.download import DownloadError, ExpiredUrl, download
from runner.errors import AuthError, StorageError
from runner.loopback import is_loopback_url
from runner.manifest import Manifest
from runner.polling import PollScheduler, PollSettings
from runner.poster import POSTER_AT, poster_jpeg, poster_path, save_poster
from runner.probe import NotAVideo, VideoFacts, probe_frame
from runner.progress import format_duration
from runner.request import IMAGE_REF_PREFIX, LocalImage, Request, materialize
from runner.retry import GiveUp, Quota, RetryPolicy
from runner.sidecar import sidecar_for, write_sidecar

NOT_FOUND_LIMIT = 3  # 404s on a poll tolerated (a replica lagging behind) before failing
EMPTY_DONE_LIMIT = 3  # "completed" answers without a URL tolerated before failing
# Images up to this size are read and base64-encoded on the event loop (~0.1 ms): the
# hop to a worker thread and back would cost more CPU than the work itself.
INLINE_IMAGE_BYTES = 256 << 10


class Outcome(enum.Enum):
    """How one request ended in this run."""

    DONE = "done"  # the video is in place and verified
    FAILED = "failed"  # rejected, failed generation, bad download: recorded as failed
    UNKNOWN = "unknown"  # the POST's outcome is unknown: not resubmitted
    TIMED_OUT = "timed_out"  # still running at the deadline: stays pending for next run
    NOT_RUN = "not_run"  # never submitted (provider quota reached)


@dataclass(frozen=True, slots=True)
class Result:
    """What happened to one request in this run."""

    outcome: Outcome
    reason: str | None = None
    video_seconds: float = 0.0


@dataclass
class SpecRun:
    """One spec during a run: its folder, its locked manifest, its local images."""

    name: str
    display: str  # the spec file as the user named it
    folder: Path
    manifest: Manifest
    images: Mapping[str, LocalImage]  # sha256 hex -> image
    # display path per image: resolving it and the working folder is ~30 syscalls
    _shown: dict[str, str] = field(default_factory=dict, repr=False)

    def image_refs(self, request: Request) -> dict[str, str]:
        """Return the `sha256:…` -> display path map of the images `request` uses."""
        refs: dict[str, str] = {}
        for value in request.body.values():
            if isinstance(value, str) and value.startswith(IMAGE_REF_PREFIX):
                image = self.images.get(value[len(IMAGE_REF_PREFIX) :])
                if image is not None:
                    shown = self._shown.get(value)
                    if shown is None:
                        shown = self._shown[value] = _display(image.path)
                    refs[value] = shown
        return refs

    def image_bytes(self, request: Request) -> int:
        """Return the size of the image files `request` sends (0 without images)."""
        total = 0
        for value in request.body.values():
            if isinstance(value, str) and value.startswith(IMAGE_REF_PREFIX):
                image = self.images.get(value[len(IMAGE_REF_PREFIX) :])
                total += image.size if image is not None else 0
        return total


def _display(path: Path) -> str:
    """Show a path relative to the working folder when it lies below it."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.as_posix()


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
    stopped: dict[str, str] = field(default_factory=dict)  # provider -> why it stopped
    abort: AuthError | StorageError | None = None  # 401/403, cannot write: nothing more sent
    posting: set[asyncio.Task[Any]] = field(default_factory=set)  # tasks awaiting a POST
    not_before: dict[str, float] = field(default_factory=dict)  # provider -> monotonic

    def stop_provider(self, provider: str, why: str) -> None:
        """Stop every further submission to `provider` for this run (a quota)."""
        if provider not in self.stopped:
            self.stopped[provider] = why
            self.notify(why)

    async def wait_gate(self, provider: str) -> None:
        """Wait until `provider`'s last Retry-After has passed (one 429 pauses all)."""
        while (delay := self.not_before.get(provider, 0.0) - self.clock.monotonic()) > 0:
            await self.clock.sleep(delay)

    def hold(self, provider: str, seconds: float) -> None:
        """Pause all of `provider`'s submissions for `seconds`."""
        until = self.clock.monotonic() + seconds
        self.not_before[provider] = max(self.not_before.get(provider, 0.0), until)


async def submit(shared: Shared, spec: SpecRun, request: Request) -> str | Result:
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
        manifest.record_submitting(request, spec.image_refs(request))
        try:
            generation_id = await _post(shared, client, request.endpoint, body)
        except AuthError:
            manifest.record_forgotten(rid, "refused by the API (401/403): nothing was created")
            raise
        except Retryable as exc:
            decision = shared.policy.decide(attempt, exc.retry_after, shared.rng)
            if isinstance(decision, GiveUp):
                reason = f"not accepted after {decision.attempts} attempts: {exc.message}"
                manifest.record_failed(rid, reason, stage="submit", retryable=True)
                return Result(Outcome.FAILED, reason)
            manifest.record_forgotten(rid, f"not accepted, nothing created: {exc.message}")
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
            manifest.record_unknown(rid, exc.message)
            return Result(Outcome.UNKNOWN, exc.message)
        except Rejected as exc:
            reason = f"rejected by {request.provider}: {exc.message}"
            manifest.record_failed(rid, reason, stage="submit", retryable=False)
            return Result(Outcome.FAILED, reason)
        try:
            manifest.record_submitted(rid, generation_id)
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
    shared: Shared, client: ApiClient, endpoint: str, body: Mapping[str, object]
) -> str:
    """Send one create; while it is out, a run-wide abort lets it hear back first."""
    task = asyncio.current_task()
    assert task is not None  # always called from a worker task
    shared.posting.add(task)
    try:
        created = await client.create(endpoint, body)
    finally:
        shared.posting.discard(task)
    return created.generation_id


@dataclass
class _PollState:
    polls: int = 0
    not_found: int = 0
    empty_done: int = 0
    refreshes: int = 0
    last_seen: str = "not polled yet"


async def collect(
    shared: Shared,
    spec: SpecRun,
    request: Request,
    generation_id: str,
    submitted_at: float,
    *,
    learn: bool,
    poll_now: bool = False,
) -> Result:
    """Poll the generation until it ends, then download, probe and record its video.

    `submitted_at` is wall-clock epoch seconds (it may come from an earlier run);
    `learn` feeds the finished duration to the scheduler (only for this run's
    submissions: a resumed one's age includes the time nobody was polling).
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
        delay = 0.0 if immediate else shared.scheduler.next_delay(elapsed, st.polls)
        immediate = False
        await shared.clock.sleep(delay)
        st.polls += 1
        try:
            generation = await client.fetch(request.endpoint, generation_id)
        except Retryable as exc:
            st.last_seen = f"unreachable ({exc.message})"
            if exc.retry_after is not None:
                await shared.clock.sleep(min(exc.retry_after, shared.poll.ceiling))
            continue
        except Rejected as exc:
            if exc.status == 404 and st.not_found < NOT_FOUND_LIMIT:
                st.not_found += 1
                continue
            reason = f"polling generation {generation_id} failed: {exc.message}"
            manifest.record_failed(rid, reason, stage="generate", retryable=True)
            return Result(Outcome.FAILED, reason)
        st.last_seen = generation.raw_status
        if generation.status is GenStatus.RUNNING:
            continue
        if generation.status is GenStatus.FAILED:
            reason = f"generation {generation.raw_status}: {generation.error or 'no reason given'}"
            manifest.record_failed(rid, reason, stage="generate", retryable=True)
            return Result(Outcome.FAILED, reason)
        if not completed:
            completed = True
            manifest.record_completed(rid)
            if learn:
                shared.scheduler.observe(shared.clock.wall() - submitted_at)
        if generation.video_url is None:
            st.empty_done += 1
            if st.empty_done > EMPTY_DONE_LIMIT:
                reason = f"generation {generation.raw_status} but the API named no video URL"
                manifest.record_failed(rid, reason, stage="download", retryable=True)
                return Result(Outcome.FAILED, reason)
            continue
        try:
            return await fetch_video(shared, spec, request, client, generation.video_url)
        except ExpiredUrl as exc:
            st.refreshes += 1
            if st.refreshes > shared.url_refreshes:
                reason = f"{exc} — {shared.url_refreshes} fresh URLs were refused too"
                manifest.record_failed(rid, reason, stage="download", retryable=True)
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
                manifest.record_failed(rid, str(exc), stage="download", retryable=exc.retryable)
                return Result(Outcome.FAILED, str(exc))
            await shared.clock.sleep(shared.policy.backoff(attempt, shared.rng))
    try:
        facts, jpeg = await asyncio.to_thread(_probe_and_poster, dest)
    except NotAVideo as exc:
        dest.unlink(missing_ok=True)  # never leave a non-video where a video belongs
        reason = f"the downloaded file is not a video: {exc}"
        manifest.record_failed(rid, reason, stage="probe", retryable=True)
        return Result(Outcome.FAILED, reason)
    manifest.record_downloaded(
        rid,
        output=request.output,
        size=result.size,
        sha256=result.sha256,
        mtime_ns=os.stat(dest).st_mtime_ns,
        video=facts.to_dict(),
        download_seconds=result.seconds,
    )
    # The sidecar, and the poster the end-of-run gallery shows (made now, while other
    # generations run, not all after the last one: 1,000 added ~4 s to a run's end).
    # Written here, not in a thread: two small files cost less than the hop there and
    # back, and the manifest's own fsyncs already happen on the event loop.
    write_sidecar(dest, sidecar_for(manifest.state[rid]))
    if jpeg is not None:
        save_poster(jpeg, poster_path(spec.folder, rid))
    return Result(Outcome.DONE, video_seconds=facts.duration)


def _probe_and_poster(video: Path) -> tuple[VideoFacts, bytes | None]:
    """Probe `video` and render its poster from the same opening (in a worker thread).

    Raises `NotAVideo`; a frame swscale refuses only costs the poster (None).
    """
    facts, frame = probe_frame(video, POSTER_AT)
    try:
        return facts, poster_jpeg(frame)
    except av.FFmpegError:
        return facts, None
