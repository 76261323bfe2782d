"""An httpx transport spread over several small connection pools, gentle on new connections.

Small pools. httpcore's pool does work proportional to its size on every request it
starts or ends (each connection is checked for expiry with a `poll()` and a
`getpeername()`), and quadratic in it when connections sit idle (httpcore 1.0.9 counts
the idle ones with a list built per idle connection). At 50 generations in flight, one
pool of ~60 connections made those checks the largest CPU cost of a run: 7.6 million
`is_idle()` calls for 300 generations. `PooledTransport` keeps the same total capacity
as `SHARD_SIZE`-connection pools and hands requests to them in turn, so each check
scans a handful of connections. Keep-alive still works: a shard reuses its own idle
connections.

Gentle bursts. 40 first POSTs at once open 40 connections at once. A server with a
small listen backlog (Python's `http.server` listens with 5) cannot queue them: Linux
answers the handshakes beyond its queue with SYN cookies, and when such a connection's
first data arrives while the accept queue is still full, the cookie check fails and the
kernel resets the connection. By then the client has sent its whole request, so it
sees a reset after sending: `OutcomeUnknown`, for a request the server never received
(0 to 23 of 40 per burst on the development machine; `tests/engine/test_bursts.py`).
So at most `OPENING` connections per server are opened and not yet answered at once: a
request that must open a connection waits for a slot before its `connect()` and gives
it back when its response headers arrive (the server has accepted the connection) or
the request fails. A request on a reused keep-alive connection never connects, so it
never waits. The wait has no timeout of its own: every holder gives its slot back within
its own connect, write and read timeouts, so a hung server delays the others, never
strands them. Uploads on new connections go OPENING at a time per server, which costs
little: they share one uplink anyway.

The wait hangs on httpcore's public `trace` request extension: httpcore awaits an async
trace callback at `connection.connect_tcp.started`, inside the connection's setup and
before the socket exists. That keeps each shard a plain `httpx.AsyncHTTPTransport`
(its error mapping, and vcrpy's cassettes, which patch that class, keep working).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import math
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

SHARD_SIZE = 8  # connections per pool: small enough that a scan of it is cheap
OPENING = 4  # connections per server opened and not yet answered: below a backlog of 5

Trace = Callable[[str, dict[str, Any]], Awaitable[None]]


@functools.cache
def tls_context() -> ssl.SSLContext:
    """Return the one TLS context (httpx's: certifi's CAs) every client of the run shares.

    Loading the CA bundle costs 20-50 ms of CPU each time, and a run opens up to four
    clients (the API, downloads, prices, metrics) before its first POST.
    """
    return httpx.create_ssl_context()
# httpcore's documented trace events around opening a connection (TCP, or --uds).
_CONNECTS = frozenset({"connection.connect_tcp.started", "connection.connect_unix_socket.started"})
_CONNECT_FAILS = frozenset(
    {"connection.connect_tcp.failed", "connection.connect_unix_socket.failed"}
)


class Opening:
    """One request's claim on its server's opening slots, taken only if it connects."""

    __slots__ = ("_gate", "_held", "_outer")

    def __init__(self, gate: asyncio.Semaphore, outer: Trace | None = None) -> None:
        self._gate = gate
        self._held = False
        self._outer = outer  # a trace the caller set, still called

    @property
    def held(self) -> bool:
        """Tell whether this request holds a slot right now."""
        return self._held

    async def trace(self, event: str, info: dict[str, Any]) -> None:
        """Take a slot before a connect (waiting if none is free); give it back if it fails."""
        if event in _CONNECTS:
            await self._gate.acquire()
            self._held = True
        elif event in _CONNECT_FAILS:
            self.release()
        if self._outer is not None:
            await self._outer(event, info)

    def release(self) -> None:
        """Give the slot back (once; a no-op when none is held)."""
        if self._held:
            self._held = False
            self._gate.release()


class PooledTransport(httpx.AsyncBaseTransport):
    """Send each request through the next of several small pools, opening gently."""

    def __init__(self, limits: httpx.Limits, *, opening: int = OPENING) -> None:
        if opening < 1:
            msg = f"opening must be at least 1, not {opening}"
            raise ValueError(msg)
        total = limits.max_connections or SHARD_SIZE
        count = max(1, math.ceil(total / SHARD_SIZE))
        each = math.ceil(total / count)
        keepalive = limits.max_keepalive_connections
        shard_limits = httpx.Limits(
            max_connections=each,
            max_keepalive_connections=each if keepalive is None else math.ceil(keepalive / count),
            keepalive_expiry=limits.keepalive_expiry,
        )
        self.shards = tuple(
            httpx.AsyncHTTPTransport(verify=tls_context(), limits=shard_limits)
            for _ in range(count)
        )
        self._turn = itertools.cycle(self.shards)
        self.opening = opening
        # Per server, across all shards: a backlog belongs to a server, not to a pool.
        self._gates: dict[tuple[bytes, int | None], asyncio.Semaphore] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request` through the next pool (its response streams from that pool)."""
        key = (request.url.raw_host, request.url.port)
        gate = self._gates.get(key)
        if gate is None:
            gate = self._gates[key] = asyncio.Semaphore(self.opening)
        opening = Opening(gate, request.extensions.get("trace"))
        request.extensions = {**request.extensions, "trace": opening.trace}
        try:
            # Returns once the response headers are in: the server took the connection.
            return await next(self._turn).handle_async_request(request)
        finally:
            opening.release()

    async def aclose(self) -> None:
        """Close every pool's connections."""
        for shard in self.shards:
            await shard.aclose()
