"""`runner sandbox serve`: flags, the first line, and refusals as one clear line."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest
import requests
from click.testing import CliRunner

from runner.cli import cli
from tests.sandbox.conftest import Client, body

Serve = Callable[..., tuple[subprocess.Popen[str], str]]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--host", "0.0.0.0"], ["not a loopback address", "--allow-remote"]),
        (["--host", "example.com"], ["not a loopback address"]),
        (["--fault", "meteor=0.5"], ["unknown fault 'meteor'", "rate_limit"]),
        (["--fault", "slow=2"], ["between 0 and 1"]),
        (["--scale", "0"], ["scale must be at least 1"]),
        (["--concurrency", "0"], ["concurrency"]),
    ],
)
def test_bad_flags_exit_2_with_one_line(args: list[str], words: list[str]) -> None:
    """A bad flag is one `error:` line on stderr, exit code 2, no traceback."""
    result = CliRunner().invoke(cli, ["sandbox", "serve", *args])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    for word in words:
        assert word in lines[0]


def test_port_in_use_is_a_clear_error(serve_process: Serve) -> None:
    """Asking for a port that is taken fails with one line naming it."""
    _, base_url = serve_process()
    port = base_url.rsplit(":", 1)[1]
    result = CliRunner().invoke(cli, ["sandbox", "serve", "--port", port])
    assert result.exit_code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_help_lists_the_fault_kinds() -> None:
    """`runner sandbox serve --help` names every fault kind and the runtime endpoints."""
    result = CliRunner().invoke(cli, ["sandbox", "serve", "--help"])
    assert result.exit_code == 0
    for word in ("rate_limit", "truncated_download", "/_sandbox/config", "--state-dir"):
        assert word in result.output


def test_serve_flags_reach_the_server(serve_process: Serve) -> None:
    """Flags set the knobs: scale, fps, seed, render mode and faults show in /_sandbox/config."""
    _, base_url = serve_process("--scale", "4", "--fps", "6", "--seed", "3", "--render", "cheap",
                                "--url-ttl", "60", "--fault", "rate_limit=first:1",
                                "--latency", "0", "--jitter", "0", "--concurrency", "2")
    knobs = requests.get(base_url + "/_sandbox/config", timeout=10).json()
    assert (knobs["scale"], knobs["fps"], knobs["seed"], knobs["render"]) == (4, 6, 3, "cheap")
    assert (knobs["url_ttl"], knobs["concurrency"]) == (60.0, 2)
    client = Client(base_url)
    assert client.create(body()).status_code == 429
    assert client.create(body()).status_code == 200
