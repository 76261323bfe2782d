"""Bursts of first connections against a server with a small listen backlog.

The server is the standard library's `ThreadingHTTPServer` (listen backlog 5, HTTP/1.0:
every request is a new connection) answering the create endpoint slowly, like a busy
API. Before `runner.transport` bounded new connections, 40 creates started at once came back with
up to 23 `OutcomeUnknown` (connection reset after the request was sent) that the server
never received; the counts here are taken on the server's side.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpcore
import httpx
import pytest

from runner.api import ApiClient, OutcomeUnknown, Retryable
from runner.clock import SystemClock
from runner.transport import OPENING, Opening, PooledTransport

ENDPOINT = "/v2/generate/video/runway/generation"
ANSWER_DELAY = 0.1  # seconds a create takes on the server: long enough for a burst to pile up
BURST = 40
MANY = 12  # three times the default bound: slots must come back for these to finish


@dataclass
class Counts:
    """What the server saw, counted under one lock."""

    connections: int = 0
    received: int = 0
    unanswered: int = 0  # requests read and not yet answered
    most_unanswered: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    counts: Counts
    barrier: threading.Barrier | None = None  # requests with seed >= 100 meet here

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.counts.lock:
            self.counts.connections += 1
        super().process_request(request, client_address)


class _Create(BaseHTTPRequestHandler):
    """Answer a create like the API: {"id", "status": "queued"}, after ANSWER_DELAY."""

    server: _Server

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        counts = self.server.counts
        with counts.lock:
            counts.received += 1
            counts.unanswered += 1
            counts.most_unanswered = max(counts.most_unanswered, counts.unanswered)
            number = counts.received
        status = 200
        if self.server.barrier is not None and body["seed"] >= 100:
            try:
                self.server.barrier.wait()
            except threading.BrokenBarrierError:
                status = 500  # not all of them were here at once
        else:
            time.sleep(ANSWER_DELAY)  # the slow server is the point: there is no clock to inject
        with counts.lock:
            counts.unanswered -= 1  # before the answer, so the client cannot overtake it
        data = json.dumps({"id": f"g{number}", "status": "queued"}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output quiet."""


class _KeepAliveCreate(_Create):
    protocol_version = "HTTP/1.1"  # keeps each connection open for the next request


Serve = Callable[..., tuple[_Server, str]]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Start stdlib HTTP servers on loopback (backlog 5); shut them down after the test."""
    servers: list[_Server] = []

    def start(handler: type[_Create] = _Create) -> tuple[_Server, str]:
        server = _Server(("127.0.0.1", 0), handler)
        assert server.request_queue_size == 5  # the default backlog the issue is about
        server.counts = Counts()
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server, f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


async def _burst(base_url: str, seeds: range, max_in_flight: int = BURST) -> list[object]:
    """Start one create per seed at once; return each one's generation id or error."""
    client = ApiClient("test", base_url, "test-key", SystemClock(), max_in_flight=max_in_flight)
    try:
        calls = (client.create(ENDPOINT, {"seed": seed}) for seed in seeds)
        # A generous bound: a regression that leaks slots must fail, not hang.
        results = await asyncio.wait_for(
            asyncio.gather(*calls, return_exceptions=True), timeout=60
        )
    finally:
        await client.aclose()
    return [r.generation_id if not isinstance(r, BaseException) else r for r in results]


def test_a_burst_of_40_first_posts_reaches_a_backlog_5_server_every_time(serve: Serve) -> None:
    """40 creates at once all reach the server and all come back with an id, none unknown."""
    server, base_url = serve()
    results = asyncio.run(_burst(base_url, range(BURST)))
    unknown = [r for r in results if isinstance(r, OutcomeUnknown)]
    failed = [r for r in results if isinstance(r, BaseException)]
    counts = (server.counts.received, len(unknown), len(failed))
    assert counts == (BURST, 0, 0), [str(f) for f in failed[:3]]
    assert len(set(results)) == BURST


def test_the_server_never_holds_more_unanswered_first_requests_than_the_bound(
    serve: Serve,
) -> None:
    """At most OPENING new connections are out unanswered at once: the backlog never fills."""
    server, base_url = serve()
    asyncio.run(_burst(base_url, range(BURST)))
    assert server.counts.connections == BURST
    assert 1 <= server.counts.most_unanswered <= OPENING


