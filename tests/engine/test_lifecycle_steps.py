"""Submitting and settling unknown outcomes, driven one step at a time.

Each test runs `runner.lifecycle.submit` or `reconcile` in the test process against a
scripted API (httpx.MockTransport) on a virtual clock, and decides when things happen:
a provider paused or aborted while a request waits at its gate, every sending slot held
while a request queues for one, a POST announced an exact time ago. What it checks is
what the run reports for the request (the report's outcome and line), what the manifest
records, which POSTs go out and when, and how long each wait lasts on the clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import resource
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from runner.api import ApiClient, download_client
from runner.budget import Budget, Ceilings
from runner.clock import FakeClock, VirtualClock
from runner.errors import AuthError, StorageError
from runner.layout import display_path
from runner.lifecycle import Outcome, Result, Shared, SpecRun, reconcile, submit
from runner.manifest import INTERRUPTED_SUBMIT, MANIFEST_NAME, Manifest
from runner.polling import PollScheduler, PollSettings
from runner.reconcile import HORIZON, Ledger, client_request_id
from runner.request import Request
from runner.retry import RetryPolicy
from runner.slots import Slot
from runner.transport import OPENING
from runner.usage import iso_ms

from .conftest import make_image, make_request
from .test_engine_mocked import ScriptedApi, _error

API = "https://api.aimlapi.com"
KEY = "sk-test-0123456789"
START = 1_700_000_000.0  # the virtual clock's wall time when a test begins
RETRY = RetryPolicy(base=1.0, max_backoff=8.0, max_attempts=8, retry_after_cap=300.0)
REFUSED = f"could not connect to {API}: ConnectError: connection refused"  # as ApiClient says
POLL = PollSettings(floor=1.0, ceiling=100.0, timeout=30.0, jitter=0.0)

Answer = Callable[[httpx.Request], Awaitable[httpx.Response]]


@dataclass
class Provider:
    """aimlapi as scripted: POSTs answered by `create` (default: accepted), polls and
    the video by ScriptedApi, and usage logs listing `logged` (empty: nothing found)."""

    clock: VirtualClock
    create: Answer | None = None
    scripted: ScriptedApi = field(default_factory=ScriptedApi)
    posts: list[httpx.Request] = field(default_factory=list)
    posted_at: list[float] = field(default_factory=list)
    polled_at: list[float] = field(default_factory=list)
    logged: list[dict[str, Any]] = field(default_factory=list)
    log_reads: int = 0

    async def api(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v2/logs":
            self.log_reads += 1
            return httpx.Response(200, json={
                "data": self.logged,
                "pagination": {"total": len(self.logged), "has_more": False},
            })
        if request.method != "POST":
            self.polled_at.append(self.clock.monotonic())
            return self.scripted.api(request)
        self.posts.append(request)
        self.posted_at.append(self.clock.monotonic())
        if self.create is not None:
            return await self.create(request)
        return self.scripted.api(request)

    def log(self, client_id: str, inference_id: str) -> None:
        """List one finished generation of `client_id` in the usage logs."""
        self.logged.append({
            "created": iso_ms(self.clock.wall()), "status": "completed",
            "model": "runway/gen4_turbo", "inference_id": inference_id,
            "client_request_id": client_id, "cost": {"usd": 0.25, "credits": 525},
        })


@dataclass
class Run:
    """One run's shared state, one spec and its two requests, and what it told the user."""

    shared: Shared
    spec: SpecRun
    requests: Sequence[Request]
    notes: list[str]

    def records(self) -> list[dict[str, Any]]:
        """Return the manifest's records, in order."""
        text = (self.spec.folder / MANIFEST_NAME).read_text(encoding="utf-8")
        return [json.loads(line) for line in text.splitlines()]


