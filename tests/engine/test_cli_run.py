"""`runner run` and `runner status` through the CLI (CliRunner, isolated environment)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from runner.cli import cli
from runner.sandbox import RunningSandbox, SandboxConfig, start_in_thread

from .conftest import make_image


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    """A real sandbox with tiny latency."""
    with start_in_thread(SandboxConfig(latency=0.05, jitter=0.0, scale=8, fps=4)) as running:
        yield running


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    """A two-seed spec with a local image."""
    make_image(tmp_path / "images")
    path = tmp_path / "dragon.yaml"
    path.write_text(
        "version: 1\nname: dragon\nprovider: aimlapi\nmodel: runway/gen4_turbo\n"
        "matrix:\n  seed: [1, 2]\n"
        "params:\n  image_url: images/mountain.png\n  prompt: a dragon rushes in\n"
        '  ratio: "16:9"\n  duration: 5\n'
        'output: "seed-{{ seed }}.mp4"\n',
        encoding="utf-8",
    )
    return path


def _fast(sandbox: RunningSandbox, out: Path) -> list[str]:
    return ["--sandbox", "--base-url", sandbox.base_url, "--output-dir", str(out),
            "--poll-min", "0.02", "--poll-max", "0.1"]


def test_run_then_rerun_then_status(sandbox: RunningSandbox, spec: Path, tmp_path: Path) -> None:
    """A run makes the videos (exit 0); a rerun sends nothing; status shows them done."""
    out = tmp_path / "outputs"
    first = CliRunner().invoke(cli, ["run", str(spec), *_fast(sandbox, out)])
    assert first.exit_code == 0, first.output
    assert "2 done (2 new, 0 already)" in first.stdout
    assert f"outputs: {out / '_sandbox' / 'dragon'}/" in first.stdout
    before = sandbox.stats()
    again = CliRunner().invoke(cli, ["run", str(spec), *_fast(sandbox, out)])
    assert again.exit_code == 0
    assert "2 done (0 new, 2 already)" in again.stdout
    assert sandbox.stats()["polls"] == before["polls"]
    assert sandbox.stats()["submissions"] == before["submissions"] == 2

    status = CliRunner().invoke(
        cli, ["status", str(spec), "--sandbox", "--output-dir", str(out), "--json"]
    )
    assert status.exit_code == 0
    data = json.loads(status.stdout)
    assert [row["status"] for row in data["requests"]] == ["done", "done"]
    assert data["counts"] == {"done": 2}
    text = CliRunner().invoke(cli, ["status", str(spec), "--sandbox", "--output-dir", str(out)])
    lines = text.stdout.splitlines()
    assert lines[0].startswith("done") and lines[0].endswith(": seed-1.mp4")
    billed = sandbox.stats()["billed_usd"]
    assert billed > 0
    assert lines[-1] == (
        f"{spec}: 2 requests: 2 done — ${billed:,.2f} spent on the recorded generations"
    )


def test_status_before_any_run_says_new(spec: Path, tmp_path: Path) -> None:
    """Status on a never-run spec lists every request as new and sends nothing."""
    result = CliRunner().invoke(
        cli, ["status", str(spec), "--output-dir", str(tmp_path / "o"), "--json"]
    )
    assert result.exit_code == 0
    assert json.loads(result.stdout)["counts"] == {"new": 2}


def test_missing_key_is_one_line_exit_2_and_writes_nothing(spec: Path, tmp_path: Path) -> None:
    """Without the key: exit 2, one clear error line naming the variable, no traceback."""
    out = tmp_path / "outputs"
    runner = CliRunner(env={"AIMLAPI_API_KEY": None})
    result = runner.invoke(cli, ["run", str(spec), "--output-dir", str(out)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: no API key for provider 'aimlapi'")
    assert "AIMLAPI_API_KEY" in lines[0]
    assert "Traceback" not in result.output
    assert not out.exists()


def test_poll_bounds_are_checked(spec: Path, tmp_path: Path) -> None:
    """--poll-max below --poll-min is a usage error (exit 2)."""
    result = CliRunner().invoke(
        cli, ["run", str(spec), "--sandbox", "--poll-min", "10", "--poll-max", "2",
              "--output-dir", str(tmp_path / "o")]
    )
    assert result.exit_code == 2
    assert "--poll-max" in result.stderr


def test_only_selects_and_reports_are_written(
    sandbox: RunningSandbox, spec: Path, tmp_path: Path
) -> None:
    """--only seed=2 runs one request; --report writes JSON and JUnit XML."""
    out = tmp_path / "outputs"
    report_json, report_xml = tmp_path / "r" / "run.json", tmp_path / "r" / "junit.xml"
    result = CliRunner().invoke(
        cli,
        ["run", str(spec), *_fast(sandbox, out), "--only", "seed=2",
         "--report", str(report_json), "--report", str(report_xml)],
    )
    assert result.exit_code == 0, result.output
    assert sandbox.stats()["submissions"] == 1
    assert (out / "_sandbox" / "dragon" / "seed-2.mp4").is_file()
    assert not (out / "_sandbox" / "dragon" / "seed-1.mp4").exists()
    data = json.loads(report_json.read_text())
    assert data["counts"]["done"] == 1
    assert "<testsuite" in report_xml.read_text()


def test_unknown_only_key_is_a_usage_error(spec: Path, tmp_path: Path) -> None:
    """--only with a key no request has exits 2 with a hint."""
    result = CliRunner().invoke(
        cli, ["run", str(spec), "--sandbox", "--only", "sed=1", "--output-dir", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "did you mean 'seed'" in result.stderr


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("localhost:8080", "not an http(s) URL"),
        ("ftp://127.0.0.1", "not an http(s) URL"),
        ("http://proxy.example.test:8080", "unencrypted"),
    ],
)
def test_bad_base_url_is_a_usage_error(spec: Path, tmp_path: Path, url: str, message: str) -> None:
    """A --base-url that is not http(s), or plain http off this machine, exits 2."""
    result = CliRunner().invoke(
        cli, ["run", str(spec), "--sandbox", "--base-url", url, "--output-dir", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert message in result.stderr
