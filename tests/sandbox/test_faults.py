"""Fault injection: each kind does what the real API does when things go wrong, reproducibly."""

from __future__ import annotations

import http.client
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest
import requests

from runner.errors import UsageError
from runner.sandbox import FAULT_KINDS, FaultSpec, RunningSandbox, SandboxConfig, parse_fault
from runner.sandbox.faults import FaultDice
from tests.sandbox.conftest import AUTH, ENDPOINT, Client, body
from tests.sandbox.test_contract import assert_error

Make = Callable[..., tuple[RunningSandbox, Client]]


def first(kind: str, n: int = 1, **knobs: object) -> dict[str, object]:
    """Knobs that make the first `n` eligible events hit fault `kind`."""
    return {"faults": {kind: FaultSpec(first=n)}, **knobs}


def test_rate_limit_is_429_with_retry_after_and_creates_nothing(make_sandbox: Make) -> None:
    """rate_limit answers 429 with Retry-After (seconds) and the error body; no generation."""
    _, client = make_sandbox(**first("rate_limit", retry_after=3))
    response = client.create(body())
    assert_error(response, 429)
    assert response.headers["Retry-After"] == "3"
    assert client.create(body()).status_code == 200
    stats = client.stats()
    assert stats["submissions"] == 1 and stats["duplicate_submissions"] == 0
    assert stats["rejected"] == {"429": 1} and stats["faults_injected"] == {"rate_limit": 1}


def test_unavailable_is_503_and_creates_nothing(make_sandbox: Make) -> None:
    """unavailable answers 503; the retried POST is the only submission."""
    _, client = make_sandbox(**first("unavailable"))
    assert_error(client.create(body()), 503)
    assert client.create(body()).status_code == 200
    assert client.stats()["submissions"] == 1


def test_poll_errors_are_5xx_then_the_poll_recovers(make_sandbox: Make) -> None:
    """poll_error answers 500/502/504 with the error body; later polls work."""
    _, client = make_sandbox(**first("poll_error", 3))
    gen_id = client.create(body()).json()["id"]
    for _ in range(3):
        response = client.poll(gen_id)
        assert response.status_code in (500, 502, 504)
        assert_error(response, response.status_code)
    assert client.wait(gen_id)["status"] == "completed"


def test_failed_generation_ends_in_error_with_a_message(make_sandbox: Make) -> None:
    """failed_generation: the poll ends with status error, a message, and no video."""
    _, client = make_sandbox(**first("failed_generation"))
    gen_id = client.create(body()).json()["id"]
    result = client.wait(gen_id)
    assert result["status"] == "error" and "video" not in result
    assert "failed" in result["error"].lower()
    assert client.stats()["generations"]["error"] == 1


def test_dropped_connection_after_accept_still_creates_the_generation(make_sandbox: Make) -> None:
    """drop_after_accept: the client gets no response, yet the generation exists and is billed."""
    _, client = make_sandbox(**first("drop_after_accept"))
    with pytest.raises(requests.ConnectionError):
        client.create(body())
    stats = client.stats()
    assert stats["submissions"] == 1 and stats["faults_injected"] == {"drop_after_accept": 1}
    assert sum(stats["generations"].values()) == 1
    # A blind retry is a second paid generation of the same body: the stats show it.
    assert client.create(body()).status_code == 200
    assert client.stats()["duplicate_submissions"] == 1


def test_truncated_download_promises_more_bytes_than_it_sends(make_sandbox: Make) -> None:
    """truncated_download sends the full Content-Length, then closes early; a retry is whole."""
    _, client = make_sandbox(**first("truncated_download"))
    result = client.wait(client.create(body()).json()["id"])
    url = urlsplit(result["video"][0])
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    conn.request("GET", f"{url.path}?{url.query}")
    response = conn.getresponse()
    promised = int(response.headers["Content-Length"])
    with pytest.raises(http.client.IncompleteRead) as cut:
        response.read()
    assert 0 < len(cut.value.partial) < promised
    conn.close()
    whole = requests.get(result["video"][0], timeout=10)
    assert len(whole.content) == promised


