"""`GET /v2/logs` and `X-Client-Request-Id`: the sandbox's usage logs, as documented.

The three cases a client reconciling an unknown POST meets: the row is found; it is not
there yet (written only after the generation ends, `log_lag` later); it is never there
(the server never accepted the request).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
import requests

from runner.api import ApiClient, Created, OutcomeUnknown, Rejected, Retryable
from runner.clock import SystemClock
from runner.sandbox import FaultSpec, RunningSandbox
from runner.sandbox.ledger import LedgerRow, RateWindow
from runner.usage import LogsPage
from tests.sandbox.conftest import AUTH, ENDPOINT, Client, body
from tests.sandbox.test_contract import assert_error

Make = Callable[..., tuple[RunningSandbox, Client]]
HOUR = 3600.0


def _logs(client: Client, **params: Any) -> requests.Response:
    return client.session.get(client.base_url + "/v2/logs", params=params, headers=AUTH,
                              timeout=10)


def _rows(client: Client, **params: Any) -> list[dict[str, Any]]:
    response = _logs(client, **{"period": "1h", "limit": 100, **params})
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()["data"]
    return rows


def _with_api(client: Client, work: Callable[[ApiClient], Coroutine[Any, Any, Any]]) -> Any:
    async def go() -> Any:
        api = ApiClient("sandbox", client.base_url, "test-key", SystemClock())
        try:
            return await work(api)
        finally:
            await api.aclose()

    return asyncio.run(go())


def _page_now(api: ApiClient, **query: Any) -> Coroutine[Any, Any, LogsPage]:
    now = time.time()
    return api.logs(start=now - HOUR, end=now + 60, **query)


# ------------------------------------------------------------------ the three cases
def test_an_accepted_generation_is_found_by_its_client_request_id(client: Client) -> None:
    """Found: the row names our id, the generation id, succeeded, and a cost of the right shape."""

    async def work(api: ApiClient) -> tuple[Created, LogsPage]:
        created = await api.create(ENDPOINT, body(), client_request_id="run-1:req-a.1")
        return created, await _page_now(api)

    created, page = _with_api(client, work)
    (row,) = page.rows
    assert (row.client_request_id, row.inference_id, row.status) == (
        "run-1:req-a.1", created.generation_id, "succeeded")
    # The row costs what the create said it was charged (the sandbox's price list).
    assert row.model == "runway/gen4_turbo" and row.usd == created.usd and row.usd
    assert row.credits == created.credits == round(row.usd * 2_000_000)
    assert (page.total, page.has_more) == (1, False)


def test_a_row_is_missing_until_log_lag_after_the_end(make_sandbox: Make) -> None:
    """Not there yet: the generation exists (it polls) but its row waits for log_lag."""
    running, client = make_sandbox(log_lag=HOUR)
    created = client.create(body(), headers={**AUTH, "X-Client-Request-Id": "late-1"})
    gen_id = created.json()["id"]
    assert _rows(client) == []
    assert client.poll(gen_id).status_code == 200
    running.configure(log_lag=0.0)  # as if the hour had passed
    assert [r["client_request_id"] for r in _rows(client)] == ["late-1"]


def test_a_generation_still_running_has_no_row(make_sandbox: Make) -> None:
    """The row is written only after the generation ends, never while it runs."""
    running, client = make_sandbox(latency=HOUR)
    gen_id = client.create(body()).json()["id"]
    assert client.poll(gen_id).json()["status"] == "generating"
    assert _rows(client) == []
    assert running.stats()["generations"]["generating"] == 1


def test_a_request_never_accepted_is_never_found(make_sandbox: Make) -> None:
    """Never there: a POST refused with 503 leaves no row; its accepted retry leaves one."""
    _, client = make_sandbox(faults={"unavailable": FaultSpec(first=1)})

    async def work(api: ApiClient) -> LogsPage:
        with pytest.raises(Retryable):
            await api.create(ENDPOINT, body(), client_request_id="never-1")
        await api.create(ENDPOINT, body(), client_request_id="retry-1")
        return await _page_now(api)

    page = _with_api(client, work)
    assert [row.client_request_id for row in page.rows] == ["retry-1"]


def test_a_lost_answer_is_found_in_the_logs(make_sandbox: Make) -> None:
    """drop_after_accept: the client hears nothing, yet the logs name its generation."""
    running, client = make_sandbox(faults={"drop_after_accept": FaultSpec(first=1)})

    async def work(api: ApiClient) -> LogsPage:
        with pytest.raises(OutcomeUnknown):
            await api.create(ENDPOINT, body(), client_request_id="lost-1")
        return await _page_now(api)

    (row,) = _with_api(client, work).rows
    assert row.client_request_id == "lost-1"
    assert client.wait(row.inference_id)["status"] == "completed"  # the very generation
    assert running.stats()["submissions"] == 1


def test_a_failed_generation_is_a_failed_row_with_zero_cost(make_sandbox: Make) -> None:
    """failed_generation ends in error: its row is failed and costs nothing."""
    _, client = make_sandbox(faults={"failed_generation": FaultSpec(first=1)})
    gen_id = client.create(body()).json()["id"]
    (row,) = _rows(client)
    assert (row["inference_id"], row["status"]) == (gen_id, "failed")
    assert row["cost"] == {"usd": 0.0, "credits": 0}


# ------------------------------------------------------------------ the header
def test_a_valid_client_request_id_is_echoed(client: Client) -> None:
    """The create answer echoes a valid X-Client-Request-Id as x-client-request-id."""
    response = client.create(body(), headers={**AUTH, "X-Client-Request-Id": "a" * 128})
    assert response.headers["x-client-request-id"] == "a" * 128


@pytest.mark.parametrize("cid", ["a" * 129, "has space", "slash/no", "ünï"])
def test_an_invalid_client_request_id_is_silently_dropped(client: Client, cid: str) -> None:
    """Like the API: the request runs, nothing is echoed, and the row's id is null."""
    response = client.create(body(), headers={**AUTH, "X-Client-Request-Id": cid})
    assert response.status_code == 200
    assert "x-client-request-id" not in response.headers
    (row,) = _rows(client)
    assert row["client_request_id"] is None
    assert row["inference_id"] == response.json()["id"]


