"""What each submission leaves on the run's budget: released, charged, kept or refunded.

Every run reserves a submission's estimate before its POST (`runner.budget`); once the
POST's outcome is known the reservation is given back (nothing was made), replaced by
what the provider charged, kept (the outcome is unknown, so it may have been paid), or
refunded (the generation failed). Each test gives the budget room for a known number of
submissions and counts the POSTs that went out: a settlement done wrong either stops a
run that had money left or lets it spend past its ceiling.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from runner.clock import VirtualClock
from runner.manifest import read_state
from runner.usage import iso_ms

from .catalog_stub import RUNWAY_PER_SECOND
from .conftest import FakeSpec, folder_of
from .test_engine_mocked import ScriptedApi, _error, _run

ESTIMATE = 5 * RUNWAY_PER_SECOND  # what the stand-in's price list says a 5 s request costs
CREDITS_PER_USD = 2100  # what the API's cost headers and usage logs count besides USD


@pytest.fixture(autouse=True)
def _live_prices(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stand-in serves the price catalog, as the API does: let runs ask for it."""
    monkeypatch.delenv("RUNNER_PRICES")


class Provider:
    """A scripted API whose creates answer from `answers` in turn (the last repeats):
    an int is an HTTP error status, a float an acceptance charged that many USD
    (`x-aimlapi-usd-spent`, as the API sends it), "lost" a POST whose answer never came
    and "made" one whose answer never came although it made a generation — which the
    usage logs (`GET /v2/logs`) then list; with nothing to list they answer 404."""

    def __init__(
        self, answers: list[int | float | str], clock: VirtualClock | None = None,
        **scripted: Any,
    ) -> None:
        self.answers = answers
        self.clock = clock or VirtualClock()
        self.scripted = ScriptedApi(**scripted)
        self.posts: list[httpx.Request] = []
        self.logged: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v2/logs":
            if not self.logged:
                return _error(404, "Cannot GET /v2/logs")  # unknown stays unknown
            return httpx.Response(200, json={
                "data": self.logged,
                "pagination": {"total": len(self.logged), "has_more": False},
            })
        if request.method != "POST":
            return self.scripted.api(request)
        self.posts.append(request)
        answer = self.answers[min(len(self.posts) - 1, len(self.answers) - 1)]
        if answer == "made":
            made = self.scripted.api(request).json()
            self.logged.append({
                "created": iso_ms(self.clock.wall()), "status": "failed",
                "model": "runway/gen4_turbo", "inference_id": made["id"],
                "client_request_id": request.headers["x-client-request-id"],
                "cost": {"usd": ESTIMATE, "credits": round(ESTIMATE * CREDITS_PER_USD)},
            })
        if answer in ("lost", "made"):
            msg = "connection reset after the body was sent"
            raise httpx.ReadError(msg, request=request)
        if isinstance(answer, int):
            return _error(answer, "Body validation error: ratio")
        response = self.scripted.api(request)
        response.headers["x-aimlapi-usd-spent"] = f"{answer}"
        response.headers["x-aimlapi-credits-used"] = f"{round(answer * CREDITS_PER_USD)}"
        return response


def _spend(
    spec: FakeSpec, tmp_path: Path, provider: Provider, room: float, ceiling: str = "run",
    **options: Any,
) -> Any:
    """Run `spec` one request at a time under a `room` USD ceiling: the run's
    (`--max-cost`) or the spec's own (`budget:`)."""
    if ceiling == "spec":
        spec = replace(spec, budget=room)
    else:
        options["max_cost"] = room
    return _run(provider.scripted, spec, tmp_path, provider.clock, api=provider,
                concurrency=1, **options)


CEILINGS = pytest.mark.parametrize("ceiling", ["run", "spec"])


@CEILINGS
def test_a_post_refused_without_effect_gives_its_reservation_back(
    spec_factory: Callable[..., FakeSpec], tmp_path: Path, ceiling: str
) -> None:
    """Room for one: the first POST is rejected (400: nothing made, nothing billed), so
    its reservation goes back and the second request is still sent."""
    provider = Provider([400, ESTIMATE])
    spec = spec_factory([1, 2], provider="aimlapi")
    summary = _spend(spec, tmp_path, provider, room=1.5 * ESTIMATE, ceiling=ceiling)
    assert len(provider.posts) == 2
    assert summary.count("failed") == 1 and summary.count("done") == 1


