"""Fixtures for the fault campaigns: one `runner sandbox serve` process per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.harness import SandboxProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    """A real sandbox server (short latencies, small clips) shared by a module's tests;
    each test sets its own faults and zeroes the counters."""
    log = tmp_path_factory.mktemp("sandbox-log") / "serve.log"
    process = SandboxProcess(
        "--latency", "0.3", "--jitter", "0.1", "--fps", "4", "--seed", "7", log=log
    )
    process.start()
    yield process
    process.stop()


@pytest.fixture
def fresh(server: SandboxProcess) -> SandboxProcess:
    """The module's server with no faults, default knobs and zeroed counters."""
    server.set_faults()
    server.configure(retry_after=1, slow_seconds=1.0, url_ttl=3600.0, latency=0.3)
    server.reset_stats()
    return server


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A folder for one campaign's spec, images and outputs."""
    return tmp_path