# ------------------------------------------------------------------ the documented shape
def test_rows_have_the_documented_fields(client: Client) -> None:
    """Every documented field is there, with the documented types."""
    client.create(body(), headers={**AUTH, "X-Client-Request-Id": "shape-1"})
    response = _logs(client, period="24h")
    page = response.json()
    assert set(page) == {"data", "pagination"}
    assert page["pagination"] == {"limit": 50, "offset": 0, "total": 1, "has_more": False}
    (row,) = page["data"]
    assert set(row) == {"created", "status", "origin", "model", "cost", "tokens", "request_id",
                        "inference_id", "client_request_id"}
    assert row["origin"] == "api" and row["tokens"] == {"input": 0, "output": 0, "total": 0}
    assert row["created"].endswith("Z") and len(row["created"]) == len("2026-07-02T03:04:05.000Z")
    assert response.headers["x-inference-id"]


def test_rows_come_newest_first_and_page(client: Client) -> None:
    """Five rows, two per page: newest first, totals and has_more as documented."""
    ids = [client.create(body(seed=s)).json()["id"] for s in range(5)]
    pages = [_logs(client, period="1h", limit=2, offset=o).json() for o in (0, 2, 4, 6)]
    seen = [row["inference_id"] for page in pages for row in page["data"]]
    assert seen == ids[::-1]
    assert [p["pagination"]["has_more"] for p in pages] == [True, True, False, False]
    assert {p["pagination"]["total"] for p in pages} == {5}


