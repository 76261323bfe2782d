"""The cheap insurance STYLE asks for: ruff over the tree, mypy --strict over the package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_ruff_finds_nothing() -> None:
    """`ruff check .` passes with the rules configured in pyproject.toml."""
    result = _run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_passes() -> None:
    """`mypy` (strict, configured in pyproject.toml) passes on the runner package."""
    result = _run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr
