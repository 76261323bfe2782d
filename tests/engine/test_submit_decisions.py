"""How a run submits: which failures are retried, recorded, or stop a provider.

Each test drives the real engine against a scripted API (httpx.MockTransport) on a
virtual clock and checks what a user would see afterwards: the manifest's records (what
was paid for, what may be retried), the reports, and how many POSTs went out.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from runner.clock import VirtualClock
from runner.lifecycle import INLINE_IMAGE_BYTES
from runner.manifest import read_state
from runner.request import LocalImage
from runner.retry import RetryPolicy

from .conftest import FakeSpec, folder_of, make_request
from .test_engine_mocked import ScriptedApi, _error, _run

RETRY = RetryPolicy(base=1.0, max_backoff=8.0, max_attempts=3, retry_after_cap=300.0)


def _events(spec: FakeSpec, tmp_path: Path) -> list[dict[str, Any]]:
    """Return the manifest's records, in order."""
    path = folder_of(spec, tmp_path) / "manifest.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _posts(seen: list[httpx.Request]) -> list[httpx.Request]:
    return [r for r in seen if r.method == "POST"]


class Answers:
    """A create endpoint answering each POST from a list (the last one repeats)."""

    def __init__(self, answers: list[httpx.Response], clock: VirtualClock | None = None):
        self.answers = answers
        self.scripted = ScriptedApi()
        self.posts: list[httpx.Request] = []
        self.posted_at: list[float] = []
        self.clock = clock

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method != "POST":
            return self.scripted.api(request)
        self.posts.append(request)
        if self.clock is not None:
            self.posted_at.append(self.clock.monotonic())
        answer = self.answers[min(len(self.posts) - 1, len(self.answers) - 1)]
        if answer.status_code == 200:
            return self.scripted.api(request)
        return answer


def test_a_refusal_that_created_nothing_is_retried_with_a_fresh_intent(
    spec_factory: Callable[..., FakeSpec], tmp_path: Path
) -> None:
    """503 twice, then accepted: one generation, each refused POST forgotten as 'nothing
    created', every POST announced first with its own client request id."""
    answers = Answers([_error(503, "busy"), _error(503, "busy"), httpx.Response(200)])
    spec = spec_factory([1], provider="aimlapi")
    summary = _run(answers.scripted, spec, tmp_path, api=answers, retry=RETRY, concurrency=1)
    assert summary.exit_code == 0 and summary.count("done") == 1
    posts = answers.posts
    assert len(posts) == 3
    rid = spec.requests[0].id
    ids = [p.headers["x-client-request-id"] for p in posts]
    assert all(i.startswith(f"runner.{rid}.1.") for i in ids) and len(set(ids)) == 3
    kinds = [e["event"] for e in _events(spec, tmp_path)]
    assert kinds[:7] == ["submitting", "forgotten", "submitting", "forgotten", "submitting",
                         "submitted", "completed"]
    forgotten = [e for e in _events(spec, tmp_path) if e["event"] == "forgotten"]
    assert all(e["reason"].startswith("not accepted, nothing created: ") for e in forgotten)
    assert all("busy" in e["reason"] for e in forgotten)


def test_refusals_past_the_attempts_fail_the_request_as_retryable(
    spec_factory: Callable[..., FakeSpec], tmp_path: Path
) -> None:
    """503 on every POST: after max_attempts the request fails at submit, retryable, with
    the count and the server's words; nothing was paid."""
    answers = Answers([_error(503, "busy")])
    spec = spec_factory([1], provider="aimlapi")
    summary = _run(answers.scripted, spec, tmp_path, api=answers, retry=RETRY)
    assert summary.exit_code == 1 and summary.count("failed") == 1
    assert len(answers.posts) == 3
    (report,) = summary.reports
    assert report.outcome == "failed"
    assert (report.reason or "").startswith("not accepted after 3 attempts: ")
    assert "busy" in (report.reason or "")
    (state,) = read_state(folder_of(spec, tmp_path)).values()
    assert state.id == spec.requests[0].id
    assert (state.status, state.stage, state.retryable) == ("failed", "submit", True)
    assert state.reason == report.reason
    assert state.generation_id is None and summary.submissions == 0


def test_a_rejected_body_fails_at_once_and_is_not_retryable(
    spec_factory: Callable[..., FakeSpec], tmp_path: Path
) -> None:
    """A 400 is the API refusing this body: one POST, failed at submit, not retryable,
    naming the provider and its message."""
    answers = Answers([_error(400, "seed must be an integer")])
    spec = spec_factory([1], provider="aimlapi")
    summary = _run(answers.scripted, spec, tmp_path, api=answers, retry=RETRY)
    assert len(answers.posts) == 1
    (report,) = summary.reports
    assert report.outcome == "failed"
    assert (report.reason or "").startswith("rejected by aimlapi: ")
    assert "seed must be an integer" in (report.reason or "")
    (state,) = read_state(folder_of(spec, tmp_path)).values()
    assert (state.status, state.stage, state.retryable) == ("failed", "submit", False)
    assert state.reason == report.reason


