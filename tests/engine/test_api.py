"""Unit tests of the API client: error bodies, id variants, URL-encoding, status mapping."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
import pytest

from runner.api import (
    ApiClient,
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
from runner.errors import AuthError
from runner.loopback import is_loopback_url

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


async def _create(handler: Handler) -> str:
    client = _client(handler)
    try:
        return await client.create(ENDPOINT, BODY)
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
    assert _run(_create(lambda r: httpx.Response(201, json=payload))) == expected


def test_create_falls_back_to_inference_id_header() -> None:
    """A 2xx without an id in the body uses x-inference-id (equal to it for async jobs)."""
    headers = {"x-inference-id": "inf-9"}

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"status": "queued"}, headers=headers)

    assert _run(_create(handler)) == "inf-9"


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
