"""Cost and usage logs as the API reports them: reading answers, building log queries.

Pure: no HTTP here (`runner.api` sends the calls and maps failures). A cost that an
answer does not state is None, never 0: "free" and "not told" are different facts.
`GET /v2/logs` rows are one per request, newest first; an async video's row is written
only after the generation ends, so a row missing right after a submit proves nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

LOGS_PATH = "/v2/logs"
LOGS_MAX_LIMIT = 100  # rows per page the API serves at most
LOGS_MAX_WINDOW = 92 * 86400.0  # seconds: the API refuses a longer window with a 400
LOGS_MAX_MODELS = 50  # `model` values per query


class MalformedPage(ValueError):
    """Raised when a usage-logs answer does not have the documented shape."""


def usd_amount(value: object) -> float | None:
    """Read a USD amount (number or numeric string); anything else is unknown."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, int | float) and math.isfinite(value) and value >= 0:
        return float(value)
    return None


def credit_count(value: object) -> int | None:
    """Read a credit count (integer, integral float or digit string); else unknown."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        return int(text) if text.isdigit() else None
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    if isinstance(value, int) and value >= 0:
        return value
    return None


def parse_cost(headers: Mapping[str, str], data: object) -> tuple[float | None, int | None]:
    """Return (usd, credits) from the cost headers, else the body's `meta.usage`."""
    usage: Mapping[str, object] = {}
    if isinstance(data, Mapping):
        meta = data.get("meta")
        if isinstance(meta, Mapping) and isinstance(meta.get("usage"), Mapping):
            usage = meta["usage"]
    usd = usd_amount(headers.get("x-aimlapi-usd-spent"))
    credits = credit_count(headers.get("x-aimlapi-credits-used"))
    return (
        usd if usd is not None else usd_amount(usage.get("usd_spent")),
        credits if credits is not None else credit_count(usage.get("credits_used")),
    )


@dataclass(frozen=True, slots=True)
class LogRow:
    """One request in the provider's usage logs."""

    created: str  # when the request was made, ISO-8601 UTC as the API wrote it
    status: str  # "succeeded" or "failed" (failed rows cost nothing)
    model: str
    client_request_id: str | None  # the X-Client-Request-Id sent, if the API kept one
    inference_id: str  # the generation id, for an async video
    usd: float | None
    credits: int | None


@dataclass(frozen=True, slots=True)
class LogsPage:
    """One page of usage logs, newest first."""

    rows: tuple[LogRow, ...]
    total: int  # rows matching the query across all pages
    has_more: bool


def logs_params(
    start: float, end: float, models: Sequence[str], offset: int, limit: int
) -> tuple[tuple[str, str], ...]:
    """Return the query of one logs page; ValueError for one the API would refuse."""
    problems = []
    if not 1 <= limit <= LOGS_MAX_LIMIT:
        problems.append(f"limit must be 1..{LOGS_MAX_LIMIT}, not {limit}")
    if offset < 0:
        problems.append(f"offset must be >= 0, not {offset}")
    if end < start:
        problems.append("end must not be earlier than start")
    elif end - start > LOGS_MAX_WINDOW:
        problems.append("the window must not exceed 92 days")
    if isinstance(models, str):
        problems.append("models is a sequence of names, not one string")
    elif len(models) > LOGS_MAX_MODELS:
        problems.append(f"at most {LOGS_MAX_MODELS} models per query")
    if problems:
        msg = "usage logs query: " + "; ".join(problems)
        raise ValueError(msg)
    return (
        # Widened to whole milliseconds, so a row created exactly at `end` stays inside.
        ("start", iso_ms(start, round_up=False)),
        ("end", iso_ms(end, round_up=True)),
        # One `model=` per value: the API reads a comma-joined value as one long name.
        *(("model", model) for model in models),
        ("offset", str(offset)),
        ("limit", str(limit)),
    )


def iso_ms(epoch: float, *, round_up: bool = False) -> str:
    """Format epoch seconds as ISO-8601 UTC to the millisecond: 2026-07-01T00:00:00.000Z."""
    millis = math.ceil(epoch * 1000) if round_up else math.floor(epoch * 1000)
    moment = datetime.fromtimestamp(millis // 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis % 1000:03d}Z"


def parse_logs_page(data: object) -> LogsPage:
    """Read a `GET /v2/logs` body; raise `MalformedPage` naming what is wrong."""
    if not isinstance(data, Mapping):
        raise MalformedPage("the answer is not a JSON object")
    rows, pagination = data.get("data"), data.get("pagination")
    if not isinstance(rows, list):
        raise MalformedPage("`data` is not a list")
    if not isinstance(pagination, Mapping):
        raise MalformedPage("`pagination` is not an object")
    total, has_more = pagination.get("total"), pagination.get("has_more")
    if not isinstance(total, int) or isinstance(total, bool) or total < 0:
        raise MalformedPage(f"pagination.total is {_shown(pagination, 'total')}")
    if not isinstance(has_more, bool):
        raise MalformedPage(f"pagination.has_more is {_shown(pagination, 'has_more')}")
    return LogsPage(tuple(_row(row, i) for i, row in enumerate(rows)), total, has_more)


def _row(row: object, index: int) -> LogRow:
    if not isinstance(row, Mapping):
        raise MalformedPage(f"data[{index}] is not an object")
    cost = row.get("cost")
    cost = cost if isinstance(cost, Mapping) else {}
    return LogRow(
        created=_field(row, index, "created", str),
        status=_field(row, index, "status", str),
        model=_field(row, index, "model", str),
        client_request_id=_field(row, index, "client_request_id", str, optional=True),
        inference_id=str(_field(row, index, "inference_id", (str, int))),
        usd=usd_amount(cost.get("usd")),
        credits=credit_count(cost.get("credits")),
    )


def _field(row: Mapping[str, Any], index: int, name: str, kind: type | tuple[type, ...],
           *, optional: bool = False) -> Any:
    value = row.get(name)
    if optional and value in (None, ""):
        return None
    if not isinstance(value, kind) or isinstance(value, bool) or value == "":
        raise MalformedPage(f"data[{index}].{name} is {_shown(row, name)}")
    return value


def _shown(mapping: Mapping[str, Any], name: str) -> str:
    return "missing" if name not in mapping else f"{mapping[name]!r}"[:60]
