"""Unit tests of the API client: error bodies, id variants, URL-encoding, status mapping,
client request ids, cost, and the usage logs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
import pytest

from runner.api import (
    ApiClient,
    Created,
    GenStatus,
    OutcomeUnknown,
    Rejected,
    Retryable,
    download_client,
    error_text,
    map_status,
    video_url,
)
from runner.clock import FakeClock
from runner.errors import AuthError, BadKeyError
from runner.loopback import is_loopback_url
from runner.usage import LogRow, LogsPage

KEY = "sk-test-0123456789abcdef"
ENDPOINT = "/v2/generate/video/runway/generation"
BODY = {"model": "runway/gen4_turbo", "image_url": "https://x/i.png", "seed": 1}

Handler = Callable[[httpx.Request], httpx.Response]


def _run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


def _client(handler: Handler) -> ApiClient:
    return ApiClient(
        "aimlapi",
        "https://api.example.test",
        KEY,
        FakeClock(),
        key_env="AIMLAPI_API_KEY",
        transport=httpx.MockTransport(handler),
    )


async def _create(handler: Handler, client_request_id: str | None = None) -> Created:
    client = _client(handler)
    try:
        return await client.create(ENDPOINT, BODY, client_request_id=client_request_id)
    finally:
        await client.aclose()


async def _fetch(handler: Handler, generation_id: str = "g") -> Any:
    client = _client(handler)
    try:
        return await client.fetch(ENDPOINT, generation_id)
    finally:
        await client.aclose()


def _error(status: int, message: str, **headers: str) -> Handler:
    body = {
        "message": message,
        "path": ENDPOINT,
        "requestId": "r-1",
        "statusCode": status,
        "timestamp": "2025-06-01T00:00:00Z",
    }
    return lambda request: httpx.Response(status, json=body, headers=headers)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"id": "abc-123", "status": "queued"}, "abc-123"),
        ({"generation_id": "mm-77", "status": "queued"}, "mm-77"),
        ({"id": 12345, "status": "queued"}, "12345"),
    ],
)
def test_create_reads_id_variants(payload: dict[str, Any], expected: str) -> None:
    """The create answer may name the id as `id` (string or number) or `generation_id`."""
    assert _run(_create(lambda r: httpx.Response(201, json=payload))).generation_id == expected


def test_create_falls_back_to_inference_id_header() -> None:
    """A 2xx without an id in the body uses x-inference-id (equal to it for async jobs)."""
    headers = {"x-inference-id": "inf-9"}

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"status": "queued"}, headers=headers)

    assert _run(_create(handler)).generation_id == "inf-9"


def test_create_without_any_id_is_unknown() -> None:
    """A 2xx that names no id was accepted but cannot be polled: outcome unknown."""
    with pytest.raises(OutcomeUnknown, match="no generation id"):
        _run(_create(lambda r: httpx.Response(200, json={"status": "queued"})))


def test_create_sends_bearer_key_and_json_body() -> None:
    """The POST carries the bearer key and the exact JSON body."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "g1", "status": "queued"})

    _run(_create(handler))
    assert seen[0].headers["authorization"] == f"Bearer {KEY}"
    assert json.loads(seen[0].content) == BODY
    assert seen[0].url.path == ENDPOINT


def test_400_is_rejected_with_server_message() -> None:
    """A 400 fails the request with the server's own message."""
    with pytest.raises(Rejected, match="Body validation error!") as info:
        _run(_create(_error(400, "Body validation error!")))
    assert info.value.status == 400


def test_401_is_auth_error_naming_the_variable() -> None:
    """A 401 stops the run with a line naming the key variable, never the key."""
    with pytest.raises(AuthError) as info:
        _run(_create(_error(401, "Invalid API key")))
    assert "AIMLAPI_API_KEY" in str(info.value)
    assert KEY not in str(info.value)


def test_403_is_auth_error_about_credits() -> None:
    """A 403 (out of credits) stops the run too."""
    with pytest.raises(AuthError, match="credits"):
        _run(_create(_error(403, "Insufficient balance")))


@pytest.mark.parametrize("status", [429, 503])
def test_429_and_503_are_retryable_with_retry_after(status: int) -> None:
    """429 and 503 on a POST are retryable and carry the server's Retry-After."""
    with pytest.raises(Retryable) as info:
        _run(_create(_error(status, "slow down", **{"Retry-After": "12"})))
    assert info.value.retry_after == 12.0
    assert info.value.status == status


