"""The documented-protocol server (`benchmarks.doc_server`) as a child process."""

from __future__ import annotations

import sys

from benchmarks.serving_child import ServingChild


class DocServerProcess(ServingChild):
    """`python -m benchmarks.doc_server` on a free loopback port, with its counters."""

    kind = "documented protocol"

    def __init__(self, latency: float, spread: float, concurrency: int, seed: int = 7) -> None:
        command = [sys.executable, "-m", "benchmarks.doc_server", "--port", "0",
                   "--latency", str(latency), "--spread", str(spread),
                   "--concurrency", str(concurrency), "--seed", str(seed)]
        super().__init__(command, "the documented-protocol server", "/_bench/stats")
