"""The generation API over httpx: create, fetch and usage logs, errors mapped at one boundary.

Every way a call can end is one of these (only `AuthError` is a user-facing
`RunnerError`; the rest are signals the engine turns into per-request outcomes):

    CallFailed              base: a call that produced no usable answer
    ├── Retryable           safe to send again: the request provably did not take effect
    │                       (connect error, 429, 503), or it was an idempotent GET
    ├── OutcomeUnknown      a POST was sent and we cannot know whether it was accepted
    │                       (read timeout, connection lost, 5xx other than 503, a 2xx
    │                       without an id): never resend it blindly
    └── Rejected            the server refused this request (400, 404, other 4xx);
                            sending it again would fail the same way
    AuthError (runner.errors)  401 bad key, 403 out of credits: stop the whole run

`GET /v2/logs` (the usage logs) is a GET: every failure of it is `Retryable` (a
malformed page too), except a 404, which means the provider keeps no usage logs
(`Rejected`), and 401/403 (`AuthError`).

Cost (`Created`, `Generation`) is read by `runner.usage.parse_cost`: the
`x-aimlapi-usd-spent` / `x-aimlapi-credits-used` headers, else `meta.usage`; None
when neither says.

The key lives only in the client's default headers: it never appears in a message, a
repr, or a download request (downloads use `download_client()`, which has no key).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from runner import __version__
from runner.clock import Clock
from runner.correlation import HEADER as CLIENT_REQUEST_ID_HEADER
from runner.correlation import MAX_LENGTH as CLIENT_REQUEST_ID_MAX
from runner.correlation import is_client_request_id
from runner.errors import AuthError, BadKeyError
from runner.retry import parse_retry_after
from runner.transport import PooledTransport
from runner.usage import (
    LOGS_MAX_LIMIT,
    LOGS_PATH,
    LogsPage,
    MalformedPage,
    logs_params,
    parse_cost,
    parse_logs_page,
)

# Explicit timeouts: httpx has no total timeout, so each phase gets a bound. A create
# uploads a data: URI of up to ~7 MB (5 MB image, base64), hence the generous write.
API_TIMEOUT = httpx.Timeout(connect=15.0, read=60.0, write=120.0, pool=60.0)
DOWNLOAD_TIMEOUT = httpx.Timeout(connect=15.0, read=60.0, write=30.0, pool=60.0)
MESSAGE_LIMIT = 300  # characters of a server message kept in an error


class CallFailed(Exception):
    """A call that produced no usable answer (see the tree in the module docstring)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class Retryable(CallFailed):
    """Safe to send again, after `retry_after` seconds if the server asked for a wait."""

    def __init__(
        self,
        message: str,
        status: int | None = None,
        retry_after: float | None = None,
        *,
        unreachable: bool = False,
    ) -> None:
        super().__init__(message, status)
        self.retry_after = retry_after
        self.unreachable = unreachable  # no connection could be made at all


class OutcomeUnknown(CallFailed):
    """A POST went out and we cannot know whether the server accepted it."""


class Rejected(CallFailed):
    """The server refused this request; sending it again would fail the same way."""


class GenStatus(enum.Enum):
    """What a generation's reported status means for us."""

    RUNNING = "running"  # queued, generating, waiting, active, dreaming, anything unknown
    DONE = "done"  # completed, succeeded
    FAILED = "failed"  # error, failed, cancelled


_DONE = frozenset({"completed", "succeeded", "success", "complete"})
_FAILED = frozenset({"error", "failed", "failure", "cancelled", "canceled"})


def map_status(raw: object) -> GenStatus:
    """Map a reported status string to its meaning; unknown values count as running."""
    value = str(raw).strip().lower() if raw is not None else ""
    if value in _DONE:
        return GenStatus.DONE
    if value in _FAILED:
        return GenStatus.FAILED
    return GenStatus.RUNNING


