"""The counters behind `GET /_sandbox/stats`, so tests can prove what was sent."""

from __future__ import annotations

from collections import Counter
from typing import Any


class Stats:
    """Counters of what the sandbox accepted, served, refused and injected."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Zero every counter."""
        self.submissions = 0
        self.duplicate_submissions = 0
        self.polls = 0
        self.downloads = 0
        self.renders = 0
        self.render_cache_hits = 0
        self.submissions_by_body: Counter[str] = Counter()
        self.rejected: Counter[int] = Counter()
        self.faults_injected: Counter[str] = Counter()

    def submission(self, body_sha256: str) -> None:
        """Count one accepted POST (a paid generation) by its canonical body."""
        self.submissions += 1
        if self.submissions_by_body[body_sha256]:
            self.duplicate_submissions += 1
        self.submissions_by_body[body_sha256] += 1

    def snapshot(self, generations: dict[str, int]) -> dict[str, Any]:
        """Return the counters as JSON-ready data, with generations counted by status."""
        return {
            "submissions": self.submissions,
            "duplicate_submissions": self.duplicate_submissions,
            "polls": self.polls,
            "downloads": self.downloads,
            "renders": self.renders,
            "render_cache_hits": self.render_cache_hits,
            "submissions_by_body": dict(sorted(self.submissions_by_body.items())),
            "rejected": {str(code): n for code, n in sorted(self.rejected.items())},
            "faults_injected": dict(sorted(self.faults_injected.items())),
            "generations": generations,
        }
