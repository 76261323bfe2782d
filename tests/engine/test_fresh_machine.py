"""A fresh machine keeps only the spec and its lock: paid videos come back from S3, free.

The store is a real S3 server on loopback (moto's server mode, its own process); the API
is a real sandbox on loopback, whose counters prove that nothing was sent to it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from runner.cli import cli
from runner.sandbox import RunningSandbox, SandboxConfig, start_in_thread
from tests.store.moto_server import MotoServer

from .conftest import make_image

SPEC = """\
version: 1
name: fresh
provider: aimlapi
model: runway/gen4_turbo
matrix:
  seed: [1, 2, 3]
params:
  image_url: images/mountain.png
  prompt: a slow push over the ridge
  duration: 5
output: "seed-{{ seed }}.mp4"
"""


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """A real S3 server on 127.0.0.1 for this module."""
    with MotoServer(log=tmp_path_factory.mktemp("moto") / "server.log") as server:
        yield server


@pytest.fixture
def s3(moto: MotoServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """The standard AWS variables point at moto's user; return a fresh bucket's URL."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    for name, value in moto.env().items():
        monkeypatch.setenv(name, value)
    bucket = moto.create_bucket(f"fresh-{tmp_path.name[-20:].lower().replace('_', '-')}")
    return f"s3://{bucket}/videos"


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with start_in_thread(SandboxConfig(latency=0.05, jitter=0.0, scale=8, fps=4)) as running:
        yield running


def _cli(root: Path, *args: str) -> Result:
    old = Path.cwd()
    os.chdir(root)
    try:
        env = {"AIMLAPI_API_KEY": "test_key_fresh_machine", "RUNNER_STORE": None}
        return CliRunner(env=env).invoke(cli, list(args), catch_exceptions=False)
    finally:
        os.chdir(old)


def _videos(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob("*.mp4")}


def test_fresh_machine_with_an_s3_store(
    tmp_path: Path, s3: str, sandbox: RunningSandbox
) -> None:
    """Run, keep only spec and lock: a rerun makes 0 API calls; pull gives the same bytes."""
    make_image(tmp_path / "images")
    (tmp_path / "fresh.yaml").write_text(SPEC, encoding="utf-8")
    fast = ["--base-url", sandbox.base_url, "--poll-min", "0.02", "--poll-max", "0.1"]
    first = _cli(tmp_path, "run", "fresh.yaml", "--store", s3, *fast)
    assert first.exit_code == 0, first.output
    folder = tmp_path / "outputs" / "fresh"
    paid = _videos(folder)
    assert len(paid) == 3
    lock = (tmp_path / "fresh.yaml.lock").read_bytes()

    shutil.rmtree(tmp_path / "outputs")  # a fresh clone: the spec, its images, its lock
    httpx.delete(f"{sandbox.base_url}/_sandbox/stats")
    again = _cli(tmp_path, "run", "fresh.yaml", "--store", s3, *fast)
    assert again.exit_code == 0, again.output
    assert httpx.get(f"{sandbox.base_url}/_sandbox/stats").json()["requests"] == 0
    assert not any(folder.glob("*.mp4"))  # nothing downloaded: the store keeps them
    assert (tmp_path / "fresh.yaml.lock").read_bytes() == lock  # byte-identical

    pulled = _cli(tmp_path, "pull", "fresh.yaml", "--store", s3)
    assert pulled.exit_code == 0, pulled.output
    assert _videos(folder) == paid
    assert httpx.get(f"{sandbox.base_url}/_sandbox/stats").json()["requests"] == 0
    plan = _cli(tmp_path, "plan", "fresh.yaml", "--store", s3)
    assert [line.split()[0] for line in plan.stdout.splitlines()[:3]] == ["done"] * 3


def test_a_store_that_cannot_be_read_stops_the_run_before_paying(
    tmp_path: Path, s3: str, sandbox: RunningSandbox, moto: MotoServer
) -> None:
    """A store URL naming a bucket that does not exist: one line, exit 1, nothing sent."""
    make_image(tmp_path / "images")
    (tmp_path / "fresh.yaml").write_text(SPEC, encoding="utf-8")
    missing = "s3://no-such-bucket-here/videos"
    result = _cli(tmp_path, "run", "fresh.yaml", "--store", missing, "--base-url",
                  sandbox.base_url)
    assert result.exit_code == 1
    assert "no-such-bucket-here" in result.stderr and "Traceback" not in result.stderr
    assert httpx.get(f"{sandbox.base_url}/_sandbox/stats").json()["requests"] == 0
    assert not (tmp_path / "fresh.yaml.lock").exists()
