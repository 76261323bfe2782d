"""The engine against a scripted stand-in for the remote API (httpx.MockTransport).

The real API cannot be reached from tests; this stand-in answers as api-facts.md
documents (statuses seen in the wild, the three `video` shapes, the error bodies), so
the engine's handling of them is checked without a network.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from runner.clock import VirtualClock
from runner.engine import RunOptions, Transports, execute
from runner.errors import AuthError
from runner.manifest import read_state
from runner.polling import PollSettings
from runner.progress import SilentReporter
from runner.sandbox.render import RenderJob, render_clip
from runner.summary import RunSummary

from .catalog_stub import with_catalog
from .conftest import FakeSpec, folder_of

KEY = "sk-live-SECRET-abcdef0123456789"


@pytest.fixture(autouse=True)
def _live_prices(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stand-in serves the price catalog, as the API does: let runs ask for it."""
    monkeypatch.delenv("RUNNER_PRICES")
API = "https://api.aimlapi.com"
CDN = "https://cdn.example.test"
CLIP = render_clip(
    RenderJob(
        model="runway/gen4_turbo", width=64, height=36, fps=4, duration=1, seed=1,
        prompt="p", image_sha256="x", image=None,
    )
)


@dataclass
class ScriptedApi:
    """Answers creates, polls and downloads; `statuses` scripts each generation's polls."""

    statuses: list[str] = field(default_factory=lambda: ["queued", "generating", "completed"])
    video_shape: str = "list"  # list | string | object
    error: Any = None
    create_status: int = 200
    create_body: Callable[[int], dict[str, Any]] = lambda n: {"id": f"gen-{n}", "status": "queued"}
    poll_status: int = 200
    seen: list[httpx.Request] = field(default_factory=list)
    created: int = 0
    polls: dict[str, int] = field(default_factory=dict)
    in_flight: int = 0  # generations accepted and not yet answered as ended
    max_in_flight: int = 0
    ended: set[str] = field(default_factory=set)

    def api(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        if request.method == "POST":
            if self.create_status != 200:
                return _error(self.create_status, "refused")
            self.created += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return httpx.Response(200, json=self.create_body(self.created))
        gid = request.url.params["generation_id"]
        if self.poll_status != 200:
            return _error(self.poll_status, "no")
        n = self.polls.get(gid, 0)
        self.polls[gid] = n + 1
        status = self.statuses[min(n, len(self.statuses) - 1)]
        body: dict[str, Any] = {"id": gid, "status": status}
        if status in ("completed", "succeeded", "error", "failed") and gid not in self.ended:
            self.ended.add(gid)
            self.in_flight -= 1
        if status in ("completed", "succeeded"):
            url = f"{CDN}/{gid}.mp4?_jwt=signed.token.value"
            body["video"] = {"list": [url], "string": url, "object": {"url": url}}[
                self.video_shape
            ]
        if self.error is not None and status in ("error", "failed", "cancelled"):
            body["error"] = self.error
        return httpx.Response(200, json=body)

    def cdn(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        return httpx.Response(200, content=CLIP, headers={"content-type": "video/mp4"})


def _error(status: int, message: str) -> httpx.Response:
    body = {"message": message, "path": "/v2/generate/video/runway/generation",
            "requestId": "r", "statusCode": status, "timestamp": "2025-01-01T00:00:00Z"}
    return httpx.Response(status, json=body)


def _run(
    scripted: ScriptedApi,
    spec: FakeSpec,
    tmp_path: Path,
    clock: VirtualClock | None = None,
    api: Callable[[httpx.Request], httpx.Response] | None = None,
    cdn: Callable[[httpx.Request], Any] | None = None,
    **options: Any,
) -> RunSummary:
    """Run `spec` against `scripted` (or other `api`/`cdn` handlers) on a virtual clock."""
    opts = RunOptions(
        output_dir=tmp_path / "outputs",
        poll=options.pop("poll", PollSettings(floor=5.0, ceiling=60.0, timeout=1800.0)),
        seed=0,
        **options,
    )
    transports = Transports(
        api=httpx.MockTransport(with_catalog(api or scripted.api)),
        download=httpx.MockTransport(cdn or scripted.cdn),
    )
    clock = clock or VirtualClock()
    return clock.run(
        execute(
            [(spec, list(spec.requests))],
            opts,
            clock=clock,
            reporter=SilentReporter(),
            environ={"AIMLAPI_API_KEY": KEY},
            transports=transports,
        )
    )


@pytest.mark.parametrize("shape", ["list", "string", "object"])
def test_statuses_outside_the_enum_count_as_running(
    shape: str, spec_factory: Callable[..., FakeSpec], tmp_path: Path
) -> None:
    """waiting/active/dreaming/THROTTLED keep polling; succeeded is done, in any video shape."""
    scripted = ScriptedApi(
        statuses=["waiting", "active", "dreaming", "THROTTLED", "brand-new", "succeeded"],
        video_shape=shape,
    )
    spec = spec_factory([1], provider="aimlapi")
    summary = _run(scripted, spec, tmp_path)
    assert summary.exit_code == 0
    assert scripted.polls == {"gen-1": 6}


@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        ("error", "Content moderation flagged the prompt", "Content moderation"),
        ("failed", {"name": "Error", "message": "image too small"}, "Error: image too small"),
        ("cancelled", {"detail": [{"loc": ["body", "seed"], "msg": "bad"}]}, "body.seed: bad"),
    ],
)
def test_terminal_failures_carry_their_error_text(
    status: str, error: Any, expected: str, spec_factory: Callable[..., FakeSpec], tmp_path: Path
) -> None:
    """error/failed/cancelled end the request as failed, with the API's error text."""
    scripted = ScriptedApi(statuses=["queued", status], error=error)
    spec = spec_factory([1], provider="aimlapi")
    summary = _run(scripted, spec, tmp_path)
    (report,) = summary.reports
    assert report.outcome == "failed"
    assert expected in (report.reason or "")
    (state,) = read_state(folder_of(spec, tmp_path)).values()
    assert state.status == "failed" and state.stage == "generate"


