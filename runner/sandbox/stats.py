"""The counters behind `GET /_sandbox/stats`, so tests can prove what was sent."""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Any


class Stats:
    """Counters of what the sandbox accepted, served, refused and injected."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Zero every counter."""
        self.requests = 0  # every API call (create, poll, download), refused ones too
        self.submissions = 0
        self.duplicate_submissions = 0
        self.polls = 0
        self.log_queries = 0  # GET /v2/logs, refused ones too
        self.downloads = 0
        self.renders = 0
        self.render_cache_hits = 0
        self.price_queries = 0  # GET /v1/models, 304s included
        self.price_not_modified = 0  # of those, answered 304 (the client's ETag was current)
        self.billed_usd = 0.0  # what accepted generations cost (failed ones refunded)
        self.peak_in_flight = 0  # the most generations queued or generating at once
        self.submissions_by_body: Counter[str] = Counter()
        self.rejected: Counter[int] = Counter()
        self.faults_injected: Counter[str] = Counter()
        # Seconds from a generation's end to the first poll answering `completed`: how
        # late a client noticed. Only the server knows when a generation really ended.
        self.notice_delays: list[float] = []
        # Status polls per generation, in the order they were accepted (the first
        # `concurrency` of them are a batch's first wave, polled before anything ended).
        self.accepted: list[str] = []
        self.polled: Counter[str] = Counter()
        # Seconds each accepted generation occupied a slot, in the same order: what a
        # client that refilled every slot the instant it freed would have waited for.
        self.work_seconds: list[float] = []

    def submission(
        self, body_sha256: str, generation_id: str | None = None, work_seconds: float = 0.0
    ) -> None:
        """Count one accepted POST (a paid generation) by its canonical body."""
        if generation_id is not None:
            self.accepted.append(generation_id)
            self.work_seconds.append(work_seconds)
        self.submissions += 1
        if self.submissions_by_body[body_sha256]:
            self.duplicate_submissions += 1
        self.submissions_by_body[body_sha256] += 1

    def snapshot(self, generations: dict[str, int]) -> dict[str, Any]:
        """Return the counters as JSON-ready data, with generations counted by status."""
        return {
            "requests": self.requests,
            "submissions": self.submissions,
            "duplicate_submissions": self.duplicate_submissions,
            "polls": self.polls,
            "log_queries": self.log_queries,
            "downloads": self.downloads,
            "renders": self.renders,
            "render_cache_hits": self.render_cache_hits,
            "price_queries": self.price_queries,
            "price_not_modified": self.price_not_modified,
            "billed_usd": round(self.billed_usd, 6),
            "peak_in_flight": self.peak_in_flight,
            "submissions_by_body": dict(sorted(self.submissions_by_body.items())),
            "rejected": {str(code): n for code, n in sorted(self.rejected.items())},
            "faults_injected": dict(sorted(self.faults_injected.items())),
            "generations": generations,
            "notice_delay": _summary(self.notice_delays),
            "polls_by_generation": [self.polled[g] for g in self.accepted],
            "work_seconds": [round(w, 4) for w in self.work_seconds],
        }


def _summary(values: list[float]) -> dict[str, float | int | None]:
    """Count, mean, median, p90 and max of `values` (None when there are none)."""
    if not values:
        return {"count": 0, "mean": None, "median": None, "p90": None, "max": None}
    ordered = sorted(values)
    return {
        "count": len(ordered),
        "mean": round(statistics.fmean(ordered), 4),
        "median": round(statistics.median(ordered), 4),
        "p90": round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 4),
        "max": round(ordered[-1], 4),
    }
