"""Run `runner sandbox serve` in a subprocess and talk to its `/_sandbox/` routes."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

from benchmarks.serving_child import ServingChild


@dataclass(frozen=True, slots=True)
class ServerKnobs:
    """The `runner sandbox serve` flags a scenario sets."""

    latency: float
    jitter: float
    concurrency: int
    seed: int = 7


class SandboxProcess(ServingChild):
    """A `runner sandbox serve --render cheap` child process on a free loopback port."""

    def __init__(self, knobs: ServerKnobs) -> None:
        command = [
            sys.executable, "-m", "runner", "sandbox", "serve", "--port", "0",
            "--render", "cheap", "--latency", str(knobs.latency), "--jitter", str(knobs.jitter),
            "--concurrency", str(knobs.concurrency), "--seed", str(knobs.seed),
        ]
        super().__init__(command, "the sandbox", "/_sandbox/stats")

    def configure(self, **knobs: Any) -> None:
        """Change knobs at runtime (`POST /_sandbox/config`)."""
        self._http.post("/_sandbox/config", json=knobs).raise_for_status()

    def cpu_seconds(self) -> float:
        """Return the server process's user + system CPU so far (from /proc)."""
        with open(f"/proc/{self.pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
