"""Settle unknown outcomes from the provider's usage logs instead of asking a person.

Every POST carries an `X-Client-Request-Id` made from the request id, the attempt and a
nonce (`client_request_id`), recorded in the manifest before the POST goes out. When its
outcome is unknown (no answer after sending, or a crash between the POST and recording
its answer), `GET /v2/logs` says what became of it:

    found                          the generation exists: its `inference_id` is the
                                   generation id; it is recorded (with the evidence) and
                                   collected like any submitted request
    absent, POST under HORIZON ago the ledger may still be behind (a video's row is
                                   written only after the generation ends): it stays
                                   unknown, checked again while the run lasts and on
                                   the next run
    absent, POST over HORIZON ago  no generation can still be running unseen: nothing
                                   was made, so it is submitted again; the evidence (the
                                   window searched, the rows read) goes into the manifest

A provider without usage logs keeps the old behaviour: the request is reported and only
`--resubmit-unknown` sends it again.

The horizon: the API's docs give generation deadlines of minutes (their example waits
600 s; 504 is a generation timeout) and write the ledger row when the generation ends.
`HORIZON` is six hours: far past any generation we have seen, short enough that a
nightly run settles the previous night's unknowns.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from runner.api import ApiClient, Rejected, Retryable
from runner.clock import Clock
from runner.correlation import is_client_request_id
from runner.usage import LogRow

HORIZON = 6 * 3600.0  # seconds after a POST past which a missing row proves nothing was made
WINDOW_MARGIN = 600.0  # search from this long before the earliest POST (clock skew)
PAGE_LIMIT = 100  # the API's maximum rows per page
MAX_PAGES = 200  # 20,000 rows: more than any window of one key's video requests


def client_request_id(request_id: str, attempt: int) -> str:
    """Return the X-Client-Request-Id of one POST: request id, attempt, and a nonce.

    The nonce keeps two machines (or a restored manifest) that send the same attempt
    from ever sharing an id, so a ledger row names exactly one POST.
    """
    value = f"runner.{request_id}.{attempt}.{secrets.token_hex(4)}"
    assert is_client_request_id(value)  # the documented alphabet: anything else is dropped
    return value


@dataclass(frozen=True, slots=True)
class Evidence:
    """What a search of the usage logs covered (recorded with its verdict)."""

    client_request_id: str
    window: tuple[str, str]  # ISO-8601 UTC start and end searched
    rows: int  # rows read
    checked_at: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": "usage logs",
            "client_request_id": self.client_request_id,
            "window": list(self.window),
            "rows_read": self.rows,
            "checked_at": self.checked_at,
        }


@dataclass
class Ledger:
    """One provider's usage log as far as this run has read it, shared by every lookup.

    Lookups are served from the rows read; the log is read again at most every
    `refresh` seconds (many unknown requests cost one pass through its pages, within
    the documented 200 requests per minute).
    """

    client: ApiClient
    clock: Clock
    refresh: float
    _rows: dict[str, LogRow] = field(default_factory=dict)
    _read_at: float | None = None  # monotonic time of the last complete read
    _window: tuple[float, float] = (0.0, 0.0)
    _count: int = 0
    _mutex: asyncio.Lock = field(default_factory=asyncio.Lock)
    unavailable: str | None = None  # why the log cannot be read (then nothing is settled)

    async def lookup(self, client_id: str, since: float) -> tuple[LogRow | None, Evidence]:
        """Return the row of `client_id` (POST sent at wall time `since`), and what was read."""
        async with self._mutex:
            row = self._rows.get(client_id)
            stale = self._read_at is None or self.clock.monotonic() - self._read_at >= self.refresh
            covers = self._read_at is not None and self._window[0] <= since - WINDOW_MARGIN
            if row is None and (stale or not covers) and self.unavailable is None:
                await self._read(since - WINDOW_MARGIN)
                row = self._rows.get(client_id)
        start, end = self._window
        evidence = Evidence(client_id, (_iso(start), _iso(end)), self._count, _iso(end))
        return row, evidence

    async def _read(self, start: float) -> None:
        # No `model` filter: the log names models as `source/alias`, which need not be the
        # name a spec uses, and a filter that silently matched nothing would let a paid
        # request be submitted again. The time window bounds the read instead.
        start = min(start, self._window[0]) if self._read_at is not None else start
        end = self.clock.wall()
        rows: dict[str, LogRow] = {}
        offset = 0
        for _ in range(MAX_PAGES):
            try:
                page = await self.client.logs(
                    start=start, end=end, offset=offset, limit=PAGE_LIMIT
                )
            except Retryable as exc:
                await self.clock.sleep(exc.retry_after if exc.retry_after is not None else 1.0)
                continue
            except Rejected as exc:
                # No usage logs here after all (a proxy, an older deployment): nothing can
                # be settled from them, so nothing is resubmitted on their word.
                self.unavailable = exc.message
                return
            for item in page.rows:
                if item.client_request_id:
                    rows[item.client_request_id] = item
            offset += len(page.rows)
            if not page.has_more or not page.rows:
                break
        self._rows.update(rows)
        self._count = offset
        self._window = (start, end)
        self._read_at = self.clock.monotonic()


def _iso(epoch: float) -> str:
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