@pytest.mark.parametrize("status", [500, 502, 504])
def test_other_5xx_on_post_is_unknown(status: int) -> None:
    """A 5xx other than 503 after a POST might have started a job: unknown, not retried."""
    with pytest.raises(OutcomeUnknown):
        _run(_create(_error(status, "upstream trouble")))


def test_connect_error_on_post_is_retryable() -> None:
    """A POST that never connected provably did not take effect: retryable."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(Retryable):
        _run(_create(handler))


@pytest.mark.parametrize(
    "exc",
    [httpx.ReadTimeout, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError],
)
def test_lost_answer_on_post_is_unknown(exc: type[httpx.TransportError]) -> None:
    """A POST sent without an answer back (timeout, dropped) is unknown, never retried."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise exc("gone", request=request)

    with pytest.raises(OutcomeUnknown, match="may have started"):
        _run(_create(handler))


def test_key_is_scrubbed_from_echoed_messages() -> None:
    """A server that echoes the key in its error does not put it in our message."""
    with pytest.raises(Rejected) as info:
        _run(_create(_error(400, f"bad header Bearer {KEY}")))
    assert KEY not in str(info.value)
    assert "***" in str(info.value)


def test_client_repr_hides_key() -> None:
    """The client's repr names the provider and base URL, not the key."""
    client = _client(lambda r: httpx.Response(200))
    assert KEY not in repr(client)
    _run(client.aclose())


@pytest.mark.parametrize("gid", ["a/b:c+d&e f?#%", "123:runway/gen4_turbo", "üñí"])
def test_fetch_url_encodes_opaque_ids(gid: str) -> None:
    """Generation ids go into the query fully percent-encoded and come back intact."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        echoed = request.url.params["generation_id"]
        return httpx.Response(200, json={"id": echoed, "status": "queued"})

    generation = _run(_fetch(handler, gid))
    assert generation.id == gid
    raw_query = seen[0].url.query.decode()
    assert raw_query.startswith("generation_id=")
    assert not set(raw_query.split("=", 1)[1]) & set("/:+&? #")


def test_fetch_parses_completed_with_video_list() -> None:
    """A completed poll answer yields DONE with the first video URL."""
    answer = {"id": "g", "status": "completed", "video": ["https://cdn.test/v.mp4?_jwt=t"]}

    generation = _run(_fetch(lambda r: httpx.Response(200, json=answer)))
    assert generation.status is GenStatus.DONE
    assert generation.video_url == "https://cdn.test/v.mp4?_jwt=t"


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_fetch_server_errors_are_retryable(status: int) -> None:
    """Polls are idempotent: 429 and every 5xx are retried later."""
    with pytest.raises(Retryable):
        _run(_fetch(_error(status, "busy")))


def test_fetch_read_timeout_is_retryable() -> None:
    """A poll that timed out can simply be repeated."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(Retryable):
        _run(_fetch(handler))


def test_fetch_404_is_rejected() -> None:
    """An unknown generation id (404) is reported as a refusal, not retried blindly."""
    with pytest.raises(Rejected, match="not found") as info:
        _run(_fetch(_error(404, "Generation not found")))
    assert info.value.status == 404


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("completed", GenStatus.DONE),
        ("succeeded", GenStatus.DONE),
        ("COMPLETED", GenStatus.DONE),
        ("error", GenStatus.FAILED),
        ("failed", GenStatus.FAILED),
        ("cancelled", GenStatus.FAILED),
        ("queued", GenStatus.RUNNING),
        ("generating", GenStatus.RUNNING),
        ("waiting", GenStatus.RUNNING),
        ("active", GenStatus.RUNNING),
        ("dreaming", GenStatus.RUNNING),
        ("THROTTLED", GenStatus.RUNNING),
        ("something-new", GenStatus.RUNNING),
        (None, GenStatus.RUNNING),
    ],
)
def test_status_mapping(raw: object, expected: GenStatus) -> None:
    """Every documented status maps explicitly; unknown values count as running."""
    assert map_status(raw) is expected