@contextlib.asynccontextmanager
async def running(
    tmp_path: Path,
    provider: Provider,
    *,
    ledger: bool = True,
    poll: PollSettings = POLL,
    priors: dict[str, list[float]] | None = None,
) -> AsyncIterator[Run]:
    """Build what a run shares for one aimlapi spec, as the engine does, and close it."""
    clock = provider.clock
    client = ApiClient("aimlapi", API, KEY, clock, transport=httpx.MockTransport(provider.api))
    downloads = download_client(transport=httpx.MockTransport(provider.scripted.cdn))
    image = make_image(tmp_path / "images")
    requests = [make_request(image, seed, provider="aimlapi") for seed in (1, 2)]
    folder = tmp_path / "outputs" / "sweep"
    manifest = Manifest.open(folder, clock=clock)
    rng = random.Random(0)
    notes: list[str] = []
    shared = Shared(
        clients={"aimlapi": client},
        downloads=downloads,
        scheduler=PollScheduler(poll, rng, priors),
        poll=poll,
        policy=RETRY,
        clock=clock,
        rng=rng,
        notify=notes.append,
        ledgers={"aimlapi": Ledger(client, clock, refresh=poll.floor)} if ledger else {},
    )
    spec = SpecRun("sweep", "specs/sweep.yaml", folder, manifest, {image.sha256: image})
    try:
        yield Run(shared, spec, requests, notes)
    finally:
        manifest.close()
        await client.aclose()
        await downloads.aclose()


def _announce(
    tmp_path: Path, request: Request, at: float, client_id: str | None
) -> None:
    """Leave the intent of a POST sent at wall time `at` and never answered (a crash)."""
    folder = tmp_path / "outputs" / "sweep"
    with Manifest.open(folder, clock=FakeClock(start=at)) as manifest:
        manifest.record_submitting(request, {}, client_request_id=client_id)


def _refused(status: int, message: str, retry_after: str | None = None) -> Answer:
    async def answer(_request: httpx.Request) -> httpx.Response:
        response = _error(status, message)
        if retry_after is not None:
            response.headers["Retry-After"] = retry_after
        return response

    return answer


# ------------------------------------------------------------------ waiting to be sent


def test_a_request_waiting_out_a_pause_is_not_sent_once_the_run_aborts(tmp_path: Path) -> None:
    """A 401 elsewhere while this request waits out its provider's pause: it is not run,
    its report line is the abort's, nothing is POSTed and nothing recorded."""
    clock = VirtualClock(start=START)

    async def scenario() -> None:
        provider = Provider(clock)
        async with running(tmp_path, provider) as run:
            run.shared.hold("aimlapi", 20.0)
            waiting = asyncio.create_task(submit(run.shared, run.spec, run.requests[0]))
            await clock.sleep(5.0)
            assert provider.posts == []  # still paused
            run.shared.abort = AuthError("HTTP 401: Invalid API key — check AIMLAPI_API_KEY")
            assert await waiting == Result(Outcome.NOT_RUN, str(run.shared.abort))
            assert provider.posts == [] and dict(run.spec.manifest.state) == {}

    clock.run(scenario())


async def _queued_for_a_sending_slot(
    run: Run, clock: VirtualClock, seconds: float
) -> tuple[Any, asyncio.Task[str | Result]]:
    """Take every sending slot of the provider, start a submission (which queues for
    one), and let `seconds` pass; return the slots and the queued submission."""
    slots = run.shared.sending("aimlapi")
    for _ in range(OPENING):
        await slots.acquire()
    queued = asyncio.create_task(submit(run.shared, run.spec, run.requests[0]))
    await clock.sleep(seconds)
    return slots, queued


@pytest.mark.parametrize("stop", ["provider", "abort"])
def test_a_request_queued_for_a_sending_slot_is_not_sent_once_stopped(
    stop: str, tmp_path: Path
) -> None:
    """Every sending slot of the provider is taken while the request queues for one; the
    provider stops (a quota) or the run aborts (a 401) meanwhile: once a slot frees, the
    request is not run, with that line, and no POST goes out."""
    clock = VirtualClock(start=START)

    async def scenario() -> None:
        provider = Provider(clock)
        async with running(tmp_path, provider) as run:
            slots, queued = await _queued_for_a_sending_slot(run, clock, 1.0)
            assert provider.posts == []  # queued behind the slots, not sent
            if stop == "provider":
                why = "aimlapi asks to wait 1h00m (HTTP 429: daily limit): a quota"
                run.shared.stop_provider("aimlapi", why)
                assert run.notes == [why]  # told once, as it happens
            else:
                run.shared.abort = AuthError("HTTP 403: out of credits")
                why = str(run.shared.abort)
            for _ in range(OPENING):
                slots.release()
            assert await queued == Result(Outcome.NOT_RUN, why)
            assert provider.posts == [] and dict(run.spec.manifest.state) == {}

    clock.run(scenario())


