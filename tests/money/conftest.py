"""Fixtures for the money tests: a real sandbox on loopback, spec files, the CLI.

The sandbox publishes a price catalog (prices differ by model and resolution), charges
each accepted generation through the documented cost headers and `meta.usage`, and
counts what it billed (`billed_usd`) and how many generations it had in flight at once
(`peak_in_flight`): the figures the tests hold the runner's records against.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

from runner.cli import cli
from runner.sandbox import RunningSandbox, SandboxConfig, start_in_thread

KEY = "sk-money-test-0123456789abcdef"  # the sandbox accepts any key; a real one never

# Two models with resolution-dependent prices, two resolutions, 5 and 10 s: 8 requests.
MIXED = """\
version: 1
name: prices
provider: aimlapi
matrix:
  model: [alibaba/wan-2-6-t2v, alibaba/wan-2-7-t2v]
  resolution: ["720p", "1080p"]
  duration: [5, 10]
params:
  prompt: A lighthouse at dusk, waves below
output: "{{ model | replace('/', '-') }}/{{ resolution }}-{{ duration }}s.mp4"
"""


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    """A real sandbox (thread, loopback HTTP) with short generations and small clips."""
    config = SandboxConfig(latency=0.05, jitter=0.0, scale=8, fps=4, concurrency=64)
    with start_in_thread(config) as running:
        yield running


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder (the CLI runs in it; paths are relative, as a user types them)."""
    (tmp_path / ".git").mkdir()  # runner.toml is looked up to the repository root
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def write_spec(workdir: Path) -> Callable[[str, str], Path]:
    """Write a spec file into the project; return its relative path."""

    def write(text: str, name: str = "prices.yaml") -> Path:
        path = Path(name)
        path.write_text(text, encoding="utf-8")
        return path

    return write


def invoke(*args: Any, env: dict[str, str] | None = None) -> Result:
    """Run the CLI in-process (no terminal, so it never asks) with a key for aimlapi."""
    return CliRunner().invoke(
        cli, [str(a) for a in args], env={"AIMLAPI_API_KEY": KEY, **(env or {})}
    )


def fast(sandbox: RunningSandbox) -> list[str]:
    """Flags that point a run at `sandbox` and poll it quickly."""
    return ["--base-url", sandbox.base_url, "--poll-min", "0.02", "--poll-max", "0.1"]


def catalog(sandbox: RunningSandbox) -> dict[str, Any]:
    """The sandbox's price catalog, fetched as any client would (no key)."""
    response = httpx.get(f"{sandbox.base_url}/v1/models?include=pricing")
    response.raise_for_status()
    return dict(response.json())


def oracle_price(catalog_body: dict[str, Any], model: str, body: dict[str, Any]) -> float | None:
    """What the catalog says one generation costs, read independently of runner.pricing:
    the variant whose `when` matches the body (or the fixed unit), price / per x seconds."""
    (item,) = [m for m in catalog_body["data"] if m["id"] == model]
    pricing = item.get("pricing")
    if pricing is None:
        return None
    if pricing["kind"] == "fixed":
        (unit,) = pricing["units"]
    else:
        (unit,) = [
            v for v in pricing["variants"]
            if all(str(body.get(k)) == str(want) for k, want in v["when"].items())
        ]
    assert unit.get("unit", unit.get("name")) == "second"
    return float(unit["price"]) / float(unit["per"]) * float(body["duration"])