def video_url(video: object) -> str | None:
    """Return the first video URL from a list, a string, or `{"url": …}`."""
    if isinstance(video, str):
        return video or None
    if isinstance(video, list):
        for item in video:
            found = video_url(item)
            if found:
                return found
        return None
    if isinstance(video, Mapping):
        return video_url(video.get("url"))
    return None


def error_text(error: object) -> str | None:
    """Render a generation's `error` (string, `{name, message}`, `{"detail": […]}`)."""
    if error is None or error == "" or error == {}:
        return None
    if isinstance(error, str):
        return error
    if isinstance(error, Mapping):
        detail = error.get("detail")
        if isinstance(detail, list):
            parts = []
            for item in detail:
                if isinstance(item, Mapping):
                    loc = ".".join(str(p) for p in item.get("loc", []) or [])
                    msg = str(item.get("msg", item))
                    parts.append(f"{loc}: {msg}" if loc else msg)
                else:
                    parts.append(str(item))
            return "; ".join(parts)
        if isinstance(detail, str):
            return detail
        name, message = error.get("name"), error.get("message")
        if message:
            return f"{name}: {message}" if name else str(message)
    return json.dumps(error, ensure_ascii=False, sort_keys=True)[:MESSAGE_LIMIT]


@dataclass(frozen=True, slots=True)
class Created:
    """An accepted create: the generation's id and what the API said it cost."""

    generation_id: str
    usd: float | None  # None: the answer did not say (never read as free)
    credits: int | None


@dataclass(frozen=True, slots=True)
class Generation:
    """One fetched generation, as far as the runner cares."""

    id: str
    status: GenStatus
    raw_status: str  # as the server said it, for messages and the manifest
    video_url: str | None
    error: str | None
    usd: float | None = None  # the unified endpoint reports cost on polls (meta.usage)
    credits: int | None = None


def parse_generation(
    data: object, generation_id: str, headers: Mapping[str, str] | None = None
) -> Generation:
    """Read a poll response body (and its cost headers) into a `Generation`."""
    if not isinstance(data, Mapping):
        msg = f"poll answer is not a JSON object: {str(data)[:MESSAGE_LIMIT]}"
        raise Retryable(msg)
    raw = data.get("status")
    error = error_text(data.get("error"))
    usd, credits = parse_cost(headers or {}, data)
    return Generation(
        id=str(data.get("id") or data.get("generation_id") or generation_id),
        status=map_status(raw),
        raw_status=str(raw) if raw is not None else "(none)",
        video_url=video_url(data.get("video")),
        error=error,
        usd=usd,
        credits=credits,
    )