def test_a_retry_after_past_the_cap_stops_the_provider_for_the_run(
    spec_factory: Callable[..., FakeSpec], tmp_path: Path
) -> None:
    """429 asking for an hour (cap 300 s): no sleep, every request of that provider is
    not run with the quota's words, and none is recorded as sent."""
    quota = _error(429, "daily limit reached")
    quota.headers["Retry-After"] = "3600"
    answers = Answers([quota])
    spec = spec_factory([1, 2, 3], provider="aimlapi")
    clock = VirtualClock()
    start = clock.monotonic()
    summary = _run(answers.scripted, spec, tmp_path, clock=clock, api=answers, retry=RETRY,
                   concurrency=1)
    assert len(answers.posts) == 1
    assert summary.count("not_run") == 3
    reasons = {r.reason for r in summary.reports}
    assert len(reasons) == 1
    (why,) = reasons
    assert why is not None and why.startswith("aimlapi asks to wait 1h00m (")
    assert "daily limit reached" in why and "a quota, not a hiccup" in why
    assert clock.monotonic() - start < 3600
    assert read_state(folder_of(spec, tmp_path)) == {}


def test_a_short_retry_after_pauses_every_request_of_the_provider(
    spec_factory: Callable[..., FakeSpec], tmp_path: Path
) -> None:
    """429 with Retry-After: 20 (under the cap): the retry waits at least 20 s, and so
    does the other request's first POST (one 429 pauses the provider)."""
    clock = VirtualClock()
    limited = _error(429, "slow down")
    limited.headers["Retry-After"] = "20"
    answers = Answers([limited, httpx.Response(200)], clock=clock)
    spec = spec_factory([1, 2], provider="aimlapi")
    summary = _run(answers.scripted, spec, tmp_path, clock=clock, api=answers, retry=RETRY,
                   concurrency=1)
    assert summary.exit_code == 0 and summary.count("done") == 2
    first, *later = answers.posted_at
    assert len(later) == 2
    assert all(t - first >= 20.0 for t in later)


