"""What is known about each model's generation time before a run's first result.

The poll schedule (`runner.polling`) starts from these, so the first wave of a batch is
polled near its expected completion instead of by back-off. Two sources, both optional
(a source that cannot be read is no prior, never an error):

- the provider's published latency percentiles: `GET {base}/models/metrics?aliases=…`
  (no key, `TIMEOUT` s), for providers whose registry entry offers `metrics`. A model
  without recent successes is absent there ("no data"). The p50/p75/p90/p99 of
  `duration_ms` become `SAMPLES` durations spread as those percentiles say (the lower
  half mirrored from the upper, which the endpoint does not publish);
- the generation times earlier runs recorded: the manifests of the specs being run
  (`submitted_at` → `completed_at` of each finished request) and the history file at
  the output root (`runner.layout.timings_of`), to which every run adds the durations
  it saw, `KEEP` per provider and model.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from runner.durable import write_atomic
from runner.errors import StorageError
from runner.layout import timings_of
from runner.manifest import RequestState
from runner.providers import get_provider
from runner.transport import tls_context

METRICS_PATH = "/models/metrics"
TIMEOUT = 2.0  # seconds for the metrics request: a prior is not worth a slow start
SAMPLES = 20  # durations standing in for one model's published percentiles
KEEP = 64  # durations kept per provider and model in the history file
FORMAT = 1

# Published percentile -> its quantile; the lower ones are mirrored around the median.
_UPPER = ((0.5, "p50"), (0.75, "p75"), (0.9, "p90"), (0.99, "p99"))


def from_percentiles(percentiles: Mapping[str, Any]) -> list[float]:
    """Return `SAMPLES` durations (seconds) spread as `duration_ms` percentiles say."""
    try:
        upper = [(q, float(percentiles[name]) / 1000) for q, name in _UPPER]
    except (KeyError, TypeError, ValueError):
        return []
    if not all(math.isfinite(v) and v > 0 for _, v in upper):
        return []
    median = upper[0][1]
    lower = [(1 - q, max(2 * median - v, 0.0)) for q, v in reversed(upper[1:])]
    points = [*lower, *upper]
    samples = []
    for i in range(SAMPLES):
        q = (i + 0.5) / SAMPLES
        samples.append(_interpolate(points, q))
    return samples


def _interpolate(points: Sequence[tuple[float, float]], q: float) -> float:
    """Read a piecewise-linear quantile function at `q` (flat beyond its ends)."""
    if q <= points[0][0]:
        return points[0][1]
    for (q0, v0), (q1, v1) in zip(points, points[1:], strict=False):
        if q <= q1:
            return v0 + (v1 - v0) * (q - q0) / (q1 - q0)
    return points[-1][1]


async def published(
    base_url: str, models: Iterable[str], transport: httpx.AsyncBaseTransport | None = None
) -> dict[str, list[float]]:
    """Return, per model the provider has recent data for, durations from its metrics."""
    wanted = sorted(set(models))
    if not wanted:
        return {}
    params = {"aliases": wanted}  # repeated, as documented: ?aliases=a&aliases=b
    try:
        # The run's shared TLS context: loading a CA bundle here, on the event loop,
        # would hold back the first POSTs (runner.transport.tls_context).
        async with httpx.AsyncClient(
            base_url=base_url, timeout=TIMEOUT, transport=transport, verify=tls_context()
        ) as client:
            response = await client.get(METRICS_PATH, params=params)
        if response.status_code != 200:
            return {}
        document = response.json()
    except (httpx.HTTPError, ValueError):
        return {}  # unreachable, slow, not JSON: no prior
    found: dict[str, list[float]] = {}
    entries = document.get("models") if isinstance(document, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or entry.get("alias") not in wanted:
            continue
        metrics = entry.get("metrics")
        durations = metrics.get("duration_ms") if isinstance(metrics, dict) else None
        samples = from_percentiles(durations) if isinstance(durations, dict) else []
        if samples:
            found[str(entry["alias"])] = samples
    return found


def recorded(states: Iterable[RequestState]) -> dict[tuple[str, str], list[float]]:
    """Return the generation times manifests hold, per (provider, model), oldest first."""
    timed: list[tuple[str, str, str, float]] = []
    for state in states:
        seconds = state.generation_seconds
        if state.provider and state.model and state.completed_at and seconds is not None:
            timed.append((state.completed_at, state.provider, state.model, seconds))
    found: dict[tuple[str, str], list[float]] = {}
    for _, provider, model, seconds in sorted(timed):
        found.setdefault((provider, model), []).append(seconds)
    return found


def read_history(root: Path) -> dict[tuple[str, str], list[float]]:
    """Return the history file's durations per (provider, model); empty when unreadable."""
    try:
        data = json.loads(timings_of(root).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    durations = data.get("durations") if isinstance(data, dict) else None
    found: dict[tuple[str, str], list[float]] = {}
    if not isinstance(durations, dict):
        return found
    for provider, models in durations.items():
        if not isinstance(models, dict):
            continue
        for model, values in models.items():
            if not isinstance(values, list):
                continue
            kept = [float(v) for v in values if isinstance(v, int | float) and v >= 0]
            if kept:
                found[(str(provider), str(model))] = kept
    return found


def write_history(root: Path, learned: Mapping[tuple[str, str], Sequence[float]]) -> None:
    """Add this run's durations to the history file (the last `KEEP` per model)."""
    if not any(learned.values()):
        return
    merged = read_history(root)
    for key, values in learned.items():
        merged[key] = [*merged.get(key, []), *values][-KEEP:]
    durations: dict[str, dict[str, list[float]]] = {}
    for (provider, model), values in sorted(merged.items()):
        durations.setdefault(provider, {})[model] = [round(v, 3) for v in values]
    text = json.dumps({"format": FORMAT, "durations": durations}, indent=1, sort_keys=True)
    try:
        root.mkdir(parents=True, exist_ok=True)
        write_atomic(timings_of(root), (text + "\n").encode("utf-8"))
    except (OSError, StorageError):
        return  # a prior for the next run is not worth failing this one


def remembered(
    wanted: Iterable[tuple[str, str]], states: Iterable[RequestState], root: Path
) -> dict[str, list[float]]:
    """Return, per model of the run's (provider, model) pairs, the times earlier runs saw."""
    history = read_history(root)
    manifests = recorded(states)
    found: dict[str, list[float]] = {}
    for provider, model in sorted(set(wanted)):
        past = [*history.get((provider, model), []), *manifests.get((provider, model), [])]
        if past:
            found.setdefault(model, []).extend(past[-KEEP:])
    return found


async def published_for(
    wanted: Iterable[tuple[str, str]],
    bases: Mapping[str, str],
    transport: httpx.AsyncBaseTransport | None = None,
) -> dict[str, list[float]]:
    """Return, per model, durations from the metrics of each provider that publishes them."""
    pairs = sorted(set(wanted))
    found: dict[str, list[float]] = {}
    for provider in sorted({p for p, _ in pairs}):
        base = bases.get(provider)
        if base is None or not get_provider(provider).metrics:
            continue
        models = [m for p, m in pairs if p == provider]
        for model, samples in (await published(base, models, transport)).items():
            found.setdefault(model, []).extend(samples)
    return found