@pytest.mark.parametrize(
    ("video", "expected"),
    [
        (["https://a/1.mp4", "https://a/2.mp4"], "https://a/1.mp4"),
        ("https://a/1.mp4", "https://a/1.mp4"),
        ({"url": "https://a/1.mp4"}, "https://a/1.mp4"),
        ([{"url": "https://a/1.mp4"}], "https://a/1.mp4"),
        ([], None),
        (None, None),
        ({}, None),
    ],
)
def test_video_url_shapes(video: object, expected: str | None) -> None:
    """`video` may be a list, a string or {url}; each yields the URL."""
    assert video_url(video) == expected


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ("Content moderation", "Content moderation"),
        ({"name": "Error", "message": "bad image"}, "Error: bad image"),
        (
            {"detail": [{"loc": ["body", "seed"], "msg": "too large", "type": "value_error"}]},
            "body.seed: too large",
        ),
        (None, None),
    ],
)
def test_error_text_shapes(error: object, expected: str | None) -> None:
    """A generation error renders from a string, {name,message} or {detail: [...]}."""
    assert error_text(error) == expected


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:8080", True),
        ("http://localhost:1", True),
        ("http://[::1]:9/x", True),
        ("https://api.aimlapi.com", False),
        ("http://10.0.0.1", False),
    ],
)
def test_is_loopback_url(url: str, loopback: bool) -> None:
    """Only this machine's addresses count as loopback (it allows plain-http downloads)."""
    assert is_loopback_url(url) is loopback


def test_download_client_has_no_authorization() -> None:
    """The download client never carries the key."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"x")

    async def go() -> None:
        client = download_client(transport=httpx.MockTransport(handler))
        try:
            await client.get("https://cdn.test/v.mp4")
        finally:
            await client.aclose()

    _run(go())
    assert "authorization" not in seen[0].headers


# ------------------------------------------------------------------ client request ids
def _created_ok(seen: list[httpx.Request], **headers: str) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "g1", "status": "queued"}, headers=headers)

    return handler


@pytest.mark.parametrize("cid", ["a", "x" * 128, "run-3f2a:seed_1.attempt-2", "AZaz09._:-"])
def test_create_sends_a_valid_client_request_id(cid: str) -> None:
    """A valid id goes out as X-Client-Request-Id, unchanged."""
    seen: list[httpx.Request] = []
    _run(_create(_created_ok(seen), client_request_id=cid))
    assert seen[0].headers["x-client-request-id"] == cid


def test_create_without_a_client_request_id_sends_no_header() -> None:
    """No id given, no header: the API must not see an empty one."""
    seen: list[httpx.Request] = []
    _run(_create(_created_ok(seen)))
    assert "x-client-request-id" not in seen[0].headers


@pytest.mark.parametrize("cid", ["", "x" * 129, "a b", "a/b", "é", "id\n", "a,b", "#1"])
def test_create_refuses_an_id_the_api_would_drop_before_sending(cid: str) -> None:
    """An id outside 1-128 of A-Z a-z 0-9 . _ : - is a ValueError, and nothing is sent."""
    seen: list[httpx.Request] = []
    with pytest.raises(ValueError, match="silently drop"):
        _run(_create(_created_ok(seen), client_request_id=cid))
    assert seen == []


# ------------------------------------------------------------------ cost
def _created_with(body: dict[str, Any], **headers: str) -> Created:
    created: Created = _run(_create(lambda r: httpx.Response(200, json=body, headers=headers)))
    return created


QUEUED = {"id": "g1", "status": "queued"}


def test_create_reads_cost_from_the_headers() -> None:
    """x-aimlapi-usd-spent and x-aimlapi-credits-used give the create's cost."""
    created = _created_with(
        QUEUED, **{"x-aimlapi-usd-spent": "0.001240000", "x-aimlapi-credits-used": "2480"}
    )
    assert created == Created("g1", 0.00124, 2480)


def test_create_reads_cost_from_meta_usage_without_headers() -> None:
    """Without cost headers, meta.usage in the body says it."""
    body = {**QUEUED, "meta": {"usage": {"credits_used": 1580000, "usd_spent": 0.79}}}
    assert _created_with(body) == Created("g1", 0.79, 1580000)


def test_create_prefers_headers_and_falls_back_per_field() -> None:
    """A header wins over meta.usage; a malformed header falls back to the body."""
    body = {**QUEUED, "meta": {"usage": {"credits_used": 7, "usd_spent": 9.0}}}
    created = _created_with(
        body, **{"x-aimlapi-usd-spent": "1.5", "x-aimlapi-credits-used": "lots"}
    )
    assert (created.usd, created.credits) == (1.5, 7)