def test_a_request_waits_for_a_sending_slot_of_its_provider(tmp_path: Path) -> None:
    """With every sending slot of the provider taken, a request's POST waits; it goes
    out the moment one is given back."""
    clock = VirtualClock(start=START)

    async def scenario() -> None:
        provider = Provider(clock)
        async with running(tmp_path, provider) as run:
            slots, queued = await _queued_for_a_sending_slot(run, clock, 7.0)
            assert provider.posts == []
            slots.release()
            assert await queued == "gen-1"
            assert provider.posted_at == [START + 7.0]

    clock.run(scenario())


@pytest.mark.parametrize("retry_after", ["20", None])
def test_only_a_retry_after_pauses_the_providers_other_requests(
    retry_after: str | None, tmp_path: Path
) -> None:
    """A 429 with Retry-After: 20 pauses the provider: a request arriving meanwhile is
    sent only once the 20 s (and the jitter) are over, with the retry. A 503 without one
    only delays its own retry: a request arriving during that backoff is sent at once."""
    clock = VirtualClock(start=START)

    async def scenario() -> None:
        refused = asyncio.Event()
        status = 429 if retry_after else 503

        async def create(request: httpx.Request) -> httpx.Response:
            if len(provider.posts) == 1:
                refused.set()
                return await _refused(status, "slow down", retry_after)(request)
            return provider.scripted.api(request)

        provider = Provider(clock, create=create)
        async with running(tmp_path, provider) as run:
            first = asyncio.create_task(submit(run.shared, run.spec, run.requests[0]))
            await refused.wait()
            await clock.sleep(0.0)  # the refusal is handled: the first request backs off
            second = asyncio.create_task(submit(run.shared, run.spec, run.requests[1]))
            assert {await first, await second} == {"gen-1", "gen-2"}
            refused_at, *later = provider.posted_at
            assert refused_at == START and len(later) == 2
            if retry_after:
                assert min(later) >= START + 20.0
            else:
                assert min(later) == START  # the second request did not wait
                assert max(later) > START  # the retry did

    clock.run(scenario())


# --------------------------------------------------------------- what a POST leaves


def test_an_intent_records_the_images_it_sends(tmp_path: Path) -> None:
    """The `submitting` record names each image the request sends, as the user wrote its
    path (what `status` shows for an unanswered POST)."""
    clock = VirtualClock(start=START)

    async def scenario() -> None:
        provider = Provider(clock)
        async with running(tmp_path, provider) as run:
            request = run.requests[0]
            assert await submit(run.shared, run.spec, request) == "gen-1"
            (image,) = run.spec.images.values()
            (submitting, *_) = run.records()
            assert submitting["event"] == "submitting"
            assert submitting["images"] == {image.ref: display_path(image.path)}

    clock.run(scenario())


def test_a_request_whose_earlier_post_is_still_recorded_is_sent_as_its_next_attempt(
    tmp_path: Path,
) -> None:
    """A request submitted while its earlier POST is still on record (not forgotten) goes
    out with attempt 2 in its client request id, and the manifest counts two attempts."""
    clock = VirtualClock(start=START)
    request = make_request(make_image(tmp_path / "images"), 1, provider="aimlapi")
    _announce(tmp_path, request, START - 60, client_request_id(request.id, 1))

    async def scenario() -> None:
        provider = Provider(clock)
        async with running(tmp_path, provider) as run:
            assert await submit(run.shared, run.spec, request) == "gen-1"
            (post,) = provider.posts
            assert post.headers["x-client-request-id"].startswith(f"runner.{request.id}.2.")
            assert run.spec.manifest.state[request.id].attempts == 2

    clock.run(scenario())


