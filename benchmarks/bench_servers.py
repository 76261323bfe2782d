"""The documented-protocol server (`benchmarks.doc_server`) as a child process."""

from __future__ import annotations

import signal
import subprocess
import sys
from types import TracebackType
from typing import Any

import httpx


class DocServerProcess:
    """`python -m benchmarks.doc_server` on a free loopback port, with its counters."""

    kind = "documented protocol"

    def __init__(self, latency: float, spread: float, concurrency: int, seed: int = 7) -> None:
        command = [sys.executable, "-m", "benchmarks.doc_server", "--port", "0",
                   "--latency", str(latency), "--spread", str(spread),
                   "--concurrency", str(concurrency), "--seed", str(seed)]
        self._proc = subprocess.Popen(command, stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL, text=True)
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().strip()
        if not line.startswith("serving on "):
            self.stop()
            msg = f"the documented-protocol server did not start: {line!r}"
            raise RuntimeError(msg)
        self.base_url = line.removeprefix("serving on ")
        self._http = httpx.Client(base_url=self.base_url, timeout=30.0)

    def stats(self) -> dict[str, Any]:
        """Return `GET /_bench/stats`."""
        data: dict[str, Any] = self._http.get("/_bench/stats").json()
        return data

    def reset(self) -> None:
        """Zero the counters."""
        self._http.delete("/_bench/stats").raise_for_status()

    def stop(self) -> None:
        """Stop the server (SIGINT) and reap it."""
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

    def __enter__(self) -> DocServerProcess:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