def test_generation_id_field_and_opaque_ids(
    spec_factory: Callable[..., FakeSpec], tmp_path: Path
) -> None:
    """A create answering `generation_id` with reserved characters is polled intact."""
    scripted = ScriptedApi(create_body=lambda n: {"generation_id": f"job/{n}:minimax?x&y"})
    spec = spec_factory([1], provider="aimlapi")
    assert _run(scripted, spec, tmp_path).exit_code == 0
    assert scripted.polls == {"job/1:minimax?x&y": 3}
    (state,) = read_state(folder_of(spec, tmp_path)).values()
    assert state.generation_id == "job/1:minimax?x&y"


def test_401_stops_the_run_at_once(
    spec_factory: Callable[..., FakeSpec], tmp_path: Path
) -> None:
    """A 401 stops the run after one request (exit 2: the key is configuration)."""
    scripted = ScriptedApi(create_status=401)
    spec = spec_factory([1, 2, 3], provider="aimlapi")
    with pytest.raises(AuthError, match="AIMLAPI_API_KEY") as raised:
        _run(scripted, spec, tmp_path, concurrency=1)
    assert raised.value.exit_code == 2
    assert len(scripted.seen) == 1
    assert read_state(folder_of(spec, tmp_path)) == {}


def test_403_while_polling_stops_the_run_and_keeps_the_generation(
    spec_factory: Callable[..., FakeSpec], tmp_path: Path
) -> None:
    """Out of credits while polling stops the run; the generation id stays recorded."""
    scripted = ScriptedApi(poll_status=403)
    spec = spec_factory([1], provider="aimlapi")
    with pytest.raises(AuthError, match="credits") as raised:
        _run(scripted, spec, tmp_path)
    assert raised.value.exit_code == 1
    (state,) = read_state(folder_of(spec, tmp_path)).values()
    assert state.status == "pending" and state.generation_id == "gen-1"


def test_missing_key_fails_before_any_request(
    spec_factory: Callable[..., FakeSpec], tmp_path: Path
) -> None:
    """Without AIMLAPI_API_KEY the run is a usage error (exit 2) and sends nothing."""
    from runner.errors import UsageError

    scripted = ScriptedApi()
    spec = spec_factory([1], provider="aimlapi")
    opts = RunOptions(output_dir=tmp_path / "outputs")
    with pytest.raises(UsageError, match="AIMLAPI_API_KEY") as info:
        asyncio.run(
            execute(
                [(spec, list(spec.requests))],
                opts,
                environ={},
                transports=Transports(api=httpx.MockTransport(with_catalog(scripted.api))),
            )
        )
    assert info.value.exit_code == 2
    assert scripted.seen == []
    assert not (tmp_path / "outputs").exists()


