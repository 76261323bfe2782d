"""The sandbox's usage logs (`GET /v2/logs`): one row per accepted generation.

Like the API's ledger, a row is written only after its generation ends, `log_lag`
seconds later: a row missing right after a submit is expected. Rows are written lazily,
when a query looks past a generation's `ends_at + log_lag` (no timers, however many
generations are in flight), and once written they never change. With `--state-dir`
they are appended to `ledger.jsonl`, so a restarted server lists them again.

`parse_query()` reads the documented query string (`period` or `start`+`end`, `model`
and `status` repeated, `limit`, `offset`) and says what is wrong in the API's words;
`RateWindow` answers 429 past `log_rate` queries per `log_rate_window` seconds.
"""

from __future__ import annotations

import heapq
import itertools
import json
import math
import re
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from runner.sandbox.pricing import credits_of
from runner.sandbox.state import Generation
from runner.usage import LOGS_MAX_LIMIT, LOGS_MAX_MODELS, iso_ms

DEFAULT_LIMIT = 50
MAX_WINDOW = timedelta(days=92)
STATUSES = ("succeeded", "failed")
_PERIOD = re.compile(r"([1-9][0-9]*)([hd])")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def price(gen: Generation) -> tuple[float, int]:
    """Return what a succeeded generation is billed, (usd, credits): its charge at create."""
    return gen.usd, credits_of(gen.usd)


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """One written usage-log row."""

    created_ms: int  # when the POST was accepted, epoch milliseconds (the wire's precision)
    status: str  # "succeeded" or "failed"
    model: str
    inference_id: str  # the generation id
    client_request_id: str | None
    usd: float
    credits: int

    def to_wire(self) -> dict[str, Any]:
        """Return the row as `GET /v2/logs` shows it."""
        return {
            "created": iso_ms(self.created_ms / 1000),
            "status": self.status,
            "origin": "api",
            "model": self.model,
            "cost": {"usd": self.usd, "credits": self.credits},
            "tokens": {"input": 0, "output": 0, "total": 0},  # videos are not billed per token
            "request_id": None,  # the sandbox names no individual HTTP calls
            "inference_id": self.inference_id,
            "client_request_id": self.client_request_id,
        }


@dataclass(frozen=True, slots=True)
class LogQuery:
    """A checked `GET /v2/logs` query: an inclusive window in epoch ms, filters, a page."""

    start_ms: int
    end_ms: int
    models: frozenset[str]  # empty: every model
    statuses: frozenset[str]  # empty: both
    limit: int
    offset: int


class Ledger:
    """Written rows, and the generations whose rows are still to be written."""

    def __init__(self, folder: Path | None = None) -> None:
        self._file = folder / "ledger.jsonl" if folder is not None else None
        self.rows: list[LedgerRow] = list(self._load())
        self._written = {row.inference_id for row in self.rows}
        self._pending: list[tuple[float, int, Generation]] = []  # heap by ends_at
        self._order = itertools.count()

    def expect(self, gen: Generation) -> None:
        """Note an accepted generation; its row is written once it has ended."""
        if gen.id not in self._written:
            heapq.heappush(self._pending, (gen.ends_at, next(self._order), gen))

    def settle(self, now: float, lag: float, wall_offset: float,
               failed: Callable[[Generation], bool]) -> None:
        """Write the row of every generation that ended at least `lag` seconds before `now`."""
        while self._pending and self._pending[0][0] + lag <= now:
            _, _, gen = heapq.heappop(self._pending)
            is_failed = failed(gen)
            usd, credits = (0.0, 0) if is_failed else price(gen)  # failures are not billed
            row = LedgerRow(
                created_ms=math.floor((gen.submitted_at + wall_offset) * 1000),
                status="failed" if is_failed else "succeeded",
                model=gen.job.model,
                inference_id=gen.id,
                client_request_id=gen.client_request_id,
                usd=usd,
                credits=credits,
            )
            self._append(row)

    def page(self, query: LogQuery) -> dict[str, Any]:
        """Return the body of `GET /v2/logs` for `query`: rows newest first, and paging."""
        matching = [
            row for row in self.rows
            if query.start_ms <= row.created_ms <= query.end_ms
            and (not query.models or row.model in query.models)
            and (not query.statuses or row.status in query.statuses)
        ]
        # Newest first; among rows of one millisecond, the later written first.
        newest = sorted(enumerate(matching), key=lambda p: (p[1].created_ms, p[0]), reverse=True)
        page = [row for _, row in newest[query.offset : query.offset + query.limit]]
        return {
            "data": [row.to_wire() for row in page],
            "pagination": {
                "limit": query.limit,
                "offset": query.offset,
                "total": len(matching),
                "has_more": query.offset + len(page) < len(matching),
            },
        }

    def _append(self, row: LedgerRow) -> None:
        self.rows.append(row)
        self._written.add(row.inference_id)
        if self._file is not None:
            record = {
                "created_ms": row.created_ms, "status": row.status, "model": row.model,
                "inference_id": row.inference_id, "client_request_id": row.client_request_id,
                "usd": row.usd, "credits": row.credits,
            }
            with self._file.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(record, separators=(",", ":")) + "\n")

    def _load(self) -> Iterator[LedgerRow]:
        if self._file is None or not self._file.exists():
            return
        with self._file.open(encoding="utf-8") as fh:
            for line in fh:
                if not line.endswith("\n"):
                    break  # cut short by a kill: the row is written again at the next query
                yield LedgerRow(**json.loads(line))