def test_reused_keep_alive_connections_are_not_held_back(serve: Serve) -> None:
    """8 requests on 8 idle keep-alive connections are all at the server at once."""
    server, base_url = serve(_KeepAliveCreate)
    width = 2 * OPENING

    async def warm_then_burst() -> list[object]:
        client = ApiClient("test", base_url, "test-key", SystemClock(), max_in_flight=width)
        try:
            # Opens `width` connections (OPENING at a time); they stay open, idle.
            await asyncio.gather(*(client.create(ENDPOINT, {"seed": s}) for s in range(width)))
            server.barrier = threading.Barrier(width, timeout=30)
            calls = (client.create(ENDPOINT, {"seed": 100 + s}) for s in range(width))
            return list(await asyncio.gather(*calls, return_exceptions=True))
        finally:
            await client.aclose()

    results = asyncio.run(warm_then_burst())
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert server.counts.connections == width  # the burst reused every connection
    assert server.counts.most_unanswered == width  # and none waited for a slot


def test_a_server_that_hangs_up_unanswered_gives_the_slots_back() -> None:
    """Connections closed without an answer free their slots: later creates still go out."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    stop = threading.Event()

    def hang_up() -> None:
        while not stop.is_set():
            connection, _ = listener.accept()
            connection.recv(65536)
            connection.close()

    threading.Thread(target=hang_up, daemon=True).start()
    try:
        results = asyncio.run(_burst(f"http://127.0.0.1:{port}", range(MANY), 4))
    finally:
        stop.set()
        socket.create_connection(("127.0.0.1", port)).close()  # wake the accept to end it
        listener.close()
    assert all(isinstance(r, OutcomeUnknown) for r in results), results


def test_refused_connections_give_the_slots_back() -> None:
    """Failed connects free their slots: every create is a Retryable, none hangs."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]  # closed again: nothing listens there now
    results = asyncio.run(_burst(f"http://127.0.0.1:{port}", range(MANY), 4))
    assert all(isinstance(r, Retryable) for r in results), results


# ------------------------------------------------------------------ the slots alone
CONNECT = "connection.connect_tcp.started"


def _pending(future: asyncio.Future[Any]) -> bool:
    return not future.done()


def test_a_connect_waits_for_a_free_slot_and_gets_it_when_one_comes_back() -> None:
    """With one slot, a second request's connect waits until the first gives its slot back."""

    async def go() -> None:
        gate = asyncio.Semaphore(1)
        first, second = Opening(gate), Opening(gate)
        await first.trace(CONNECT, {})
        waiting = asyncio.ensure_future(second.trace(CONNECT, {}))
        await asyncio.sleep(0)
        assert _pending(waiting) and first.held
        first.release()
        first.release()  # twice is once: a second slot must not appear
        await asyncio.wait_for(waiting, timeout=5)
        assert second.held and not first.held
        third = asyncio.ensure_future(Opening(gate).trace(CONNECT, {}))
        await asyncio.sleep(0)
        assert _pending(third)
        third.cancel()

    asyncio.run(go())


def test_only_a_connect_takes_a_slot() -> None:
    """Events of a reused connection (send, receive) never wait for a slot."""

    async def go() -> None:
        gate = asyncio.Semaphore(1)
        await Opening(gate).trace(CONNECT, {})  # the only slot, never given back
        reuse = Opening(gate)
        for event in ("http11.send_request_headers.started",
                      "http11.receive_response_headers.complete"):
            await asyncio.wait_for(reuse.trace(event, {}), timeout=5)
        assert not reuse.held

    asyncio.run(go())


def test_a_failed_connect_gives_its_slot_back() -> None:
    """connect_tcp.failed frees the slot at once."""

    async def go() -> None:
        gate = asyncio.Semaphore(1)
        for _ in range(3):
            opening = Opening(gate)
            await asyncio.wait_for(opening.trace(CONNECT, {}), timeout=5)
            await opening.trace("connection.connect_tcp.failed", {})
            assert not opening.held

    asyncio.run(go())


def test_a_trace_set_by_the_caller_is_still_called() -> None:
    """The slot hook wraps a caller's own trace callback instead of replacing it."""
    seen: list[str] = []

    async def outer(event: str, info: dict[str, Any]) -> None:
        seen.append(event)

    async def go() -> None:
        opening = Opening(asyncio.Semaphore(1), outer)
        await opening.trace(CONNECT, {})
        await opening.trace("http11.send_request_headers.started", {})

    asyncio.run(go())
    assert seen == [CONNECT, "http11.send_request_headers.started"]


def test_the_transport_needs_at_least_one_slot() -> None:
    """Zero slots would never connect: refused at construction."""
    with pytest.raises(ValueError, match="at least 1"):
        PooledTransport(httpx.Limits(max_connections=8), opening=0)


def test_a_refused_connect_is_still_an_httpx_connect_error() -> None:
    """The slot hook changes no error: a refused connect is httpx's ConnectError, Retryable."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    [result] = asyncio.run(_burst(f"http://127.0.0.1:{port}", range(1), 1))
    assert isinstance(result, Retryable)
    assert isinstance(result.__cause__, httpx.ConnectError)
    assert isinstance(result.__cause__.__cause__, httpcore.ConnectError)
