"""An httpx transport spread over several small connection pools.

httpcore's pool does work proportional to its size on every request it starts or ends
(each connection is checked for expiry with a `poll()` and a `getpeername()`), and
quadratic in it when connections sit idle (httpcore 1.0.9 counts the idle ones with a
list built per idle connection). At 50 generations in flight, one pool of ~60
connections made those checks the largest CPU cost of a run: 7.6 million `is_idle()`
calls for 300 generations. `PooledTransport` keeps the same total capacity as
`SHARD_SIZE`-connection pools and hands requests to them in turn, so each check scans a
handful of connections. Keep-alive still works: a shard reuses its own idle connections.

Each of those checks also asks the connection's stream whether its socket is readable
(a server that closed an idle connection; sending a POST on it would make the outcome
unknown). httpcore's anyio stream answers by rebuilding anyio's attribute table, with a
`getpeername()`, and a fresh `select.poll` each time: ~15 µs, about 20 times per request.
`_Stream` keeps the socket and one registered poller, and answers in ~1 µs; reads,
writes, TLS and the mapping of their errors stay anyio's and httpcore's.
"""

from __future__ import annotations

import itertools
import math
import select
import socket
import ssl
import typing

import httpcore
import httpx

SHARD_SIZE = 8  # connections per pool: small enough that a scan of it is cheap


class PooledTransport(httpx.AsyncBaseTransport):
    """Send each request through the next of several small `AsyncHTTPTransport` pools."""

    def __init__(self, limits: httpx.Limits) -> None:
        total = limits.max_connections or SHARD_SIZE
        count = max(1, math.ceil(total / SHARD_SIZE))
        each = math.ceil(total / count)
        keepalive = limits.max_keepalive_connections
        shard_limits = httpx.Limits(
            max_connections=each,
            max_keepalive_connections=each if keepalive is None else math.ceil(keepalive / count),
            keepalive_expiry=limits.keepalive_expiry,
        )
        tls = httpx.create_ssl_context()  # one for all pools: each costs ~20 ms to load
        self.shards = tuple(_shard(tls, shard_limits) for _ in range(count))
        self._turn = itertools.cycle(self.shards)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request` through the next pool (its response streams from that pool)."""
        return await next(self._turn).handle_async_request(request)

    async def aclose(self) -> None:
        """Close every pool's connections."""
        for shard in self.shards:
            await shard.aclose()


def _shard(tls: ssl.SSLContext, limits: httpx.Limits) -> httpx.AsyncHTTPTransport:
    """Return an HTTP/1.1 transport whose pool opens `_Stream`s.

    httpx does not take a network backend, so its pool (built from the same settings)
    is swapped for one that does; the transport keeps its request and error mapping.
    """
    transport = httpx.AsyncHTTPTransport(verify=tls, limits=limits)
    if not isinstance(transport._pool, httpcore.AsyncConnectionPool):  # pragma: no cover
        msg = f"httpx {httpx.__version__} builds an unexpected pool: {transport._pool!r}"
        raise TypeError(msg)
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=tls,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        http1=True,
        http2=False,
        network_backend=_Backend(),
    )
    return transport


class _Stream(httpcore.AsyncNetworkStream):
    """An anyio stream that answers `is_readable` from its socket and one poller."""

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._socket: socket.socket | None = inner.get_extra_info("socket")
        self._poller = select.poll()
        if self._socket is not None and self._socket.fileno() >= 0:
            self._poller.register(self._socket.fileno(), select.POLLIN)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> typing.Any:
        if info == "is_readable":
            # As httpcore's check: a socket without a descriptor counts as readable
            # (its next read returns the end of the stream).
            if self._socket is None or self._socket.fileno() < 0:
                return True
            return bool(self._poller.poll(0))
        return self._inner.get_extra_info(info)


class _Backend(httpcore.AsyncNetworkBackend):
    """httpcore's anyio backend, handing out `_Stream`s."""

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(
            host, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )
        return _Stream(stream)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)
