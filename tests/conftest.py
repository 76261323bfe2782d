"""Suite-wide setup: no test, and no process a test starts, reaches beyond loopback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.netguard import no_network

GUARD_SITE = Path(__file__).parent / "netguard"  # holds the children's sitecustomize.py


def pytest_configure(config: pytest.Config) -> None:
    """Guard this process's sockets, and every child Python's through its environment.

    Set before collection and kept for the whole session, so tests, fixtures of every
    scope, servers in threads and subprocesses (the sandbox, the CLI runs of the crash
    and fault campaigns, the benchmarks' smoke test) are all covered; a helper that
    builds a child's environment must extend PYTHONPATH, never replace it.
    """
    no_network.install()
    os.environ[no_network.ENV] = "1"
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(GUARD_SITE) not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([str(GUARD_SITE), *paths])
