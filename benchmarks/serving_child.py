"""A benchmark server as a child process: started on a free loopback port, stopped as
Ctrl-C would, with its counters over HTTP. `SandboxProcess` and `DocServerProcess`
differ only in their command and the path of their counters."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Self

import httpx


class ServingChild:
    """A child process that prints `serving on URL` once it listens."""

    def __init__(self, command: Sequence[str], what: str, stats_path: str) -> None:
        self._stats_path = stats_path
        self._proc = subprocess.Popen(
            list(command), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().strip()  # "serving on http://127.0.0.1:PORT"
        if not line.startswith("serving on "):
            self.stop()
            msg = f"{what} did not start: {line!r}"
            raise RuntimeError(msg)
        self.base_url = line.removeprefix("serving on ")
        self.pid = self._proc.pid
        self._http = httpx.Client(base_url=self.base_url, timeout=30.0)

    def stats(self) -> dict[str, Any]:
        """Return the server's counters."""
        data: dict[str, Any] = self._http.get(self._stats_path).json()
        return data

    def reset(self) -> None:
        """Zero the counters."""
        self._http.delete(self._stats_path).raise_for_status()

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

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
