"""Secret hygiene: a whole batch run with a recognisable key leaves it nowhere.

The key goes in AIMLAPI_API_KEY and the batch runs as users run it (`runner run` with the
aimlapi provider pointed at `runner sandbox serve` by `--base-url`), with faults that make
the runner write error messages, then `status`, `plan`, `reproduce` and reports. Every
file written (manifest, sidecars, posters, gallery, reports, the server's log), a
cassette recorded with the contract tests' own VCR configuration, the cassettes committed
under tests/, and every line printed are scanned for the key.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
from pathlib import Path

import pytest

from runner.engine import RunOptions, execute
from runner.polling import PollSettings
from runner.progress import SilentReporter
from runner.spec import load_specs
from tests.faults.harness import (
    SandboxProcess,
    child_env,
    run_command,
    run_runner,
    write_spec,
)

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def _files_holding(root: Path, needle: bytes) -> list[Path]:
    return [p for p in sorted(root.rglob("*")) if p.is_file() and needle in p.read_bytes()]


def test_key_appears_in_no_file_and_no_output(tmp_path: Path) -> None:
    """Run, resume, status, plan, reproduce, reports, a recorded cassette: the key is in
    none of the files written nor in anything printed."""
    key = "sk-canary-" + secrets.token_hex(16)
    server = SandboxProcess("--latency", "0.2", "--jitter", "0.05", "--fps", "4",
                            log=tmp_path / "serve.log")
    server.start()
    try:
        server.set_faults(drop_after_accept={"first": 1}, poll_error=0.3,
                          truncated_download={"first": 1}, short_url={"first": 1},
                          failed_generation={"first": 1})
        spec = write_spec(tmp_path, "secret", (1, 2, 3, 4, 5), "a batch with a canary key")
        out = tmp_path / "outputs"
        env = child_env(key)
        reports = ("--report", str(tmp_path / "run.json"), "--report", str(tmp_path / "run.xml"))
        printed: list[str] = []
        first = run_runner(run_command(spec, server.base_url, out, *reports), tmp_path, env=env)
        printed += [first.stdout, first.stderr]
        assert first.returncode == 1  # one unknown, one failed: messages were written
        server.set_faults()
        video = next((out / "secret").glob("seed-*.mp4"))
        for command in (
            run_command(spec, server.base_url, out, "--retry-failed", *reports),
            [sys.executable, "-m", "runner", "status", str(spec), "--output-dir", str(out),
             "--json"],
            [sys.executable, "-m", "runner", "plan", str(spec), "--output-dir", str(out),
             "--json"],
            [sys.executable, "-m", "runner", "reproduce", str(video), "--output-dir", str(out),
             "--base-url", server.base_url],
        ):
            done = run_runner(command, tmp_path, env=env)
            printed += [done.stdout, done.stderr]
            assert done.returncode in (0, 1), done.stderr
        assert (out / "secret" / "index.html").exists()
        assert list((out / "secret").glob("*.repro-1.mp4"))

        cassette = tmp_path / "cassettes" / "recorded.yaml"
        _record_a_run(spec, server.base_url, tmp_path / "recorded-outputs", key, cassette)
        assert cassette.exists() and "generation" in cassette.read_text()
    finally:
        server.stop()

    needle = key.encode()
    assert _files_holding(tmp_path, needle) == []
    assert _files_holding(REPO / "tests", needle) == []
    assert not any(key in text for text in printed)
    assert not any(key[3:] in text for text in printed)  # not even without its prefix


def _record_a_run(spec: Path, base_url: str, out: Path, key: str, cassette: Path) -> None:
    """Run the batch in-process under the contract tests' VCR config, recording."""
    from tests.engine.test_contract import CONTRACT

    (loaded,) = load_specs([spec])
    options = RunOptions(output_dir=out, base_url=base_url, seed=0,
                         poll=PollSettings(floor=0.05, ceiling=0.2))
    with CONTRACT.use_cassette(str(cassette), record_mode="all"):
        asyncio.run(execute([(loaded, list(loaded.requests))], options,
                            reporter=SilentReporter(), environ={"AIMLAPI_API_KEY": key}))

