"""Fixtures for the Python API tests: the repository's specs in a scratch folder, a sandbox."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.sandbox import RunningSandbox, SandboxConfig, start_in_thread

ROOT = Path(__file__).resolve().parents[2]


def readme_python_blocks() -> list[str]:
    """Return the ```python blocks of the README's "From Python" section, in order."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## From Python\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.+?)```", section, flags=re.S)


@pytest.fixture
def in_specs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Work in a folder holding a copy of the repository's specs/, as a user's checkout."""
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    """A real sandbox server on loopback that answers at once (no latency)."""
    with start_in_thread(SandboxConfig(latency=0.0, jitter=0.0)) as running:
        yield running