def test_create_without_cost_says_none_not_zero() -> None:
    """No header and no meta.usage: cost unknown (None), never free (0)."""
    created = _created_with(QUEUED)
    assert created.usd is None and created.credits is None


def test_a_free_create_is_zero_not_none() -> None:
    """A stated zero cost is kept as zero."""
    created = _created_with(
        QUEUED, **{"x-aimlapi-usd-spent": "0", "x-aimlapi-credits-used": "0"}
    )
    assert (created.usd, created.credits) == (0.0, 0)


@pytest.mark.parametrize(
    "usage",
    [{"usd_spent": -1, "credits_used": -5}, {"usd_spent": "NaN", "credits_used": 1.5},
     {"usd_spent": True, "credits_used": True}, "free", None],
)
def test_create_ignores_nonsense_cost(usage: object) -> None:
    """Negative, non-finite, boolean or shapeless cost is unknown, and the id still comes back."""
    created = _created_with({**QUEUED, "meta": {"usage": usage}})
    assert created == Created("g1", None, None)


def test_fetch_reads_cost_from_meta_usage() -> None:
    """The unified endpoint's poll answer carries meta.usage: the Generation has it."""
    answer = {"id": "g", "status": "completed", "video": {"url": "https://cdn.test/v.mp4"},
              "meta": {"usage": {"credits_used": 2000000, "usd_spent": 1.0}}}
    generation = _run(_fetch(lambda r: httpx.Response(200, json=answer)))
    assert (generation.usd, generation.credits) == (1.0, 2000000)


def test_fetch_without_cost_has_none() -> None:
    """A legacy poll answer names no cost: None."""
    answer = {"id": "g", "status": "generating"}
    generation = _run(_fetch(lambda r: httpx.Response(200, json=answer)))
    assert generation.usd is None and generation.credits is None


# ------------------------------------------------------------------ usage logs
ROW = {
    "created": "2026-07-02T03:04:05.000Z", "status": "succeeded", "origin": "api",
    "model": "runway/gen4_turbo", "cost": {"usd": 0.25, "credits": 500000},
    "tokens": {"input": 0, "output": 0, "total": 0}, "request_id": "req-1",
    "inference_id": "gen-1", "client_request_id": "run-1",
}
PAGE = {"data": [ROW], "pagination": {"limit": 100, "offset": 0, "total": 1, "has_more": False}}
T0 = 1782961445.0  # 2026-07-02T03:04:05Z


async def _logs(handler: Handler, **query: Any) -> Any:
    client = _client(handler)
    try:
        return await client.logs(**{"start": T0 - 60, "end": T0 + 60, **query})
    finally:
        await client.aclose()


def test_logs_sends_utc_window_repeated_models_and_paging() -> None:
    """start/end go out as ISO-8601 UTC; each model is its own `model=`, never comma-joined."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=PAGE)

    _run(_logs(handler, start=T0 + 0.0004, end=T0 + 0.0004,
               models=["runway/gen4_turbo", "gen3a_turbo"], offset=100, limit=50))
    url = seen[0].url
    assert url.path == "/v2/logs"
    assert url.params.multi_items() == [
        ("start", "2026-07-02T03:04:05.000Z"),  # widened down to the millisecond
        ("end", "2026-07-02T03:04:05.001Z"),  # and up, so `end` itself is inside
        ("model", "runway/gen4_turbo"),
        ("model", "gen3a_turbo"),
        ("offset", "100"),
        ("limit", "50"),
    ]
    assert seen[0].headers["authorization"] == f"Bearer {KEY}"


def test_logs_parses_rows_and_pagination() -> None:
    """A documented page becomes LogRows with cost, ids and the paging totals."""
    failed = {**ROW, "status": "failed", "cost": {"usd": 0, "credits": 0},
              "inference_id": "gen-2", "client_request_id": None}
    page = {"data": [ROW, failed],
            "pagination": {"limit": 2, "offset": 0, "total": 5, "has_more": True}}
    result = _run(_logs(lambda r: httpx.Response(200, json=page)))
    assert result == LogsPage(
        rows=(
            LogRow("2026-07-02T03:04:05.000Z", "succeeded", "runway/gen4_turbo", "run-1",
                   "gen-1", 0.25, 500000),
            LogRow("2026-07-02T03:04:05.000Z", "failed", "runway/gen4_turbo", None,
                   "gen-2", 0.0, 0),
        ),
        total=5,
        has_more=True,
    )


def test_logs_429_is_retryable_with_retry_after() -> None:
    """Over 200 queries a minute: Retryable, carrying the server's wait."""
    with pytest.raises(Retryable) as info:
        _run(_logs(_error(429, "Too Many Requests", **{"Retry-After": "7"})))
    assert info.value.retry_after == 7.0 and info.value.status == 429