def test_model_and_status_filters_repeat_and_never_split_on_commas(make_sandbox: Make) -> None:
    """model= and status= repeat; `model=a,b` is one name that matches nothing."""
    _, client = make_sandbox(faults={"failed_generation": FaultSpec(first=1)})
    client.create(body(model="gen3a_turbo"))  # fails (the fault's first event)
    client.create(body())
    both = _rows(client, model=["runway/gen4_turbo", "gen3a_turbo"])
    assert [r["model"] for r in both] == ["runway/gen4_turbo", "gen3a_turbo"]
    assert [r["model"] for r in _rows(client, model="gen3a_turbo")] == ["gen3a_turbo"]
    assert _rows(client, model="runway/gen4_turbo,gen3a_turbo") == []
    assert [r["status"] for r in _rows(client, status="failed")] == ["failed"]
    assert len(_rows(client, status=["succeeded", "failed"])) == 2


def test_the_window_selects_rows_by_creation_time_in_utc(client: Client) -> None:
    """start/end bound the rows; a time without an offset is UTC; a window before has none."""
    client.create(body())
    (row,) = _rows(client)
    created = row["created"]  # e.g. 2026-07-02T03:04:05.123Z
    naive = created.removesuffix("Z")
    assert len(_rows(client, period=None, start=created, end=created)) == 1  # inclusive
    assert len(_rows(client, period=None, start=naive, end=naive)) == 1  # no offset: UTC
    shifted = naive + "+01:00"  # the same wall digits an hour earlier in UTC
    assert _rows(client, period=None, start=shifted, end=shifted) == []


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({}, "either period"),
        ({"period": "24h", "start": "2026-07-01T00:00:00Z"}, "not both"),
        ({"start": "2026-07-01T00:00:00Z"}, "together"),
        ({"end": "2026-07-01T00:00:00Z"}, "together"),
        ({"period": "24"}, "positive integer followed by h or d"),
        ({"period": "0h"}, "positive integer"),
        ({"period": "1w"}, "positive integer"),
        ({"period": "93d"}, "92 days"),
        ({"period": "2209h"}, "92 days"),
        ({"start": "yesterday", "end": "2026-07-01T00:00:00Z"}, "ISO-8601"),
        ({"start": "2026-07-02T00:00:00Z", "end": "2026-07-01T00:00:00Z"}, "earlier than start"),
        ({"start": "2026-01-01T00:00:00Z", "end": "2026-04-03T00:00:01Z"}, "92 days"),
        ({"period": "1h", "limit": "0"}, "limit must be 1-100"),
        ({"period": "1h", "limit": "101"}, "limit must be 1-100"),
        ({"period": "1h", "limit": "ten"}, "limit must be an integer"),
        ({"period": "1h", "offset": "-1"}, "offset must be >= 0"),
        ({"period": "1h", "status": "succeeded,failed"}, "status must be succeeded or failed"),
        ({"period": "1h", "model": [f"m{i}" for i in range(51)]}, "at most 50"),
    ],
)
def test_bad_queries_are_400_with_the_api_error_body(
    client: Client, params: dict[str, Any], words: str
) -> None:
    """Each documented 400 case answers with the API's error body, saying what is wrong."""
    assert_error(_logs(client, **params), 400, "Query validation error", words)


def test_a_92_day_window_is_allowed(client: Client) -> None:
    """The limit itself is inside: exactly 92 days, or period=92d, is answered."""
    assert _logs(client, start="2026-01-01T00:00:00Z", end="2026-04-03T00:00:00Z").ok
    assert _logs(client, period="92d").ok


def test_logs_need_a_bearer_key(client: Client) -> None:
    """Without a key: 401 with the API's error body."""
    response = client.session.get(client.base_url + "/v2/logs", params={"period": "1h"})
    assert_error(response, 401, "Bearer")


def test_queries_past_the_rate_are_429_with_retry_after(make_sandbox: Make) -> None:
    """Over log_rate queries per window: 429 with Retry-After, which the client carries."""
    _, client = make_sandbox(log_rate=2)
    assert _logs(client, period="1h").ok and _logs(client, period="1h").ok
    refused = _logs(client, period="1h")
    assert_error(refused, 429, "Too Many Requests")
    assert 1 <= int(refused.headers["Retry-After"]) <= 60

    async def work(api: ApiClient) -> None:
        await _page_now(api)

    with pytest.raises(Retryable) as info:
        _with_api(client, work)
    assert info.value.status == 429 and info.value.retry_after is not None