def test_short_url_expires_and_a_fresh_poll_gives_a_working_one(make_sandbox: Make) -> None:
    """short_url: the first URL is already expired (403); polling again yields a good URL."""
    _, client = make_sandbox(**first("short_url", short_url_ttl=0.0))
    gen_id = client.create(body()).json()["id"]
    stale = client.wait(gen_id)["video"][0]
    assert_error(requests.get(stale, timeout=10), 403, "expired")
    fresh = client.poll(gen_id).json()["video"][0]
    assert requests.get(fresh, timeout=10).status_code == 200


def test_slow_fault_accepts_the_create_but_answers_late(make_sandbox: Make) -> None:
    """slow: a client that gives up before slow_seconds hears nothing, yet its create was
    accepted (and billed); the next create answers."""
    _, client = make_sandbox(**first("slow", slow_seconds=5.0))
    with pytest.raises(requests.exceptions.ReadTimeout):
        client.session.post(client.base_url + ENDPOINT, json=body(), headers=AUTH,
                            timeout=(10, 0.5))
    stats = client.stats()
    assert stats["faults_injected"] == {"slow": 1}
    assert stats["submissions"] == 1
    assert client.create(body(seed=2)).status_code == 200
    assert client.stats()["submissions"] == 2


def test_faults_change_at_runtime_and_first_n_restarts(make_sandbox: Make) -> None:
    """POST /_sandbox/config switches a fault on for one server; bad knobs are a 400."""
    _, client = make_sandbox()
    assert client.create(body()).status_code == 200
    knobs = client.configure(faults={"unavailable": {"first": 2}}).json()
    assert knobs["faults"] == {"unavailable": {"rate": 0.0, "first": 2}}
    assert [client.create(body()).status_code for _ in range(3)] == [503, 503, 200]
    assert_error(client.configure(latency="slow"), 400, "latency")
    assert_error(client.configure(nope=1), 400, "unknown sandbox knob")
    assert_error(client.configure(faults={"meteor": 1.0}), 400, "unknown fault")
    assert_error(client.configure(state_dir="/tmp"), 400, "restart")
    assert client.session.get(client.base_url + "/_sandbox/config").json()["latency"] == 0.0


def test_rates_are_reproducible_from_the_seed() -> None:
    """The same seed gives the same fault pattern; each kind has its own stream."""
    def pattern(seed: int, *also: str) -> list[bool]:
        faults = {kind: FaultSpec(rate=0.5) for kind in ("rate_limit", *also)}
        dice = FaultDice(SandboxConfig(seed=seed, faults=faults))
        hits = []
        for _ in range(64):
            for kind in also:
                dice.fires(kind)
            hits.append(dice.fires("rate_limit"))
        return hits

    assert pattern(7) == pattern(7) == pattern(7, "unavailable", "slow")
    assert pattern(7) != pattern(8)
    assert 10 < sum(pattern(7)) < 54


def test_parse_fault_flags() -> None:
    """--fault takes KIND=RATE or KIND=first:N and refuses anything else with a hint."""
    assert parse_fault("rate_limit=0.25") == ("rate_limit", FaultSpec(rate=0.25))
    assert parse_fault("drop_after_accept=first:2") == ("drop_after_accept", FaultSpec(first=2))
    for bad, hint in [("meteor=1", "unknown fault"), ("slow", "KIND=RATE"),
                      ("slow=often", "rate"), ("slow=2", "between 0 and 1")]:
        with pytest.raises(UsageError, match=hint):
            kind, spec = parse_fault(bad)
            SandboxConfig(faults={kind: spec})
    assert set(FAULT_KINDS) >= {"rate_limit", "unavailable", "poll_error", "failed_generation",
                                "drop_after_accept", "truncated_download", "short_url", "slow"}
