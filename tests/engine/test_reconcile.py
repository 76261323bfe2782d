"""Unknown outcomes settled from the usage logs: found, not yet, and absent past the horizon.

Each test leaves an unknown outcome in the manifest the way a crash does (a `submitting`
record with its client request id and nothing after it), written with a clock set to
when the POST went out, then runs the engine against a real sandbox whose usage logs
and counters decide and prove what happened.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from runner.api import ApiClient
from runner.clock import FakeClock, SystemClock
from runner.manifest import INTERRUPTED_SUBMIT, Manifest, read_state
from runner.polling import PollSettings
from runner.reconcile import HORIZON, Ledger, client_request_id
from runner.sandbox import RunningSandbox

from .conftest import FakeSpec, folder_of, run_on_sandbox


def _announce(spec: FakeSpec, tmp_path: Path, seconds_ago: float) -> str:
    """Record a POST of the spec's only request as sent `seconds_ago`, never answered."""
    (request,) = spec.requests
    client_id = client_request_id(request.id, 1)
    clock = FakeClock(start=time.time() - seconds_ago)
    with Manifest.open(folder_of(spec, tmp_path), clock=clock) as manifest:
        manifest.record_submitting(request, {}, client_request_id=client_id)
    return client_id


def _records(spec: FakeSpec, tmp_path: Path) -> list[dict[str, object]]:
    text = (folder_of(spec, tmp_path) / "manifest.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def test_absent_long_after_the_horizon_is_submitted_with_its_evidence(
    sandbox: RunningSandbox, spec_factory: Callable[..., FakeSpec], tmp_path: Path
) -> None:
    """A POST the logs never saw, sent 7 h ago, made nothing: it is submitted, once."""
    spec = spec_factory([1])
    client_id = _announce(spec, tmp_path, seconds_ago=HORIZON + 3600)
    summary = run_on_sandbox(spec, sandbox, tmp_path)
    assert summary.exit_code == 0 and summary.submissions == 1
    stats = sandbox.stats()
    assert stats["submissions"] == 1 and stats["log_queries"] >= 1
    forgotten = [r for r in _records(spec, tmp_path) if r["event"] == "forgotten"]
    (record,) = forgotten
    evidence = record["evidence"]
    assert isinstance(evidence, dict)
    assert evidence["client_request_id"] == client_id and evidence["source"] == "usage logs"
    assert record["reason"] == (
        f"absent from sandbox's usage logs {HORIZON / 3600:g} h after its POST: the request "
        "never arrived, so nothing was made or billed")
    (report,) = summary.reports
    assert report.outcome == "done" and report.paid  # this run paid for the new one


def test_absent_within_the_horizon_stays_unknown(
    sandbox: RunningSandbox, spec_factory: Callable[..., FakeSpec], tmp_path: Path
) -> None:
    """A POST sent a minute ago and not (yet) in the logs is not resent: it stays unknown."""
    spec = spec_factory([1])
    _announce(spec, tmp_path, seconds_ago=60)
    poll = PollSettings(floor=0.5, ceiling=5.0, timeout=30.0)
    summary = run_on_sandbox(spec, sandbox, tmp_path, poll=poll)
    assert summary.exit_code == 1 and summary.count("unknown") == 1
    (report,) = summary.reports
    assert (report.reason or "").startswith(f"{INTERRUPTED_SUBMIT}; not in sandbox's usage logs ")
    assert (report.reason or "").endswith(
        f"after the POST (a video's row appears when it ends) — the next run looks again, and "
        f"submits it only once {HORIZON / 3600:g} h have passed without a row")
    assert sandbox.stats()["submissions"] == 0
    (state,) = read_state(folder_of(spec, tmp_path)).values()
    assert state.status == "unknown"


def test_found_in_the_logs_is_collected_not_paid_again(
    sandbox: RunningSandbox, spec_factory: Callable[..., FakeSpec], tmp_path: Path
) -> None:
    """A POST the server accepted (its answer lost) is found by its client id: 0 resent."""
    spec = spec_factory([1])
    (request,) = spec.requests
    client_id = _announce(spec, tmp_path, seconds_ago=5)
    body = {**request.body, "image_url": next(iter(spec.images.values())).data_uri()}
    accepted = httpx.post(
        f"{sandbox.base_url}{request.endpoint}", json=body,
        headers={"Authorization": "Bearer k", "X-Client-Request-Id": client_id},
    )
    assert accepted.status_code < 300  # made and billed; the run never heard of it
    summary = run_on_sandbox(spec, sandbox, tmp_path)
    assert summary.exit_code == 0 and summary.submissions == 0
    assert sandbox.stats()["submissions"] == 1 and sandbox.stats()["duplicate_submissions"] == 0
    (state,) = read_state(folder_of(spec, tmp_path)).values()
    assert state.status == "done" and state.generation_id == accepted.json()["id"]
    (report,) = summary.reports
    assert report.outcome == "done" and not report.paid  # paid by the run that crashed
    (submitted,) = [r for r in _records(spec, tmp_path) if r["event"] == "submitted"]
    announced = _records(spec, tmp_path)[0]
    assert submitted["submitted_at"] == announced["ts"]  # when the POST went out
    evidence = submitted["evidence"]
    assert isinstance(evidence, dict) and evidence["client_request_id"] == client_id


