"""Sandbox runs keep their own output tree, so they never replace a paid video."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from runner.cli import cli
from runner.errors import UsageError
from runner.layout import spec_folder
from runner.sandbox import RunningSandbox, SandboxConfig, start_in_thread

from .conftest import make_image


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    """A real sandbox with tiny latency."""
    with start_in_thread(SandboxConfig(latency=0.05, jitter=0.0, scale=8, fps=4)) as running:
        yield running


def test_spec_folders_keep_sandbox_results_apart() -> None:
    """A spec's folder is <root>/<name>/, or <root>/_sandbox/<name>/ for the emulator,
    whatever the root; a paid spec is refused inside a sandbox tree."""
    assert spec_folder(Path("outputs"), "d", sandbox=False) == Path("outputs/d")
    assert spec_folder(Path("outputs"), "d", sandbox=True) == Path("outputs/_sandbox/d")
    assert spec_folder(Path("elsewhere"), "d", sandbox=True) == Path("elsewhere/_sandbox/d")
    with pytest.raises(UsageError, match="sandbox tree"):
        spec_folder(Path("outputs/_sandbox"), "d", sandbox=False)


def test_sandbox_run_writes_beside_not_over_real_outputs(
    sandbox: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A --sandbox run lands in outputs/_sandbox/<name>/ and leaves outputs/<name>/ alone."""
    make_image(tmp_path / "images")
    (tmp_path / "dragon.yaml").write_text(
        "version: 1\nname: dragon\nprovider: aimlapi\nmodel: runway/gen4_turbo\n"
        "params:\n  image_url: images/mountain.png\n  prompt: a dragon\n  seed: 1\n"
        'output: "seed-1.mp4"\n',
        encoding="utf-8",
    )
    real = tmp_path / "outputs" / "dragon"
    real.mkdir(parents=True)
    (real / "seed-1.mp4").write_bytes(b"a paid video")
    monkeypatch.chdir(tmp_path)
    fast = ["--base-url", sandbox.base_url, "--poll-min", "0.02", "--poll-max", "0.1"]

    result = CliRunner().invoke(cli, ["run", "dragon.yaml", "--sandbox", *fast])

    assert result.exit_code == 0, result.output
    assert (tmp_path / "outputs/_sandbox/dragon/seed-1.mp4").stat().st_size > 0
    assert (real / "seed-1.mp4").read_bytes() == b"a paid video"
    assert sorted(os.listdir(real)) == ["seed-1.mp4"]
    plan = CliRunner().invoke(cli, ["plan", "--sandbox", "dragon.yaml"])
    assert plan.exit_code == 0, plan.output
    assert plan.stdout.startswith("done")
    real_plan = CliRunner().invoke(cli, ["plan", "dragon.yaml"])
    assert real_plan.stdout.startswith("new"), real_plan.output
    assert "orphaned" not in real_plan.stdout

    status = CliRunner().invoke(cli, ["status", "--sandbox", "--json", "dragon.yaml"])
    request_id = json.loads(status.stdout)["requests"][0]["id"]
    repro = CliRunner().invoke(
        cli, ["reproduce", request_id[:8], "--sandbox", "--base-url", sandbox.base_url]
    )
    assert repro.exit_code == 0, repro.output  # ids are found under outputs/_sandbox/ too
    assert (tmp_path / "outputs/_sandbox/dragon/seed-1.repro-1.mp4").is_file()
