"""How every way a create or a poll can end is classified, with the words and fields the
engine and the user get: retryable (and whether the provider was unreachable), unknown
(never resent), rejected, auth; and what a poll answer is read into."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from runner.api import (
    ApiClient,
    CallFailed,
    Created,
    Generation,
    GenStatus,
    OutcomeUnknown,
    Rejected,
    Retryable,
    parse_generation,
)
from runner.clock import FakeClock
from runner.errors import AuthError, BadKeyError

KEY = "sk-test-0123456789abcdef"
BASE = "https://api.example.test"
ENDPOINT = "/v2/generate/video/runway/generation"
BODY = {"model": "runway/gen4_turbo", "seed": 1}
NOW = 1_782_961_445.0  # 2026-07-02T03:04:05Z, the fake wall clock

Handler = Callable[[httpx.Request], httpx.Response]


def _client(handler: Handler | None, *, base: str = BASE, key_env: str | None = "AIMLAPI_API_KEY"
            ) -> ApiClient:
    transport = httpx.MockTransport(handler) if handler is not None else None
    return ApiClient("aimlapi", base, KEY, FakeClock(NOW), key_env=key_env, transport=transport)


def _create(handler: Handler | None, **kwargs: Any) -> Created:
    cid = kwargs.pop("client_request_id", None)

    async def go() -> Created:
        client = _client(handler, **kwargs)
        try:
            return await client.create(ENDPOINT, BODY, client_request_id=cid)
        finally:
            await client.aclose()

    return asyncio.run(go())


def _fetch(handler: Handler | None, generation_id: str = "g-1", **kwargs: Any) -> Generation:
    async def go() -> Generation:
        client = _client(handler, **kwargs)
        try:
            return await client.fetch(ENDPOINT, generation_id)
        finally:
            await client.aclose()

    return asyncio.run(go())


def _failure(call: Callable[[], object]) -> CallFailed:
    with pytest.raises(CallFailed) as info:
        call()
    return info.value


def _answer(status: int, body: object = None, text: str | None = None, **headers: str
            ) -> Handler:
    if text is not None:
        return lambda request: httpx.Response(status, text=text, headers=headers)
    return lambda request: httpx.Response(status, json=body, headers=headers)


def _raising(exc: type[httpx.TransportError], words: str = "gone") -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc(words, request=request)

    return handler


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port bound but not listening: every connection to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


# ------------------------------------------------------------------ create


def test_a_refused_connection_is_retryable_and_marks_the_provider_unreachable(
    closed_port: int,
) -> None:
    """A create that reached no server (a real closed port) may be sent again, and says so."""
    base = f"http://127.0.0.1:{closed_port}"
    failure = _failure(lambda: _create(None, base=base))
    assert type(failure) is Retryable and failure.unreachable is True
    assert failure.message.startswith(f"could not connect to {base}: ConnectError: ")
    assert failure.status is None and failure.retry_after is None


def test_a_full_connection_pool_is_retryable_but_not_unreachable() -> None:
    """Our own pool being full sent nothing, but says nothing about the provider."""
    failure = _failure(lambda: _create(_raising(httpx.PoolTimeout, "pool full")))
    assert type(failure) is Retryable and failure.unreachable is False
    assert failure.message == f"could not connect to {BASE}: PoolTimeout: pool full"


def test_a_connect_timeout_on_create_is_unreachable() -> None:
    """A connect that timed out never left the machine: retryable, provider unreachable."""
    failure = _failure(lambda: _create(_raising(httpx.ConnectTimeout, "slow")))
    assert type(failure) is Retryable and failure.unreachable is True


def test_a_lost_answer_is_unknown_with_its_cause_in_the_words() -> None:
    """A POST sent without an answer is unknown; the line names the cause and the risk."""
    failure = _failure(lambda: _create(_raising(httpx.ReadTimeout, "timed out")))
    assert type(failure) is OutcomeUnknown and failure.status is None
    assert failure.message == (
        "the request was sent but no answer came (ReadTimeout: timed out); "
        "the server may have started a paid generation"
    )


@pytest.mark.parametrize("status", [429, 503])
def test_a_busy_answer_is_retryable_with_its_status_words_and_dated_wait(status: int) -> None:
    """429/503 with an HTTP-date Retry-After: retryable after the seconds to that date."""
    when = format_datetime(datetime.fromtimestamp(NOW + 30, UTC), usegmt=True)
    failure = _failure(lambda: _create(_answer(status, {"message": "slow down"},
                                               **{"Retry-After": when})))
    assert type(failure) is Retryable and failure.unreachable is False
    assert (failure.status, failure.retry_after) == (status, 30.0)
    assert failure.message == f"HTTP {status}: slow down"


@pytest.mark.parametrize("status", [500, 502, 504])
def test_a_server_error_after_a_post_is_unknown_with_its_status_and_words(status: int) -> None:
    """A 5xx other than 503 might have started a paid job: unknown, status and risk said."""
    failure = _failure(lambda: _create(_answer(status, {"message": "upstream trouble"})))
    assert type(failure) is OutcomeUnknown and failure.status == status
    assert failure.message == (
        f"HTTP {status} after the request was sent: upstream trouble — the server may "
        "or may not have started a paid generation"
    )


@pytest.mark.parametrize("status", [300, 302, 404, 409, 422])
def test_a_redirect_or_other_4xx_on_create_is_rejected_with_its_status(status: int) -> None:
    """A 3xx is never followed nor read as accepted (even naming an id); 4xx are refusals."""
    failure = _failure(lambda: _create(_answer(status, {"id": "g-1", "message": "no"})))
    assert type(failure) is Rejected and failure.status == status
    assert failure.message == f"HTTP {status}: no"


def test_the_last_2xx_is_accepted() -> None:
    """299 is still a success: its id comes back."""
    assert _create(_answer(299, {"id": "g-299"})).generation_id == "g-299"


def test_an_accepted_answer_without_an_id_is_unknown_quoting_its_body() -> None:
    """A 2xx naming no id was accepted but cannot be polled: unknown, with status and body."""
    failure = _failure(lambda: _create(_answer(202, {"status": "queued"})))
    assert type(failure) is OutcomeUnknown and failure.status == 202
    assert failure.message == (
        'HTTP 202 accepted the request but named no generation id: {"status":"queued"}'
    )


def test_an_accepted_answer_that_is_not_json_takes_the_inference_id_and_header_cost() -> None:
    """A 2xx whose body is not JSON is still accepted by x-inference-id, costed by headers."""
    created = _create(_answer(200, text="<html>ok</html>", **{
        "x-inference-id": "inf-7", "x-aimlapi-usd-spent": "0.5",
        "x-aimlapi-credits-used": "1000"}))
    assert created == Created("inf-7", 0.5, 1000)


@pytest.mark.parametrize(
    ("body", "expected"),
    [({"id": "", "generation_id": "mm-1"}, "mm-1"), ({"id": True, "generation_id": 7}, "7"),
     ({"id": "  g-2 "}, "g-2")],
)
def test_an_id_is_the_first_usable_of_id_generation_id_and_the_header(
    body: dict[str, object], expected: str
) -> None:
    """Empty or boolean ids are skipped; the id is stripped."""
    handler = _answer(200, body, **{"x-inference-id": "inf-9"})
    assert _create(handler).generation_id == expected


def test_a_body_without_ids_falls_back_to_the_header() -> None:
    """An object body without ids, and an inference id header: the header's id."""
    assert _create(_answer(200, {"id": None}, **{"x-inference-id": "inf-9"})).generation_id \
        == "inf-9"