class RateWindow:
    """Allow `rate` queries per `window` seconds, sliding."""

    def __init__(self) -> None:
        self._times: deque[float] = deque()

    def wait(self, now: float, rate: int, window: float) -> int | None:
        """Count a query at `now`; return the seconds to wait instead when over the rate."""
        while self._times and self._times[0] <= now - window:
            self._times.popleft()
        if len(self._times) >= rate:
            return max(1, math.ceil(self._times[len(self._times) - rate] + window - now))
        self._times.append(now)
        return None


class QueryError(ValueError):
    """Raised for a `GET /v2/logs` query the API answers with 400."""


def parse_query(query: Mapping[str, Sequence[str]], now: float) -> LogQuery:
    """Check a logs query (each name with all its values) at wall time `now`."""
    period, start, end = (_one(query, name) for name in ("period", "start", "end"))
    if period is not None and (start is not None or end is not None):
        raise QueryError("give either period or start and end, not both")
    if period is not None:
        match = _PERIOD.fullmatch(period)
        if match is None:
            msg = f"period must be a positive integer followed by h or d (24h, 7d), not {period!r}"
            raise QueryError(msg)
        hours = int(match[1]) * (24 if match[2] == "d" else 1)
        if hours > MAX_WINDOW / timedelta(hours=1):
            raise QueryError("the window must not exceed 92 days")
        end_at = datetime.fromtimestamp(now, UTC)
        start_at = end_at - timedelta(hours=hours)
    elif start is None or end is None:
        if start is None and end is None:
            raise QueryError("give either period (24h, 7d) or both start and end")
        raise QueryError("start and end must be given together")
    else:
        start_at, end_at = _moment("start", start), _moment("end", end)
        if end_at < start_at:
            raise QueryError("end must not be earlier than start")
        if end_at - start_at > MAX_WINDOW:
            raise QueryError("the window must not exceed 92 days")
    models = query.get("model", [])
    if len(models) > LOGS_MAX_MODELS:
        raise QueryError(f"at most {LOGS_MAX_MODELS} model values")
    statuses = query.get("status", [])
    for status in statuses:
        if status not in STATUSES:
            msg = f"status must be succeeded or failed (repeat it for both), not {status!r}"
            raise QueryError(msg)
    return LogQuery(
        start_ms=-((_EPOCH - start_at) // _MS),  # rows have whole ms: round the start up
        end_ms=(end_at - _EPOCH) // _MS,
        models=frozenset(models),
        statuses=frozenset(statuses),
        limit=_integer(query, "limit", DEFAULT_LIMIT, 1, LOGS_MAX_LIMIT),
        offset=_integer(query, "offset", 0, 0, None),
    )


def _one(query: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = query.get(name, [])
    if len(values) > 1:
        raise QueryError(f"give {name} once")
    return values[0] if values else None


def _moment(name: str, text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        msg = f"{name} must be an ISO-8601 time (2026-07-01T00:00:00Z), not {text!r}"
        raise QueryError(msg) from None
    # Documented: a time without a UTC offset is read as UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _integer(query: Mapping[str, Sequence[str]], name: str, default: int, low: int,
             high: int | None) -> int:
    text = _one(query, name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise QueryError(f"{name} must be an integer, not {text!r}") from None
    if value < low or (high is not None and value > high):
        bounds = f"{low}-{high}" if high is not None else f">= {low}"
        raise QueryError(f"{name} must be {bounds}, not {value}")
    return value