class ApiClient:
    """Create and fetch generations on one provider, over one pooled AsyncClient."""

    def __init__(
        self,
        provider: str,
        base_url: str,
        key: str,
        clock: Clock,
        *,
        key_env: str | None = None,
        max_in_flight: int = 4,
        keepalive: float = 120.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self._key = key
        self._key_env = key_env
        self._clock = clock
        # Our own concurrency stays below the pool, or calls die with PoolTimeout;
        # keep-alive outlives a poll interval so polls reuse their connection.
        limits = httpx.Limits(
            max_connections=max_in_flight + 8,
            max_keepalive_connections=max_in_flight + 8,
            keepalive_expiry=keepalive,
        )
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers={
                "Authorization": f"Bearer {key}",
                "User-Agent": f"runner/{__version__}",
                "Accept": "application/json",
            },
            timeout=API_TIMEOUT,
            transport=transport or PooledTransport(limits),
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"ApiClient(provider={self.provider!r}, base_url={self.base_url!r})"

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._client.aclose()

    async def create(
        self, endpoint: str, body: Mapping[str, Any], *, client_request_id: str | None = None
    ) -> Created:
        """POST a generation; return its id and cost; raise a `CallFailed` or `AuthError`.

        `client_request_id` goes out as `X-Client-Request-Id`, so the request can be found
        in the usage logs even when its answer is lost; ValueError if the API would drop it.
        """
        headers = {}
        if client_request_id is not None:
            if not is_client_request_id(client_request_id):
                msg = (
                    f"client request id {client_request_id[:40]!r} is not 1-"
                    f"{CLIENT_REQUEST_ID_MAX} characters of A-Z a-z 0-9 . _ : - "
                    "(the API would silently drop it)"
                )
                raise ValueError(msg)
            headers[CLIENT_REQUEST_ID_HEADER] = client_request_id
        try:
            response = await self._client.post(endpoint, json=dict(body), headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # Never left this machine: no server can have acted on it.
            msg = f"could not connect to {self.base_url}: {self._describe(exc)}"
            unreachable = not isinstance(exc, httpx.PoolTimeout)
            raise Retryable(msg, unreachable=unreachable) from exc
        except httpx.TransportError as exc:
            msg = (
                f"the request was sent but no answer came ({self._describe(exc)}); "
                "the server may have started a paid generation"
            )
            raise OutcomeUnknown(msg) from exc
        status = response.status_code
        if 200 <= status < 300:
            return self._created(response)
        self._raise_for_auth(response)
        message = self._server_message(response)
        if status in (429, 503):
            wait = parse_retry_after(response.headers, self._clock.wall())
            raise Retryable(f"HTTP {status}: {message}", status, wait)
        if status >= 500:
            msg = (
                f"HTTP {status} after the request was sent: {message} — the server may "
                "or may not have started a paid generation"
            )
            raise OutcomeUnknown(msg, status)
        raise Rejected(f"HTTP {status}: {message}", status)

    async def fetch(self, endpoint: str, generation_id: str) -> Generation:
        """GET a generation's state; raise a `CallFailed` or `AuthError`."""
        # Ids are opaque (UUIDs, nanoids, "123:model"): encode every reserved character.
        url = f"{endpoint}?generation_id={quote(generation_id, safe='')}"
        try:
            response = await self._client.get(url)
        except httpx.TransportError as exc:
            # A GET changes nothing on the server: any transport failure is retryable.
            msg = f"poll of {self.base_url} failed: {self._describe(exc)}"
            unreachable = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
            raise Retryable(msg, unreachable=unreachable) from exc
        status = response.status_code
        if 200 <= status < 300:
            try:
                data = response.json()
            except ValueError as exc:
                msg = f"poll answer is not JSON: {self._scrub(response.text[:MESSAGE_LIMIT])}"
                raise Retryable(msg, status) from exc
            return parse_generation(data, generation_id, response.headers)
        self._raise_for_auth(response)
        message = self._server_message(response)
        if status == 429 or status >= 500:
            wait = parse_retry_after(response.headers, self._clock.wall())
            raise Retryable(f"HTTP {status}: {message}", status, wait)
        raise Rejected(f"HTTP {status}: {message}", status)

    async def logs(
        self,
        *,
        start: float,
        end: float,
        models: Sequence[str] = (),
        offset: int = 0,
        limit: int = LOGS_MAX_LIMIT,
    ) -> LogsPage:
        """GET one page of usage logs for [start, end] (epoch seconds), newest first.

        Raise `Retryable` (429 with its Retry-After, 5xx, transport errors, a malformed
        page), `Rejected` (404: the provider keeps no usage logs; other 4xx) or
        `AuthError`. Each model goes out as its own `model=` (the API reads a
        comma-joined value as one name and matches nothing).
        """
        params = logs_params(start, end, models, offset, limit)
        try:
            response = await self._client.get(LOGS_PATH, params=params)
        except httpx.TransportError as exc:
            msg = f"usage logs query to {self.base_url} failed: {self._describe(exc)}"
            raise Retryable(msg) from exc
        status = response.status_code
        if 200 <= status < 300:
            try:
                data = response.json()
            except ValueError as exc:
                body = self._scrub(response.text[:MESSAGE_LIMIT])
                msg = f"usage logs page is not JSON: {body}"
                raise Retryable(msg, status) from exc
            try:
                return parse_logs_page(data)
            except MalformedPage as exc:
                raise Retryable(f"usage logs page is malformed: {exc}", status) from None
        self._raise_for_auth(response)
        message = self._server_message(response)
        if status == 429 or status >= 500:
            wait = parse_retry_after(response.headers, self._clock.wall())
            raise Retryable(f"usage logs: HTTP {status}: {message}", status, wait)
        if status == 404:
            msg = f"{self.provider} serves no usage logs at {LOGS_PATH} (HTTP 404: {message})"
            raise Rejected(msg, status)
        raise Rejected(f"usage logs: HTTP {status}: {message}", status)

    def _created(self, response: httpx.Response) -> Created:
        try:
            data = response.json()
        except ValueError:
            data = None
        generation_id = self._created_id(response, data)
        usd, credits = parse_cost(response.headers, data)
        return Created(generation_id, usd, credits)

    def _created_id(self, response: httpx.Response, data: object) -> str:
        candidates: list[object] = []
        if isinstance(data, Mapping):
            candidates += [data.get("id"), data.get("generation_id")]
        # Every response carries x-inference-id, equal to the generation id for async jobs.
        candidates.append(response.headers.get("x-inference-id"))
        for candidate in candidates:
            if isinstance(candidate, str | int) and not isinstance(candidate, bool):
                text = str(candidate).strip()
                if text:
                    return text
        body = self._scrub(response.text[:MESSAGE_LIMIT])
        msg = f"HTTP {response.status_code} accepted the request but named no generation id: {body}"
        raise OutcomeUnknown(msg, response.status_code)

    def _raise_for_auth(self, response: httpx.Response) -> None:
        status = response.status_code
        if status not in (401, 403):
            return
        message = self._server_message(response)
        where = f"set a valid key in {self._key_env}" if self._key_env else "check the key"
        if status == 401:
            msg = f"{self.provider} rejected the API key (HTTP 401: {message}) — {where}"
            raise BadKeyError(msg)
        msg = (
            f"{self.provider} refused the request (HTTP 403: {message}) — the account "
            f"may be out of credits or the key lacks access; {where}"
        )
        raise AuthError(msg)

    def _server_message(self, response: httpx.Response) -> str:
        try:
            data = response.json()
        except ValueError:
            data = None
        text: str
        if isinstance(data, Mapping) and data.get("message") is not None:
            message = data["message"]
            text = "; ".join(map(str, message)) if isinstance(message, list) else str(message)
            detail = data.get("detail") or data.get("error")
            if detail:
                text = f"{text} ({error_text(detail)})"
        elif isinstance(data, Mapping) and data.get("error") is not None:
            text = error_text(data["error"]) or ""
        else:
            text = response.text.strip() or response.reason_phrase
        return self._scrub(" ".join(text.split())[:MESSAGE_LIMIT])

    def _describe(self, exc: httpx.TransportError) -> str:
        return self._scrub(f"{type(exc).__name__}: {exc}".rstrip(": "))

    def _scrub(self, text: str) -> str:
        # Belt and braces: a proxy that echoes headers must not put the key in a message.
        return text.replace(self._key, "***") if self._key else text


def download_client(
    *, max_in_flight: int = 4, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """Return the client for video downloads: no Authorization header, ever."""
    limits = httpx.Limits(
        max_connections=max_in_flight + 8, max_keepalive_connections=max_in_flight + 8
    )
    return httpx.AsyncClient(
        headers={"User-Agent": f"runner/{__version__}"},
        timeout=DOWNLOAD_TIMEOUT,
        transport=transport or PooledTransport(limits),
        # runner.download follows redirects by hand, checking every hop's scheme.
        follow_redirects=False,
    )