def test_a_401_names_the_provider_the_message_and_the_variable() -> None:
    """A bad key: exit code 2, the server's words, the variable to fix, never the key."""
    with pytest.raises(BadKeyError) as info:
        _create(_answer(401, {"message": "Invalid API key"}))
    assert str(info.value) == (
        "aimlapi rejected the API key (HTTP 401: Invalid API key) — set a valid key in "
        "AIMLAPI_API_KEY"
    )


def test_a_403_without_a_key_variable_says_check_the_key() -> None:
    """Out of credits with no variable known: the line still says what to check."""
    with pytest.raises(AuthError) as info:
        _create(_answer(403, {"message": "Insufficient balance"}), key_env=None)
    assert type(info.value) is AuthError
    assert str(info.value) == (
        "aimlapi refused the request (HTTP 403: Insufficient balance) — the account "
        "may be out of credits or the key lacks access; check the key"
    )


def test_a_client_request_id_too_long_is_quoted_by_its_first_40_characters() -> None:
    """The refusal of a long id shows its head, not the whole of it."""
    cid = "a" * 40 + "b" * 89
    with pytest.raises(ValueError) as info:
        _create(_answer(200, {"id": "g"}), client_request_id=cid)
    assert str(info.value) == (
        f"client request id {'a' * 40!r} is not 1-128 characters of A-Z a-z 0-9 . _ : - "
        "(the API would silently drop it)"
    )


# ------------------------------------------------------------------ fetch


def test_a_refused_poll_is_retryable_and_unreachable(closed_port: int) -> None:
    """A poll that reached no server (a real closed port) is retried; the provider is down."""
    base = f"http://127.0.0.1:{closed_port}"
    failure = _failure(lambda: _fetch(None, base=base))
    assert type(failure) is Retryable and failure.unreachable is True
    assert failure.message.startswith(f"poll of {base} failed: ConnectError: ")