def test_concurrency_bounds_generations_in_flight(
    spec_factory: Callable[..., FakeSpec], tmp_path: Path
) -> None:
    """With --concurrency 2, never more than two generations are in flight at once."""
    scripted = ScriptedApi(statuses=["queued", "generating", "generating", "completed"])
    spec = spec_factory(list(range(1, 9)), provider="aimlapi")
    summary = _run(scripted, spec, tmp_path, concurrency=2)
    assert summary.count("done") == 8
    assert scripted.max_in_flight == 2


def test_the_next_request_goes_out_while_the_last_video_downloads(
    spec_factory: Callable[..., FakeSpec], tmp_path: Path
) -> None:
    """--concurrency 1 bounds generations, not downloads: a slow video holds no slot."""
    clock = VirtualClock()
    scripted = ScriptedApi()
    created_when_first_arrived: list[int] = []

    async def slow_cdn(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/gen-1.mp4":
            await clock.sleep(120)  # a slow CDN: two minutes for the first video
            created_when_first_arrived.append(scripted.created)
        return scripted.cdn(request)

    spec = spec_factory([1, 2, 3], provider="aimlapi")
    summary = _run(scripted, spec, tmp_path, clock, cdn=slow_cdn, concurrency=1)
    assert summary.count("done") == 3
    assert created_when_first_arrived == [3]  # both others were submitted meanwhile
    assert scripted.max_in_flight == 1  # ...one generation at a time


def test_key_goes_only_to_the_api_and_never_to_disk(
    spec_factory: Callable[..., FakeSpec], tmp_path: Path
) -> None:
    """The bearer key is sent to the API host only, and appears in no written file."""
    scripted = ScriptedApi()
    spec = spec_factory([1, 2], provider="aimlapi")
    assert _run(scripted, spec, tmp_path).exit_code == 0
    for request in scripted.seen:
        if request.url.host == "cdn.example.test":
            assert "authorization" not in request.headers
        else:
            assert request.headers["authorization"] == f"Bearer {KEY}"
    for path in (tmp_path / "outputs").rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
            assert b"_jwt" not in path.read_bytes(), path


def test_poll_429_retry_after_is_honoured(
    spec_factory: Callable[..., FakeSpec], tmp_path: Path
) -> None:
    """A 429 on a poll waits the server's Retry-After before polling again."""
    answers = iter([httpx.Response(429, json={"message": "slow"}, headers={"Retry-After": "17"})])
    scripted = ScriptedApi()

    def api(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            nxt = next(answers, None)
            if nxt is not None:
                return nxt
        return scripted.api(request)

    clock = VirtualClock()
    spec = spec_factory([1], provider="aimlapi")
    summary = _run(scripted, spec, tmp_path, clock, api=api)
    assert summary.exit_code == 0
    assert 17.0 in clock.slept


def test_adaptive_polling_learns_from_the_batch(
    spec_factory: Callable[..., FakeSpec], tmp_path: Path
) -> None:
    """Generations taking ~60 s are polled a few times each, not every 5-10 s."""

    @dataclass
    class Timed:
        clock: VirtualClock
        started: dict[str, float] = field(default_factory=dict)
        polls: int = 0
        created: int = 0

        def api(self, request: httpx.Request) -> httpx.Response:
            if request.method == "POST":
                self.created += 1
                gid = f"g{self.created}"
                self.started[gid] = self.clock.monotonic()
                return httpx.Response(201, json={"id": gid, "status": "queued"})
            self.polls += 1
            gid = request.url.params["generation_id"]
            done = self.clock.monotonic() - self.started[gid] >= 60.0
            body: dict[str, Any] = {"id": gid, "status": "completed" if done else "generating"}
            if done:
                body["video"] = [f"{CDN}/{gid}.mp4"]
            return httpx.Response(200, json=body)

    clock = VirtualClock()
    timed = Timed(clock)
    scripted = ScriptedApi()
    spec = spec_factory(list(range(1, 13)), provider="aimlapi")
    summary = _run(scripted, spec, tmp_path, clock, api=timed.api, concurrency=2)
    assert summary.count("done") == 12
    # A fixed 10 s interval needs 6 polls per 60 s generation (72 in all).
    assert timed.polls <= 12 * 2.5, timed.polls



def test_a_download_that_is_not_a_video_fails_and_retry_refetches_it(
    spec_factory: Callable[..., FakeSpec], tmp_path: Path
) -> None:
    """An HTML page where a video should be fails at probe; --retry-failed downloads the
    same paid generation again instead of resubmitting it."""
    scripted = ScriptedApi()
    html = {"on": True}

    def cdn(request: httpx.Request) -> httpx.Response:
        if html["on"]:
            return httpx.Response(200, content=b"<html>Access denied</html>")
        return scripted.cdn(request)

    spec = spec_factory([1], provider="aimlapi")
    transports = Transports(
        api=httpx.MockTransport(with_catalog(scripted.api)), download=httpx.MockTransport(cdn)
    )

    def run(**flags: Any) -> RunSummary:
        clock = VirtualClock()
        opts = RunOptions(output_dir=tmp_path / "outputs", seed=0, **flags)
        return clock.run(
            execute([(spec, list(spec.requests))], opts, clock=clock,
                    environ={"AIMLAPI_API_KEY": KEY}, transports=transports)
        )

    (report,) = run().reports
    assert report.outcome == "failed" and "not a video" in (report.reason or "")
    folder = folder_of(spec, tmp_path)
    assert not (folder / spec.requests[0].output).exists()
    (state,) = read_state(folder).values()
    assert state.stage == "probe"
    html["on"] = False
    assert run(retry_failed=True).exit_code == 0
    assert scripted.created == 1  # fetched again, not paid again


def test_plain_http_video_url_from_a_real_provider_is_refused(
    spec_factory: Callable[..., FakeSpec], tmp_path: Path
) -> None:
    """A non-loopback http:// video URL is never fetched: the request fails, no download."""
    scripted = ScriptedApi()

    def api(request: httpx.Request) -> httpx.Response:
        response = scripted.api(request)
        if request.method == "GET" and b"https://cdn" in response.content:
            body = json.loads(response.content.replace(b"https://cdn", b"http://cdn"))
            return httpx.Response(200, json=body)
        return response

    spec = spec_factory([1], provider="aimlapi")
    clock = VirtualClock()
    transports = Transports(
        api=httpx.MockTransport(with_catalog(api)), download=httpx.MockTransport(scripted.cdn)
    )
    summary = clock.run(
        execute([(spec, list(spec.requests))], RunOptions(output_dir=tmp_path / "o", seed=0),
                clock=clock, environ={"AIMLAPI_API_KEY": KEY}, transports=transports)
    )
    (report,) = summary.reports
    assert report.outcome == "failed"
    assert "https" in (report.reason or "")
    assert not any(r.url.host == "cdn.example.test" for r in scripted.seen)


def test_401_lets_posts_in_flight_hear_back_instead_of_leaving_unknowns(
    spec_factory: Callable[..., FakeSpec], tmp_path: Path
) -> None:
    """With three POSTs out when the first 401 lands, none is cut off (no unknowns) and
    no fourth request is sent."""
    seen: list[httpx.Request] = []

    async def api(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        await clock.sleep(0.01 * len(seen))  # answers arrive one after another (virtual time)
        return _error(401, "Invalid API key")

    spec = spec_factory([1, 2, 3, 4, 5, 6], provider="aimlapi")
    clock = VirtualClock()
    opts = RunOptions(output_dir=tmp_path / "outputs", concurrency=3, seed=0)
    with pytest.raises(AuthError):
        clock.run(
            execute([(spec, list(spec.requests))], opts, clock=clock,
                    environ={"AIMLAPI_API_KEY": KEY},
                    transports=Transports(api=httpx.MockTransport(with_catalog(api))))
        )
    assert len(seen) == 3
    assert read_state(folder_of(spec, tmp_path)) == {}


def test_a_provider_that_never_answers_is_given_up_after_a_few_connections(
    spec_factory: Callable[..., FakeSpec], tmp_path: Path
) -> None:
    """Connections refused with no answer ever: the provider stops after 3 refusals, not
    8 backoffs per request; every request is left new (nothing recorded as sent)."""
    attempts: list[str] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        attempts.append(request.url.path)
        msg = "connection refused"
        raise httpx.ConnectError(msg, request=request)

    spec = spec_factory(list(range(1, 21)), provider="aimlapi")
    summary = _run(ScriptedApi(), spec, tmp_path, api=refuse, concurrency=4)
    assert summary.count("not_run") == 20 and summary.exit_code == 1
    assert len(attempts) <= 3 + 3  # the third refusal stops it; others already in flight
    assert all("cannot be reached" in (r.reason or "") for r in summary.reports)
    assert read_state(folder_of(spec, tmp_path)) == {}