def test_a_provider_that_answered_once_is_not_given_up_for_refused_connections(
    tmp_path: Path,
) -> None:
    """Once the provider answered a POST this run, three refused connections in a row
    are hiccups: the next request is retried until it is accepted, nothing is stopped."""
    clock = VirtualClock(start=START)

    async def scenario() -> None:

        async def create(request: httpx.Request) -> httpx.Response:
            if 2 <= len(provider.posts) <= 4:
                msg = "connection refused"
                raise httpx.ConnectError(msg, request=request)
            return provider.scripted.api(request)

        provider = Provider(clock, create=create)
        async with running(tmp_path, provider) as run:
            assert await submit(run.shared, run.spec, run.requests[0]) == "gen-1"
            assert await submit(run.shared, run.spec, run.requests[1]) == "gen-2"
            assert len(provider.posts) == 5
            assert run.shared.stopped == {} and run.notes == []

    clock.run(scenario())


def test_a_provider_never_reached_is_stopped_with_the_connection_error(tmp_path: Path) -> None:
    """Three refused connections and no answer ever: the request is not run, the line
    (told once) names the connection error, and its intent is forgotten as not sent,
    with that error."""
    clock = VirtualClock(start=START)

    async def scenario() -> None:
        async def create(request: httpx.Request) -> httpx.Response:
            msg = "connection refused"
            raise httpx.ConnectError(msg, request=request)

        provider = Provider(clock, create=create)
        async with running(tmp_path, provider) as run:
            result = await submit(run.shared, run.spec, run.requests[0])
            assert len(provider.posts) == 3
            (why,) = run.notes
            assert result == Result(Outcome.NOT_RUN, why)
            assert why == (
                f"aimlapi cannot be reached ({REFUSED}); nothing more is sent to it this "
                "run and its requests stay as they were — check --base-url or the network, "
                "then run the same command again")
            forgotten = [r["reason"] for r in run.records() if r["event"] == "forgotten"]
            assert forgotten[-1] == f"not sent: {REFUSED}"
            assert dict(run.spec.manifest.state) == {}

    clock.run(scenario())


def test_an_unanswered_post_without_usage_logs_is_reported_unknown_with_its_reason(
    tmp_path: Path,
) -> None:
    """Where no usage logs can settle it, a POST that got no answer is reported unknown
    with the same line the manifest records, and nothing is sent again."""
    clock = VirtualClock(start=START)

    async def scenario() -> None:
        async def create(request: httpx.Request) -> httpx.Response:
            msg = "timed out"
            raise httpx.ReadTimeout(msg, request=request)

        provider = Provider(clock, create=create)
        async with running(tmp_path, provider, ledger=False) as run:
            request = run.requests[0]
            result = await submit(run.shared, run.spec, request)
            state = run.spec.manifest.state[request.id]
            assert state.status == "unknown" and state.reason is not None
            assert state.reason.startswith("the request was sent but no answer came (")
            assert result == Result(Outcome.UNKNOWN, state.reason)
            assert len(provider.posts) == 1 and provider.log_reads == 0

    clock.run(scenario())


def test_an_accepted_post_that_cannot_be_recorded_names_its_generation(tmp_path: Path) -> None:
    """The disk fills between the POST and recording its answer: the one storage-error
    line also names the generation the provider made, and what to do about it."""
    clock = VirtualClock(start=START)

    async def scenario() -> None:
        limit = resource.getrlimit(resource.RLIMIT_FSIZE)
        path = tmp_path / "outputs" / "sweep" / MANIFEST_NAME

        async def create(request: httpx.Request) -> httpx.Response:
            # The intent is durable; the answer's record will not fit any more.
            resource.setrlimit(resource.RLIMIT_FSIZE, (path.stat().st_size + 10, limit[1]))
            return provider.scripted.api(request)

        provider = Provider(clock, create=create)
        old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        try:
            async with running(tmp_path, provider) as run:
                request = run.requests[0]
                with pytest.raises(StorageError) as info:
                    await submit(run.shared, run.spec, request)
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, limit)
            signal.signal(signal.SIGXFSZ, old_handler)
        assert str(info.value) == (
            f"cannot write {path}: the disk is full (or a file-size limit was hit) — free "
            f"some space and run again; finished records are kept — request {request.id} "
            "was accepted as generation 'gen-1', which could not be recorded: the next run "
            "reports it as unknown; look it up with the provider before choosing "
            "--resubmit-unknown")

    clock.run(scenario())


