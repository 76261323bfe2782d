"""`GET /models/metrics`: the latency percentiles the API publishes, from this sandbox.

As documented: no key; `duration_ms` p50/p75/p90/p99 per model over a sliding window of
`WINDOW` seconds; only generations that finished successfully inside the window count,
and a model without one is absent from `models` ("no data", not zero). `aliases` keeps
only the models named (repeat it, no commas); any other query parameter is a 400.

The durations are the sandbox's own: submission to end, queueing for a slot included, so
they follow its latency, jitter and concurrency knobs as a real provider's follow load.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from runner.catalog import get_model
from runner.polling import quantile
from runner.sandbox.state import Generation

PATH = "/models/metrics"
WINDOW = 300  # seconds, the docs' example window
PERCENTILES = (50, 75, 90, 99)
UNIFIED = "/v2/video/generations"


def model_metrics(
    generations: Iterable[Generation],
    now: float,
    wall: float,
    aliases: frozenset[str] | None = None,
) -> dict[str, Any]:
    """Return the metrics document for the generations that ended well within the window.

    `now` is the event-loop clock the generations' times are on; `wall` is epoch seconds
    for `generated_at`.
    """
    durations: dict[str, list[float]] = {}
    for gen in generations:
        if gen.failure is not None or not now - WINDOW <= gen.ends_at <= now:
            continue
        if aliases is not None and gen.job.model not in aliases:
            continue
        durations.setdefault(gen.job.model, []).append(gen.ends_at - gen.submitted_at)
    models = []
    for alias in sorted(durations):
        ordered = sorted(durations[alias])
        found = get_model(alias)
        endpoint = found.default_route.endpoint if found is not None else UNIFIED
        shown = {f"p{p}": round(quantile(ordered, p / 100) * 1000, 1) for p in PERCENTILES}
        models.append({"alias": alias, "endpoint": endpoint, "metrics": {"duration_ms": shown}})
    moment = datetime.fromtimestamp(wall, UTC)
    generated = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return {"window_seconds": WINDOW, "generated_at": generated, "models": models}


def metrics_handler(
    generations: Callable[[], Iterable[Generation]],
    now: Callable[[], float],
    wall: Callable[[], float],
) -> Callable[[web.Request], Any]:
    """Return the aiohttp handler of `GET /models/metrics` over the sandbox's generations."""

    async def handle(request: web.Request) -> web.Response:
        unknown = sorted(set(request.query) - {"aliases"})
        if unknown:
            message = f"Query validation error: unknown parameter {unknown[0]!r} (only aliases)"
            return web.json_response({"message": message, "statusCode": 400}, status=400)
        wanted = request.query.getall("aliases", None)
        aliases = frozenset(wanted) if wanted is not None else None
        return web.json_response(model_metrics(generations(), now(), wall(), aliases))

    return handle