def test_the_rate_window_slides() -> None:
    """Two per 10 s: the third waits until the oldest leaves the window, then passes."""
    window = RateWindow()
    assert window.wait(0.0, 2, 10.0) is None and window.wait(4.0, 2, 10.0) is None
    assert window.wait(5.0, 2, 10.0) == 5
    assert window.wait(10.0, 2, 10.0) is None  # the one at 0 has left
    assert window.wait(10.5, 2, 10.0) == 4  # the one at 4 leaves at 14


def test_a_provider_without_logs_answers_404(make_sandbox: Make) -> None:
    """logs=false plays a provider without usage logs: 404, which the client rejects."""
    running, client = make_sandbox(logs=False)
    assert_error(_logs(client, period="1h"), 404)

    async def work(api: ApiClient) -> None:
        await _page_now(api)

    with pytest.raises(Rejected, match="no usage logs"):
        _with_api(client, work)
    running.configure(logs=True)
    assert _logs(client, period="1h").ok


def test_log_queries_are_counted_in_stats(client: Client) -> None:
    """/_sandbox/stats counts every logs query, refused ones too; DELETE zeroes it."""
    _logs(client, period="1h")
    _logs(client, period="bad")
    assert client.stats()["log_queries"] == 2
    assert client.session.delete(client.base_url + "/_sandbox/stats").json()["log_queries"] == 0


# ------------------------------------------------------------------ persistence
def test_rows_survive_a_restart_with_state_dir(make_sandbox: Make, tmp_path: Path) -> None:
    """Written rows are listed again after a restart; so are rows written only after it."""
    running, client = make_sandbox(state_dir=tmp_path)
    headers = {**AUTH, "X-Client-Request-Id": "before-1"}
    first_id = client.create(body(seed=1), headers=headers).json()["id"]
    assert len(_rows(client)) == 1  # written now, to ledger.jsonl
    running.configure(log_lag=HOUR)
    late = client.create(body(seed=2), headers={**AUTH, "X-Client-Request-Id": "late-2"})
    assert len(_rows(client)) == 1  # the second is not written yet
    running.stop()

    _, again = make_sandbox(state_dir=tmp_path)  # log_lag back to 0
    rows = _rows(again)
    assert [(r["inference_id"], r["client_request_id"]) for r in rows] == [
        (late.json()["id"], "late-2"), (first_id, "before-1")]
    assert len((tmp_path / "ledger.jsonl").read_text().splitlines()) == 2


def test_a_torn_last_ledger_line_is_written_again(make_sandbox: Make, tmp_path: Path) -> None:
    """A row cut short by a kill is skipped on load and written again from its generation."""
    running, client = make_sandbox(state_dir=tmp_path)
    gen_id = client.create(body()).json()["id"]
    assert len(_rows(client)) == 1
    running.stop()
    ledger = tmp_path / "ledger.jsonl"
    ledger.write_text(ledger.read_text()[:-20])  # the kill hit mid-line

    _, again = make_sandbox(state_dir=tmp_path)
    assert [r["inference_id"] for r in _rows(again)] == [gen_id]


def test_ledger_rows_show_on_the_wire_as_documented() -> None:
    """A row's wire form: ms-precision UTC time, origin api, zero tokens, null request_id."""
    row = LedgerRow(1782961445123, "succeeded", "gen3a_turbo", "g-1", None, 0.0, 0)
    assert row.to_wire() == {
        "created": "2026-07-02T03:04:05.123Z", "status": "succeeded", "origin": "api",
        "model": "gen3a_turbo", "cost": {"usd": 0.0, "credits": 0},
        "tokens": {"input": 0, "output": 0, "total": 0}, "request_id": None,
        "inference_id": "g-1", "client_request_id": None,
    }
