"""Priors: the poll schedule starts from published metrics and earlier runs' times.

The engine runs on a virtual clock against a scripted API whose generations take 62-68 s
(the docs' gen4_turbo takes ~65 s), so hours of polling take milliseconds and the polls
each generation needed are counted exactly.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from runner import priors
from runner.clock import VirtualClock
from runner.engine import RunOptions, Transports, execute
from runner.layout import timings_of
from runner.polling import PollScheduler, PollSettings
from runner.sandbox import SandboxConfig, start_in_thread
from runner.sandbox.render import RenderJob, render_clip
from tests.engine.conftest import FakeSpec
from tests.sandbox.conftest import Client, body

CLIP = render_clip(RenderJob(model="runway/gen4_turbo", width=64, height=36, fps=4, duration=1,
                             seed=1, prompt="p", image_sha256="x", image=None))
PUBLISHED = {"p50": 65000, "p75": 66500, "p90": 67500, "p99": 68500}
POLL = PollSettings(floor=5.0, ceiling=60.0, timeout=1800.0)


@dataclass
class TimedApi:
    """Generations that end 62-68 virtual seconds after their POST; metrics on request."""

    clock: VirtualClock
    metrics: dict[str, object] | None = None  # None: GET /models/metrics answers 404
    rng: random.Random = field(default_factory=lambda: random.Random(5))
    ends: dict[str, float] = field(default_factory=dict)
    polls: dict[str, int] = field(default_factory=dict)
    metric_queries: list[httpx.Request] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        now = self.clock.monotonic()
        if request.url.host == "cdn.test":
            return httpx.Response(200, content=CLIP, headers={"content-type": "video/mp4"})
        if request.url.path == "/models/metrics":
            self.metric_queries.append(request)
            if self.metrics is None:
                return httpx.Response(404, json={"message": "not found"})
            return httpx.Response(200, json=self.metrics)
        if request.method == "POST":
            gid = f"g{len(self.ends)}"
            self.ends[gid] = now + self.rng.uniform(62.0, 68.0)
            return httpx.Response(200, json={"id": gid, "status": "queued"})
        gid = request.url.params["generation_id"]
        self.polls[gid] = self.polls.get(gid, 0) + 1
        if now < self.ends[gid]:
            return httpx.Response(200, json={"id": gid, "status": "generating"})
        video = [f"https://cdn.test/{gid}.mp4"]
        return httpx.Response(200, json={"id": gid, "status": "completed", "video": video})


def published_document() -> dict[str, object]:
    """Return a metrics document as the docs describe it, for gen4_turbo."""
    entry = {"alias": "runway/gen4_turbo", "endpoint": "/v2/generate/video/runway/generation",
             "metrics": {"duration_ms": PUBLISHED}}
    return {"window_seconds": 300, "generated_at": "2026-08-19T12:00:05.000Z", "models": [entry]}


def run_wave(spec: FakeSpec, root: Path, api: TimedApi, *, use_priors: bool = True,
             concurrency: int | None = None) -> None:
    """Run `spec` against `api` on its virtual clock (all at once unless `concurrency`)."""
    options = RunOptions(output_dir=root, concurrency=concurrency or len(spec.requests),
                         poll=POLL, seed=0, priors=use_priors)
    transports = Transports(httpx.MockTransport(api.handle), httpx.MockTransport(api.handle))
    summary = api.clock.run(execute([(spec, list(spec.requests))], options, clock=api.clock,
                                    environ={"AIMLAPI_API_KEY": "sk-test"},
                                    transports=transports))
    assert summary.count("done") == len(spec.requests), summary.reports[:2]


def polls_per_generation(api: TimedApi) -> float:
    """Return the mean number of status polls the generations needed."""
    return sum(api.polls.values()) / len(api.polls)


def test_published_percentiles_put_the_first_wave_on_schedule(
    spec_factory: Callable[..., FakeSpec], tmp_path: Path
) -> None:
    """With the provider's metrics the first wave needs at most 2 polls per generation;
    cold (nothing known) it backs off from the floor and needs 4 or more."""
    warm = TimedApi(VirtualClock(), metrics=published_document())
    run_wave(spec_factory(range(1, 13), provider="aimlapi"), tmp_path / "warm", warm)
    cold = TimedApi(VirtualClock())
    run_wave(spec_factory(range(1, 13), provider="aimlapi", name="cold"), tmp_path / "cold",
             cold, use_priors=False)
    assert polls_per_generation(warm) <= 2.0
    assert polls_per_generation(cold) >= 4.0
    (query,) = warm.metric_queries
    assert "authorization" not in query.headers  # the metrics need no key, and get none
    assert query.url.params.get_list("aliases") == ["runway/gen4_turbo"]


def test_a_second_run_starts_from_the_times_the_first_recorded(
    spec_factory: Callable[..., FakeSpec], tmp_path: Path
) -> None:
    """No metrics at all: the first run starts cold, learns, and writes the history file;
    a later run of other requests in the same output tree starts on schedule from it."""
    root = tmp_path / "outputs"
    first = TimedApi(VirtualClock())
    run_wave(spec_factory(range(1, 25), provider="aimlapi", name="first"), root, first,
             concurrency=8)
    history = json.loads(timings_of(root).read_text(encoding="utf-8"))
    times = history["durations"]["aimlapi"]["runway/gen4_turbo"]
    # The first wave's times, bracketed by cold polls far apart, are not kept; the
    # others, polled on schedule, are, and lie near the 62-68 s the API took.
    assert 16 <= len(times) < 24 and all(60.0 <= t <= 72.0 for t in times), times
    cold_wave = [first.polls[f"g{i}"] for i in range(8)]
    second = TimedApi(VirtualClock())
    run_wave(spec_factory(range(25, 33), provider="aimlapi", name="second"), root, second)
    assert polls_per_generation(second) <= 2.5 < 4.0 <= sum(cold_wave) / len(cold_wave)


def test_percentiles_become_durations_spread_like_them() -> None:
    """p50/p75/p90/p99 give 20 durations around the median, mirrored below it."""
    samples = priors.from_percentiles(PUBLISHED)
    assert len(samples) == priors.SAMPLES and samples == sorted(samples)
    assert 64.0 <= samples[len(samples) // 2] <= 66.0
    assert 61.0 <= samples[0] < 65.0 < samples[-1] <= 68.5
    assert priors.from_percentiles({"p50": 1000}) == []  # incomplete: no prior
    assert priors.from_percentiles({**PUBLISHED, "p50": "fast"}) == []


def test_a_prior_schedules_the_first_poll_near_the_expected_end() -> None:
    """Seeded with ~65 s, a fresh generation sleeps past the early edge (even beyond the
    ceiling), then polls every 8% of the typical time; without a prior it starts at the floor."""
    prior = {"runway/gen4_turbo": priors.from_percentiles(PUBLISHED)}
    seeded = PollScheduler(PollSettings(floor=5.0, ceiling=30.0, jitter=0.0), priors=prior)
    first = seeded.next_delay(0.0, 0, "runway/gen4_turbo")
    assert 60.0 <= first <= 68.0
    assert seeded.next_delay(first, 1, "runway/gen4_turbo") == max(0.08 * 65.0, 5.0)
    assert seeded.next_delay(0.0, 0, "other/model") == 5.0  # no prior for it: cold
    assert seeded.has_prior("runway/gen4_turbo") and not seeded.has_prior("other/model")


def test_own_durations_outweigh_the_prior_once_there_are_a_few() -> None:
    """After five generations of 20 s this run polls for 20 s, whatever the prior said."""
    seeded = PollScheduler(PollSettings(floor=1.0, ceiling=30.0, jitter=0.0),
                           priors={"m": [65.0] * 20})
    for _ in range(5):
        seeded.observe(20.0, "m")
    assert seeded.next_delay(0.0, 0, "m") < 25.0
    assert seeded.learned() == {"m": [20.0] * 5}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_or_broken_metrics_are_no_prior(tmp_path: Path) -> None:
    """A refused connection, a non-JSON answer or an odd shape give no prior, no error."""
    refused = asyncio.run(priors.published(f"http://127.0.0.1:{_closed_port()}", ["m"]))
    assert refused == {}

    def odd(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("aliases") == "text":
            return httpx.Response(200, text="<html>")
        return httpx.Response(200, json={"models": [{"alias": "shape", "metrics": []}]})

    transport = httpx.MockTransport(odd)
    for model in ("text", "shape"):
        assert asyncio.run(priors.published("https://api.test", [model], transport)) == {}
    timings_of(tmp_path).write_text("{not json", encoding="utf-8")
    assert priors.read_history(tmp_path) == {}


def test_the_sandbox_metrics_feed_the_prior_over_loopback() -> None:
    """Against a real sandbox: no data at first, then durations near its latency."""
    with start_in_thread(SandboxConfig(latency=0.3, jitter=0.0)) as running:
        assert asyncio.run(priors.published(running.base_url, ["runway/gen4_turbo"])) == {}
        Client(running.base_url).generate(body(seed=3))
        found = asyncio.run(priors.published(running.base_url, ["runway/gen4_turbo"]))
    samples = found["runway/gen4_turbo"]
    assert all(0.25 <= s <= 0.45 for s in samples), samples