def test_unreadable_usage_logs_leave_it_unknown_and_say_why(
    sandbox: RunningSandbox, spec_factory: Callable[..., FakeSpec], tmp_path: Path
) -> None:
    """With the logs unreadable nothing is resent: the report keeps the recorded reason
    and names the logs' trouble."""
    spec = spec_factory([1])
    _announce(spec, tmp_path, seconds_ago=HORIZON + 3600)
    sandbox.configure(logs=False)
    summary = run_on_sandbox(spec, sandbox, tmp_path)
    assert summary.exit_code == 1 and sandbox.stats()["submissions"] == 0
    (report,) = summary.reports
    assert report.outcome == "unknown"
    assert (report.reason or "").startswith(
        f"{INTERRUPTED_SUBMIT}; sandbox's usage logs cannot be read (")


def test_ledger_reads_every_page_once_for_many_lookups(
    sandbox: RunningSandbox, spec_factory: Callable[..., FakeSpec]
) -> None:
    """150 rows (two pages) are read once; every lookup after that is served from them."""
    spec = spec_factory([1])
    (request,) = spec.requests
    body = {**request.body, "image_url": next(iter(spec.images.values())).data_uri()}
    since = time.time() - 1
    sandbox.configure(latency=0.0)
    ids = []
    with httpx.Client(base_url=sandbox.base_url) as http:
        for number in range(150):
            client_id = client_request_id(request.id, number + 1)
            made = http.post(request.endpoint, json={**body, "seed": number},
                             headers={"Authorization": "Bearer k",
                                      "X-Client-Request-Id": client_id})
            ids.append((client_id, made.json()["id"]))

    async def look() -> list[str | None]:
        client = ApiClient("sandbox", sandbox.base_url, "k", SystemClock())
        try:
            ledger = Ledger(client, SystemClock(), refresh=3600.0)
            found = []
            for client_id, _ in ids:
                row, _evidence = await ledger.lookup(client_id, since)
                found.append(row.inference_id if row else None)
            return found
        finally:
            await client.aclose()

    deadline = time.monotonic() + 20
    while True:  # a generation's row appears once it has ended
        page = httpx.get(f"{sandbox.base_url}/v2/logs", params={"period": "1h", "limit": 1},
                         headers={"Authorization": "Bearer k"}).json()
        if page["pagination"]["total"] >= 150:
            break
        assert time.monotonic() < deadline, page["pagination"]
        time.sleep(0.05)
    before = sandbox.stats()["log_queries"]
    assert asyncio.run(look()) == [generation for _, generation in ids]
    assert sandbox.stats()["log_queries"] - before == 2  # 100 + 50 rows


def test_a_recent_post_is_looked_up_again_until_the_timeout(
    sandbox: RunningSandbox, spec_factory: Callable[..., FakeSpec], tmp_path: Path
) -> None:
    """Sent 5 s ago and not (yet) in the logs: the run looks again on the poll schedule
    until --timeout has passed since the POST, then leaves it unknown, unsent."""
    spec = spec_factory([1])
    _announce(spec, tmp_path, seconds_ago=5)
    poll = PollSettings(floor=0.5, ceiling=5.0, timeout=30.0)
    clock = FakeClock(start=time.time())  # virtual waits: however slow the machine, it waits
    summary = run_on_sandbox(spec, sandbox, tmp_path, clock, poll=poll)  # type: ignore[arg-type]
    assert len(clock.slept) >= 3  # looked up, waited, looked up again...
    (report,) = summary.reports
    assert report.outcome == "unknown" and sandbox.stats()["submissions"] == 0
    waited = re.search(r"usage logs (?:(\d+)m)?(\d+)s after the POST", report.reason or "")
    assert waited is not None, report.reason
    assert int(waited.group(1) or 0) * 60 + int(waited.group(2)) >= 30, report.reason