@CEILINGS
def test_what_the_provider_charged_replaces_the_estimate(
    spec_factory: Callable[..., FakeSpec], tmp_path: Path, ceiling: str
) -> None:
    """Charged $0.05 against an estimate of $0.25, room for $0.40: each accepted request
    commits only its charge, so three go out (two at the estimate would have stopped it)."""
    provider = Provider([0.05])
    spec = spec_factory([1, 2, 3], provider="aimlapi")
    summary = _spend(spec, tmp_path, provider, room=0.40, ceiling=ceiling)
    assert len(provider.posts) == 3 and summary.count("done") == 3
    costs = [s.cost for s in read_state(folder_of(spec, tmp_path)).values()]
    assert costs == [{"usd": 0.05, "credits": 105}] * 3  # as the create's headers said


@CEILINGS
def test_an_unanswered_post_keeps_counting_against_the_ceiling(
    spec_factory: Callable[..., FakeSpec], tmp_path: Path, ceiling: str
) -> None:
    """A POST that got no answer may have started a paid generation: its estimate stays
    committed, so with room for one the next request is not sent, and the run says why."""
    provider = Provider(["lost", ESTIMATE])
    spec = spec_factory([1, 2], provider="aimlapi")
    summary = _spend(spec, tmp_path, provider, room=1.5 * ESTIMATE, ceiling=ceiling)
    assert len(provider.posts) == 1
    assert summary.count("unknown") == 1 and summary.count("not_run") == 1
    stopped = [r.reason for r in summary.reports if r.outcome == "not_run"]
    assert stopped[0] is not None and stopped[0].startswith("budget: the next submission")


@CEILINGS
def test_a_failed_generation_gives_its_charge_back(
    spec_factory: Callable[..., FakeSpec], tmp_path: Path, ceiling: str
) -> None:
    """A generation that fails is not billed: with room for one, the next is still sent."""
    provider = Provider([ESTIMATE], statuses=["queued", "failed"])
    spec = spec_factory([1, 2], provider="aimlapi")
    summary = _spend(spec, tmp_path, provider, room=1.5 * ESTIMATE, ceiling=ceiling)
    assert len(provider.posts) == 2 and summary.count("failed") == 2


@CEILINGS
def test_an_unanswered_post_the_logs_show_failed_gives_its_charge_back(
    spec_factory: Callable[..., FakeSpec], tmp_path: Path, ceiling: str
) -> None:
    """A POST without an answer, found in the usage logs as a generation that then
    failed: charged on being found, refunded on failing, so with room for one the next
    request is still sent."""
    provider = Provider(["made", ESTIMATE], statuses=["failed"])
    spec = spec_factory([1, 2], provider="aimlapi")
    summary = _spend(spec, tmp_path, provider, room=1.5 * ESTIMATE, ceiling=ceiling)
    assert len(provider.posts) == 2 and summary.count("failed") == 2
    first = read_state(folder_of(spec, tmp_path))[spec.requests[0].id]
    assert first.generation_id == "gen-1" and first.stage == "generate"
    assert first.cost == {"usd": ESTIMATE, "credits": 525}  # as its usage-log row said


def test_a_retried_request_forgets_its_failure_before_it_is_sent_again(
    spec_factory: Callable[..., FakeSpec], tmp_path: Path
) -> None:
    """--retry-failed: the manifest records why the failure was dropped, then one fresh
    submission (attempt 1 again) whose generation replaces it."""
    spec = spec_factory([1], provider="aimlapi")
    first = Provider([400])
    _spend(spec, tmp_path, first, room=1.0)
    again = Provider([ESTIMATE])
    summary = _spend(spec, tmp_path, again, room=1.0, retry_failed=True)
    assert summary.count("done") == 1 and len(again.posts) == 1
    path = folder_of(spec, tmp_path) / "manifest.jsonl"
    events = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[:3] == ["submitting", "failed", "forgotten"]
    assert events[2]["reason"].startswith("failed before (rejected by aimlapi: HTTP 400")
    assert events[2]["reason"].endswith("retried")
    (state,) = read_state(folder_of(spec, tmp_path)).values()
    assert state.status == "done" and state.attempts == 1
