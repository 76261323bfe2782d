"""Helpers for the spec-layer tests: drawn images, spec files in tmp folders, the CLI."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from PIL import Image

from runner.cli import cli

EXAMPLES = Path(__file__).resolve().parents[2] / "specs"


def draw(path: Path, size: tuple[int, int], color: tuple[int, int, int] = (90, 120, 160)) -> Path:
    """Write a small PNG of `size` (a real image, made here, never downloaded)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A folder (no git repository) with images/frame.png (64x36) beside where specs go."""
    draw(tmp_path / "images" / "frame.png", (64, 36))
    draw(tmp_path / "images" / "square.png", (40, 40), (200, 80, 40))
    return tmp_path


SpecWriter = Callable[..., Path]


@pytest.fixture
def write_spec(workdir: Path) -> SpecWriter:
    """Write a spec (dedented YAML) into the work folder and return its path."""

    def write(text: str, name: str = "spec.yaml") -> Path:
        path = workdir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return write


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """Invoke the `runner` CLI in-process with key variables cleared."""
    monkeypatch.delenv("AIMLAPI_API_KEY", raising=False)
    monkeypatch.delenv("APILAPLAS_API_KEY", raising=False)

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)

    return invoke


BASE = """
version: 1
provider: aimlapi
model: runway/gen4_turbo
"""