# --------------------------------------------------------- settling from the usage logs


def test_an_unknown_without_a_client_request_id_stays_unknown_unsent(tmp_path: Path) -> None:
    """An unanswered POST recorded without a client request id (older manifests) cannot
    be looked up: even days later it stays unknown with its recorded reason, and the logs
    are not read and nothing is sent."""
    clock = VirtualClock(start=START)
    request = make_request(make_image(tmp_path / "images"), 1, provider="aimlapi")
    _announce(tmp_path, request, START - 3 * HORIZON, None)

    async def scenario() -> None:
        provider = Provider(clock)
        async with running(tmp_path, provider) as run:
            result = await reconcile(run.shared, run.spec, request)
            assert result == Result(Outcome.UNKNOWN, INTERRUPTED_SUBMIT)
            assert provider.posts == [] and provider.log_reads == 0

    clock.run(scenario())


def test_a_recent_post_is_looked_up_again_on_the_cold_schedule(tmp_path: Path) -> None:
    """Sent 5 s ago and not in the logs: it is looked up again after 1.5 s, then 1.5x
    longer each time (floor 1 s, no jitter), the last wait ending at --timeout (30 s after
    the POST), where it stays unknown and unsent."""
    clock = VirtualClock(start=START)
    request = make_request(make_image(tmp_path / "images"), 1, provider="aimlapi")
    _announce(tmp_path, request, START - 5, client_request_id(request.id, 1))

    async def scenario() -> None:
        provider = Provider(clock)
        async with running(tmp_path, provider) as run:
            result = await reconcile(run.shared, run.spec, request)
            assert clock.slept == [1.5, 2.25, 3.375, 5.0625, 7.59375, 5.21875]
            assert result.outcome is Outcome.UNKNOWN and provider.posts == []
            assert "usage logs 30s after the POST" in (result.reason or "")

    clock.run(scenario())


def test_a_recent_post_is_looked_up_again_when_its_model_usually_ends(
    tmp_path: Path,
) -> None:
    """With the model's generations known to take 20 s, a POST sent 5 s ago and not in
    the logs is looked up next 16.6 s later (20 s + one gap of 1.6 s after the POST)."""
    clock = VirtualClock(start=START)
    request = make_request(make_image(tmp_path / "images"), 1, provider="aimlapi")
    _announce(tmp_path, request, START - 5, client_request_id(request.id, 1))

    async def scenario() -> None:
        provider = Provider(clock)
        priors = {request.model: [20.0] * 5}
        async with running(tmp_path, provider, priors=priors) as run:
            await reconcile(run.shared, run.spec, request)
            assert clock.slept[0] == pytest.approx(16.6)

    clock.run(scenario())


async def _held_slot() -> tuple[Slot, asyncio.Semaphore]:
    """Return a generation slot as a worker holds it, and the semaphore it frees."""
    semaphore = asyncio.Semaphore(1)
    await semaphore.acquire()
    return Slot(semaphore), semaphore


def _watch_slot(provider: Provider, semaphore: asyncio.Semaphore) -> list[bool]:
    """Record, at each video download, whether the generation slot was given back."""
    freed: list[bool] = []
    cdn = provider.scripted.cdn

    def download(request: httpx.Request) -> httpx.Response:
        freed.append(not semaphore.locked())
        return cdn(request)

    provider.scripted.cdn = download  # type: ignore[method-assign]
    return freed


