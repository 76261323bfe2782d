"""An httpx transport spread over several small connection pools.

httpcore's pool does work proportional to its size on every request it starts or ends
(each connection is checked for expiry with a `poll()` and a `getpeername()`), and
quadratic in it when connections sit idle (httpcore 1.0.9 counts the idle ones with a
list built per idle connection). At 50 generations in flight, one pool of ~60
connections made those checks the largest CPU cost of a run: 7.6 million `is_idle()`
calls for 300 generations. `PooledTransport` keeps the same total capacity as
`SHARD_SIZE`-connection pools and hands requests to them in turn, so each check scans a
handful of connections. Keep-alive still works: a shard reuses its own idle connections.
"""

from __future__ import annotations

import itertools
import math

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
        self.shards = tuple(
            httpx.AsyncHTTPTransport(verify=tls, limits=shard_limits) for _ in range(count)
        )
        self._turn = itertools.cycle(self.shards)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request` through the next pool (its response streams from that pool)."""
        return await next(self._turn).handle_async_request(request)

    async def aclose(self) -> None:
        """Close every pool's connections."""
        for shard in self.shards:
            await shard.aclose()
