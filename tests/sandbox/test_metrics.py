"""`GET /models/metrics` on the sandbox: no key, percentiles of finished generations only."""

from __future__ import annotations

from collections.abc import Callable

from runner.sandbox import RunningSandbox
from runner.sandbox.config import FaultSpec
from tests.sandbox.conftest import Client, body

Make = Callable[..., tuple[RunningSandbox, Client]]


def metrics(client: Client, **params: object) -> dict[str, object]:
    """Return the metrics document (asserting a 200), sent without any key."""
    response = client.session.get(client.base_url + "/models/metrics", params=params, timeout=10)
    assert response.status_code == 200, response.text
    document: dict[str, object] = response.json()
    return document


def test_no_data_until_a_generation_has_finished(make_sandbox: Make) -> None:
    """A fresh sandbox reports no model (absent means no data, not zero latency)."""
    _, client = make_sandbox()
    document = metrics(client)
    assert document["models"] == [] and document["window_seconds"] == 300
    assert str(document["generated_at"]).endswith("Z")


def test_percentiles_follow_the_latency_of_finished_generations(make_sandbox: Make) -> None:
    """After generations of 0.3 s finish, duration_ms percentiles are about 300 ms."""
    _, client = make_sandbox(latency=0.3, jitter=0.0)
    for seed in (1, 2, 3):
        client.generate(body(seed=seed))
    (entry,) = metrics(client)["models"]  # type: ignore[misc]
    assert entry["alias"] == "runway/gen4_turbo"
    assert entry["endpoint"] == "/v2/generate/video/runway/generation"
    durations = entry["metrics"]["duration_ms"]
    assert set(durations) == {"p50", "p75", "p90", "p99"}
    assert all(290 <= durations[p] <= 400 for p in durations), durations


def test_aliases_filter_and_other_parameters_are_refused(make_sandbox: Make) -> None:
    """`aliases` keeps only the named models; any other query parameter is a 400."""
    _, client = make_sandbox()
    client.generate(body())
    assert metrics(client, aliases="google/veo3")["models"] == []
    assert len(metrics(client, aliases="runway/gen4_turbo")["models"]) == 1  # type: ignore[arg-type]
    refused = client.session.get(client.base_url + "/models/metrics", params={"model": "x"})
    assert refused.status_code == 400


def test_failed_generations_are_not_measured(make_sandbox: Make) -> None:
    """A model whose generations all fail drops off the list instead of showing numbers."""
    _, client = make_sandbox(faults={"failed_generation": FaultSpec(first=1)})
    created = client.create(body())
    assert client.wait(created.json()["id"])["status"] == "error"
    assert metrics(client)["models"] == []

