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


@pytest.fixture(autouse=True)
def _private_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Give every test its own price-list cache (runner.pricing), never ~/.cache: a list
    cached by one test must not answer for another, nor outlive the suite."""
    monkeypatch.setenv("RUNNER_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    # Plans and runs for the real providers would ask their public price catalogs: the
    # tests read the cached list or the shipped snapshot instead (a test that fetches
    # through a stand-in or the sandbox unsets this or names it with --base-url).
    monkeypatch.setenv("RUNNER_PRICES", "offline")