@pytest.mark.parametrize("status", [500, 502, 503])
def test_logs_server_errors_are_retryable(status: int) -> None:
    """A GET changes nothing: 5xx is retried later."""
    with pytest.raises(Retryable):
        _run(_logs(_error(status, "busy")))


def test_logs_401_is_a_bad_key_and_403_an_auth_error() -> None:
    """401 and 403 stop the run as they do on create."""
    with pytest.raises(BadKeyError, match="AIMLAPI_API_KEY"):
        _run(_logs(_error(401, "Invalid API key")))
    with pytest.raises(AuthError):
        _run(_logs(_error(403, "Forbidden")))


def test_logs_404_means_the_provider_keeps_no_logs() -> None:
    """A provider without usage logs answers 404: Rejected, saying so."""
    with pytest.raises(Rejected, match="no usage logs") as info:
        _run(_logs(_error(404, "Cannot GET /v2/logs")))
    assert info.value.status == 404


def test_logs_400_is_rejected_with_the_server_message() -> None:
    """A 400 (the server disagrees about the window) is a refusal with its message."""
    with pytest.raises(Rejected, match="92 days"):
        _run(_logs(_error(400, "window must not exceed 92 days")))


def test_logs_transport_error_is_retryable() -> None:
    """A lost logs query can simply be repeated."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(Retryable, match="usage logs"):
        _run(_logs(handler))


@pytest.mark.parametrize(
    ("page", "words"),
    [
        ([], "not a JSON object"),
        ({"pagination": PAGE["pagination"]}, "`data` is not a list"),
        ({"data": []}, "`pagination` is not an object"),
        ({"data": [], "pagination": {"total": "1", "has_more": False}}, "pagination.total"),
        ({"data": [], "pagination": {"total": 1}}, "pagination.has_more is missing"),
        ({**PAGE, "data": ["row"]}, "data[0] is not an object"),
        ({**PAGE, "data": [{k: v for k, v in ROW.items() if k != "inference_id"}]},
         "data[0].inference_id is missing"),
        ({**PAGE, "data": [ROW, {**ROW, "status": 3}]}, "data[1].status is 3"),
        ({**PAGE, "data": [{**ROW, "client_request_id": 5}]}, "data[0].client_request_id"),
    ],
)
def test_a_malformed_logs_page_is_retryable_naming_the_problem(page: object, words: str) -> None:
    """A page without the documented shape is a Retryable with a clear line, never a KeyError."""
    with pytest.raises(Retryable, match="malformed") as info:
        _run(_logs(lambda r: httpx.Response(200, json=page)))
    assert words in info.value.message


def test_a_logs_answer_that_is_not_json_is_retryable() -> None:
    """An HTML error page with a 200 is retried, and its text is in the message."""
    with pytest.raises(Retryable, match="not JSON: <html>"):
        _run(_logs(lambda r: httpx.Response(200, text="<html>oops</html>")))


def test_a_row_without_cost_has_unknown_cost() -> None:
    """A row with no cost object keeps its place, with cost None (not zero)."""
    row = {k: v for k, v in ROW.items() if k != "cost"}
    result = _run(_logs(lambda r: httpx.Response(200, json={**PAGE, "data": [row]})))
    assert (result.rows[0].usd, result.rows[0].credits) == (None, None)


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ({"limit": 0}, "limit must be 1..100"),
        ({"limit": 101}, "limit must be 1..100"),
        ({"offset": -1}, "offset must be >= 0"),
        ({"start": T0, "end": T0 - 1}, "end must not be earlier"),
        ({"start": T0, "end": T0 + 93 * 86400}, "92 days"),
        ({"models": "runway/gen4_turbo"}, "not one string"),
        ({"models": [f"m{i}" for i in range(51)]}, "at most 50 models"),
    ],
)
def test_logs_refuses_a_query_the_api_would_refuse(query: dict[str, Any], words: str) -> None:
    """A caller's bad query is a ValueError before anything is sent."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=PAGE)

    with pytest.raises(ValueError, match=words):
        _run(_logs(handler, **query))
    assert seen == []