@pytest.mark.parametrize(("exc", "unreachable"),
                         [(httpx.ConnectTimeout, True), (httpx.ReadTimeout, False),
                          (httpx.RemoteProtocolError, False)])
def test_a_failed_poll_is_retryable_and_unreachable_only_without_a_connection(
    exc: type[httpx.TransportError], unreachable: bool
) -> None:
    """A poll is a GET: always retryable; only a connect failure says the provider is down."""
    failure = _failure(lambda: _fetch(_raising(exc, "oops")))
    assert type(failure) is Retryable and failure.unreachable is unreachable
    assert failure.message == f"poll of {BASE} failed: {exc.__name__}: oops"


@pytest.mark.parametrize("status", [429, 500, 503])
def test_a_busy_poll_is_retryable_with_its_status_words_and_wait(status: int) -> None:
    """429 and 5xx on a poll carry the status, the words and the dated Retry-After."""
    when = format_datetime(datetime.fromtimestamp(NOW + 12, UTC), usegmt=True)
    failure = _failure(lambda: _fetch(_answer(status, {"message": "busy"},
                                              **{"Retry-After": when})))
    assert type(failure) is Retryable
    assert (failure.status, failure.retry_after, failure.message) == (status, 12.0,
                                                                      f"HTTP {status}: busy")


@pytest.mark.parametrize("status", [300, 400, 404])
def test_a_redirect_or_4xx_poll_is_rejected(status: int) -> None:
    """A 3xx poll answer is not read as a generation; 4xx are refusals, with the status."""
    failure = _failure(lambda: _fetch(_answer(status, {"id": "g-1", "status": "completed",
                                                       "message": "no"})))
    assert type(failure) is Rejected
    assert (failure.status, failure.message) == (status, f"HTTP {status}: no")


def test_the_last_2xx_poll_is_read() -> None:
    """A 299 poll answer is read as the generation."""
    assert _fetch(_answer(299, {"id": "g-1", "status": "completed"})).status is GenStatus.DONE


def test_a_poll_answer_that_is_not_json_is_retryable_quoting_it() -> None:
    """A 200 with an HTML page is retried later, its status and text in the message."""
    failure = _failure(lambda: _fetch(_answer(200, text=f"<html>{KEY}</html>")))
    assert type(failure) is Retryable and failure.status == 200
    assert failure.message == "poll answer is not JSON: <html>***</html>"


def test_a_poll_answer_that_is_not_an_object_is_retryable_quoting_it() -> None:
    """A JSON list is not a generation: retried later, the answer quoted."""
    failure = _failure(lambda: _fetch(_answer(200, ["queued"])))
    assert type(failure) is Retryable
    assert failure.message == "poll answer is not a JSON object: ['queued']"


def test_a_failed_poll_answer_is_read_whole() -> None:
    """Status, raw status, the error's words and the cost from the headers all come back."""
    answer = {"id": "g-1", "status": "Failed", "error": {"name": "Moderation", "message": "no"}}
    generation = _fetch(_answer(200, answer, **{"x-aimlapi-usd-spent": "0.25",
                                                "x-aimlapi-credits-used": "500"}))
    assert generation == Generation(
        id="g-1", status=GenStatus.FAILED, raw_status="Failed", video_url=None,
        error="Moderation: no", usd=0.25, credits=500,
    )


@pytest.mark.parametrize(
    ("answer", "expected"),
    [({"id": "g-9", "generation_id": "mm-9"}, "g-9"), ({"generation_id": "mm-9"}, "mm-9"),
     ({"id": "", "generation_id": ""}, "g-1"), ({}, "g-1")],
)
def test_a_poll_answer_s_id_is_its_own_else_the_one_asked_for(
    answer: dict[str, str], expected: str
) -> None:
    """`id`, then `generation_id`, then the id that was polled."""
    assert _fetch(_answer(200, {**answer, "status": "queued"})).id == expected


def test_a_poll_answer_without_a_status_is_running_shown_as_none() -> None:
    """No status: still running, and the manifest and messages show "(none)"."""
    generation = _fetch(_answer(200, {"id": "g-1"}))
    assert (generation.status, generation.raw_status, generation.error) == (
        GenStatus.RUNNING, "(none)", None)


def test_parse_generation_without_headers_reads_the_body_cost() -> None:
    """Called without headers (a recorded answer), the cost comes from meta.usage."""
    answer = {"status": "completed", "meta": {"usage": {"usd_spent": 1.5, "credits_used": 3}}}
    generation = parse_generation(answer, "g-1")
    assert (generation.id, generation.usd, generation.credits) == ("g-1", 1.5, 3)
