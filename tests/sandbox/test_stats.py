"""`GET /_sandbox/stats`: the counters a test uses to prove nothing was submitted twice."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

from runner.sandbox import RunningSandbox
from tests.sandbox.conftest import Client, body

Make = Callable[..., tuple[RunningSandbox, Client]]


def canonical_sha256(payload: dict[str, object]) -> str:
    """Hash a body the documented canonical way: sorted keys, no whitespace, UTF-8."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def test_counts_submissions_duplicates_polls_and_downloads(client: Client) -> None:
    """Accepted POSTs are counted per canonical body; a repeat is a duplicate."""
    result, _ = client.generate(body(seed=1))
    client.create(body(seed=2))
    client.create({**body(seed=1)})  # same content, same canonical body
    stats = client.stats()
    assert stats["submissions"] == 3
    assert stats["duplicate_submissions"] == 1
    assert stats["submissions_by_body"] == {canonical_sha256(body(seed=1)): 2,
                                           canonical_sha256(body(seed=2)): 1}
    assert stats["polls"] >= 1 and stats["downloads"] == 1
    assert set(stats) >= {"rejected", "faults_injected", "generations", "renders"}


def test_key_order_does_not_make_a_body_distinct(client: Client) -> None:
    """The same fields in another order are the same body (canonical JSON)."""
    forward = body()
    backward = dict(reversed(list(forward.items())))
    client.create(forward)
    client.create(backward)
    assert client.stats()["duplicate_submissions"] == 1


def test_rejected_requests_are_counted_by_status_not_as_submissions(client: Client) -> None:
    """400s and 401s are counted under `rejected` and never as submissions."""
    client.create(body(ratio="7:3"))
    client.create(body(), headers={})
    client.poll("missing")
    stats = client.stats()
    assert stats["submissions"] == 0
    assert stats["rejected"] == {"400": 1, "401": 1, "404": 1}


def test_delete_resets_the_counters(client: Client) -> None:
    """DELETE /_sandbox/stats zeroes the counters (one server, several scenarios)."""
    client.create(body())
    reset = client.session.delete(client.base_url + "/_sandbox/stats").json()
    assert reset["submissions"] == 0 and reset["submissions_by_body"] == {}
    assert client.stats()["polls"] == 0


def test_in_process_stats_match_http(make_sandbox: Make) -> None:
    """RunningSandbox.stats() returns what GET /_sandbox/stats returns."""
    running, client = make_sandbox()
    client.create(body())
    assert running.stats() == client.stats()