def test_found_in_the_logs_is_polled_at_once_and_teaches_no_schedule(tmp_path: Path) -> None:
    """A POST found in the logs by its client id is polled at once (no wait), its slot is
    given back before the video downloads, and its age, which includes the time nobody
    polled it, does not teach the poll schedule; it is done and not paid by this run."""
    clock = VirtualClock(start=START)
    request = make_request(make_image(tmp_path / "images"), 1, provider="aimlapi")
    client_id = client_request_id(request.id, 1)
    _announce(tmp_path, request, START - 5, client_id)

    async def scenario() -> None:
        provider = Provider(clock, scripted=ScriptedApi(statuses=["completed"]))
        provider.log(client_id, "gen-7")
        slot, semaphore = await _held_slot()
        freed = _watch_slot(provider, semaphore)
        async with running(tmp_path, provider) as run:
            result = await reconcile(run.shared, run.spec, request, slot)
            assert result.outcome is Outcome.DONE and not result.paid
            assert provider.polled_at == [START] and provider.posts == []
            assert freed == [True]
            assert run.shared.scheduler.observed == 0
            assert run.spec.manifest.state[request.id].generation_id == "gen-7"

    clock.run(scenario())


def test_absent_exactly_at_the_horizon_is_submitted_and_collected(tmp_path: Path) -> None:
    """A POST absent from the logs exactly 6 h after it was sent is forgotten (under its
    own id) and submitted again; the new generation teaches the poll schedule, gives its
    slot back before its video downloads, and is reported paid with its video's seconds."""
    clock = VirtualClock(start=START)
    request = make_request(make_image(tmp_path / "images"), 1, provider="aimlapi")
    _announce(tmp_path, request, START - HORIZON, client_request_id(request.id, 1))

    async def scenario() -> None:
        provider = Provider(clock, scripted=ScriptedApi(statuses=["queued", "completed"]))
        slot, semaphore = await _held_slot()
        freed = _watch_slot(provider, semaphore)
        async with running(tmp_path, provider) as run:
            result = await reconcile(run.shared, run.spec, request, slot)
            (post,) = provider.posts
            assert post.headers["x-client-request-id"].startswith(f"runner.{request.id}.1.")
            forgotten = [r for r in run.records() if r["event"] == "forgotten"]
            assert [r["id"] for r in forgotten] == [request.id]
            state = run.spec.manifest.state[request.id]
            assert state.status == "done" and state.video is not None
            assert result == Result(
                Outcome.DONE, None, video_seconds=state.video["duration"], paid=True)
            assert result.video_seconds > 0
            assert freed == [True]
            assert run.shared.scheduler.observed == 1

    clock.run(scenario())



def test_a_paid_generation_whose_video_is_bad_keeps_its_charge(tmp_path: Path) -> None:
    """An unanswered POST found in the logs ($0.25 charged) whose video then turns out
    not to be a video fails at the probe, but its charge stays on the budget: with room
    for $0.375 the next request ($0.25 estimated) is not sent, and the run says why."""
    clock = VirtualClock(start=START)

    async def scenario() -> None:
        async def create(request: httpx.Request) -> httpx.Response:
            made = provider.scripted.api(request).json()
            provider.log(request.headers["x-client-request-id"], made["id"])
            msg = "connection reset after the body was sent"
            raise httpx.ReadError(msg, request=request)

        def garbage(request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, content=b"not a video at all",
                                  headers={"content-type": "video/mp4"})

        provider = Provider(clock, create=create, scripted=ScriptedApi(statuses=["completed"]))
        provider.scripted.cdn = garbage  # type: ignore[method-assign]
        async with running(tmp_path, provider) as run:
            run.shared.ceilings = Ceilings(run=Budget(0.375))
            run.shared.estimates = lambda _request: 0.25
            first, second = run.requests
            failed = await submit(run.shared, run.spec, first)
            assert isinstance(failed, Result) and failed.outcome is Outcome.FAILED
            state = run.spec.manifest.state[first.id]
            assert (state.status, state.stage) == ("failed", "probe")
            refused = await submit(run.shared, run.spec, second)
            assert isinstance(refused, Result) and refused.outcome is Outcome.NOT_RUN
            assert (refused.reason or "").startswith("budget: the next submission (est. $0.25)")
            assert "($0.25 spent or in flight)" in (refused.reason or "")
            assert len(provider.posts) == 1

    clock.run(scenario())
