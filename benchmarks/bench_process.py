"""Run a Python module as a child process; read its wall time, CPU time and peak memory.

CPU comes from wait4()'s rusage; peak memory from the child's own VmHWM (see
`benchmarks.bench_peak` for why not ru_maxrss).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class ChildRun:
    """How one child process went."""

    exit_code: int
    wall: float  # seconds from spawn to exit
    user: float  # CPU seconds in user mode
    system: float  # CPU seconds in the kernel
    max_rss_mb: float  # peak resident set size

    @property
    def cpu(self) -> float:
        """User + system CPU seconds."""
        return self.user + self.system


def run_child(
    module: str, *args: str, log: Path | None = None, env: Mapping[str, str] | None = None
) -> ChildRun:
    """Run `python -m module args…` (`env`: variables to add), wait for it with wait4()
    and return its usage."""
    with tempfile.NamedTemporaryFile(prefix="peak-", suffix=".txt") as peak:
        command = [sys.executable, "-m", "benchmarks.bench_peak", peak.name, module, *args]
        out = log.open("wb") if log is not None else None
        try:
            started = time.perf_counter()
            proc = subprocess.Popen(
                command,
                stdout=out or subprocess.DEVNULL,
                stderr=out or subprocess.DEVNULL,
                env={**os.environ, **env} if env else None,
            )
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - started
            proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        finally:
            if out is not None:
                out.close()
        text = Path(peak.name).read_text(encoding="ascii").strip()
    return ChildRun(
        exit_code=proc.returncode,
        wall=wall,
        user=usage.ru_utime,
        system=usage.ru_stime,
        max_rss_mb=int(text or 0) / 1024,
    )