def test_an_unanswered_post_is_recorded_unknown_and_not_resent(
    spec_factory: Callable[..., FakeSpec], tmp_path: Path
) -> None:
    """A POST whose answer never arrives (read timeout) may have been billed: it is
    recorded unknown with the reason, and no second POST goes out."""
    seen: list[httpx.Request] = []

    def api(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            seen.append(request)
            raise httpx.ReadTimeout("timed out", request=request)
        return _error(404, "no logs kept")  # the usage logs: nothing to look up

    spec = spec_factory([1], provider="aimlapi")
    summary = _run(ScriptedApi(), spec, tmp_path, api=api, retry=RETRY)
    assert len(seen) == 1
    (report,) = summary.reports
    assert report.outcome == "unknown"
    (state,) = read_state(folder_of(spec, tmp_path)).values()
    assert state.status == "unknown" and state.reason is not None
    assert "may have started a paid generation" in state.reason
    assert (report.reason or "").startswith(state.reason)
    assert state.client_request_id == seen[0].headers["x-client-request-id"]


def test_a_large_image_is_sent_whole(tmp_path: Path) -> None:
    """An image past the inline size (read off the event loop) goes out as the same data:
    URI a small one would, and the request is recorded with its image reference."""
    path = tmp_path / "images" / "noise.png"
    path.parent.mkdir(parents=True)
    Image.frombytes("RGB", (320, 320), random.Random(1).randbytes(320 * 320 * 3)).save(path)
    data = path.read_bytes()
    image = LocalImage(sha256=hashlib.sha256(data).hexdigest(), path=path, mime="image/png",
                       width=320, height=320, size=len(data))
    assert image.size > INLINE_IMAGE_BYTES
    request = make_request(image, 1, provider="aimlapi")
    spec = FakeSpec("sweep", "specs/sweep.yaml", (request,), {image.sha256: image})
    scripted = ScriptedApi()
    assert _run(scripted, spec, tmp_path).exit_code == 0
    (post,) = _posts(scripted.seen)
    sent = json.loads(post.content)
    assert sent["image_url"].startswith("data:image/png;base64,")
    assert sent["seed"] == 1 and sent["prompt"] == request.body["prompt"]
    (submitting, *_) = _events(spec, tmp_path)
    assert submitting["event"] == "submitting"
    assert image.sha256 in json.dumps(submitting)


@pytest.mark.parametrize("status", [401, 403])
def test_an_auth_refusal_leaves_nothing_recorded_as_sent(
    status: int, spec_factory: Callable[..., FakeSpec], tmp_path: Path
) -> None:
    """401/403 on a create: its intent is forgotten with the reason (nothing was made)."""
    from runner.errors import AuthError

    answers = Answers([_error(status, "no")])
    spec = spec_factory([1], provider="aimlapi")
    with pytest.raises(AuthError):
        _run(answers.scripted, spec, tmp_path, api=answers, retry=RETRY)
    forgotten = [e for e in _events(spec, tmp_path) if e["event"] == "forgotten"]
    assert [e["reason"] for e in forgotten] == [
        "refused by the API (401/403): nothing was created"]


def test_a_submission_past_the_ceiling_is_not_sent_and_said_once(
    spec_factory: Callable[..., FakeSpec], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under a ceiling no request fits: nothing is POSTed, every request stays new with
    the budget's line as its reason, and that line is told once, not per request."""
    monkeypatch.delenv("RUNNER_PRICES")  # the stand-in serves the price catalog
    from runner.engine import RunOptions, Transports, execute
    from runner.progress import SilentReporter

    from .catalog_stub import with_catalog
    from .test_engine_mocked import KEY

    scripted = ScriptedApi()
    spec = spec_factory([1, 2, 3], provider="aimlapi")
    reporter = SilentReporter()
    clock = VirtualClock()
    opts = RunOptions(output_dir=tmp_path / "outputs", seed=0, max_cost=0.001, concurrency=1)
    summary = clock.run(execute(
        [(spec, list(spec.requests))], opts, clock=clock, reporter=reporter,
        environ={"AIMLAPI_API_KEY": KEY},
        transports=Transports(api=httpx.MockTransport(with_catalog(scripted.api)),
                              download=httpx.MockTransport(scripted.cdn)),
    ))
    assert [r for r in scripted.seen if r.method == "POST"] == []
    assert summary.count("not_run") == 3
    (why,) = {r.reason for r in summary.reports}
    assert why is not None and why.startswith("budget: the next submission (est. $")
    assert reporter.notes.count(why) == 1
    assert read_state(folder_of(spec, tmp_path)) == {}


def _refused(request: httpx.Request) -> httpx.Response:
    msg = "connection refused"
    raise httpx.ConnectError(msg, request=request)


def test_a_provider_never_reached_is_given_up_after_exactly_three_refusals(
    spec_factory: Callable[..., FakeSpec], tmp_path: Path
) -> None:
    """One at a time: the third refused connection stops the provider (not the second,
    not a fourth), and every request is told why and what to check."""
    posts: list[httpx.Request] = []

    def api(request: httpx.Request) -> httpx.Response:
        posts.append(request)
        return _refused(request)

    spec = spec_factory([1, 2], provider="aimlapi")
    summary = _run(ScriptedApi(), spec, tmp_path, api=api, retry=RETRY, concurrency=1)
    assert len(posts) == 3
    assert summary.count("not_run") == 2
    for report in summary.reports:
        reason = report.reason or ""
        assert reason.startswith("aimlapi cannot be reached (")
        assert reason.endswith(
            "); nothing more is sent to it this run and its requests stay as they were — "
            "check --base-url or the network, then run the same command again")
    assert read_state(folder_of(spec, tmp_path)) == {}


def test_refusals_after_the_provider_answered_are_hiccups_not_absence(
    spec_factory: Callable[..., FakeSpec], tmp_path: Path
) -> None:
    """Once the provider has answered, refused connections are retried like any refusal
    (the provider is not stopped): the request fails after its attempts, retryable."""
    scripted = ScriptedApi()

    def api(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and scripted.created >= 1:
            return _refused(request)
        return scripted.api(request)

    spec = spec_factory([1, 2], provider="aimlapi")
    summary = _run(scripted, spec, tmp_path, api=api, retry=RETRY, concurrency=1)
    assert summary.count("done") == 1 and summary.count("failed") == 1
    failed = next(r for r in summary.reports if r.outcome == "failed")
    assert (failed.reason or "").startswith("not accepted after 3 attempts: ")


def test_a_recorded_cost_is_what_the_provider_said_and_never_a_made_up_zero() -> None:
    """No price in the answer records no cost; either figure alone is kept as given."""
    from runner.lifecycle import cost_of

    assert cost_of(None, None) is None
    assert cost_of(0.25, None) == {"usd": 0.25, "credits": None}
    assert cost_of(None, 52) == {"usd": None, "credits": 52}
    assert cost_of(0.0, 0) == {"usd": 0.0, "credits": 0}
