"""Run `runner sandbox serve` in a subprocess and talk to its `/_sandbox/` routes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx

STARTUP_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class ServerKnobs:
    """The `runner sandbox serve` flags a scenario sets."""

    latency: float
    jitter: float
    concurrency: int
    seed: int = 7


class SandboxProcess:
    """A `runner sandbox serve --render cheap` child process on a free loopback port."""

    def __init__(self, knobs: ServerKnobs) -> None:
        command = [
            sys.executable, "-m", "runner", "sandbox", "serve", "--port", "0",
            "--render", "cheap", "--latency", str(knobs.latency), "--jitter", str(knobs.jitter),
            "--concurrency", str(knobs.concurrency), "--seed", str(knobs.seed),
        ]
        self._proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().strip()  # "serving on http://127.0.0.1:PORT"
        if not line.startswith("serving on "):
            self.stop()
            msg = f"the sandbox did not start: {line!r}"
            raise RuntimeError(msg)
        self.base_url = line.removeprefix("serving on ")
        self.pid = self._proc.pid
        self._http = httpx.Client(base_url=self.base_url, timeout=30.0)

    def stats(self) -> dict[str, Any]:
        """Return `GET /_sandbox/stats`."""
        data: dict[str, Any] = self._http.get("/_sandbox/stats").json()
        return data

    def reset(self) -> None:
        """Zero the counters (`DELETE /_sandbox/stats`)."""
        self._http.delete("/_sandbox/stats").raise_for_status()

    def configure(self, **knobs: Any) -> None:
        """Change knobs at runtime (`POST /_sandbox/config`)."""
        self._http.post("/_sandbox/config", json=knobs).raise_for_status()

    def cpu_seconds(self) -> float:
        """Return the server process's user + system CPU so far (from /proc)."""
        with open(f"/proc/{self.pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime

    def stop(self) -> None:
        """Stop the server (SIGINT, as Ctrl-C would) and reap it."""
        if hasattr(self, "_http"):
            self._http.close()
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGINT)
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()

    def __enter__(self) -> SandboxProcess:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
