"""On a terminal a paying run asks first; --yes, a pipe, or the sandbox never ask.

The CLI runs as a real subprocess whose stdin and stderr are a pseudo-terminal (what a
person at a shell has), against a real sandbox on loopback posing as the paid API.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from runner.sandbox import RunningSandbox

from .conftest import KEY, fast

SPEC = """\
version: 1
name: ask
provider: aimlapi
model: alibaba/wan-2-6-t2v
matrix:
  seed: [1, 2]
params:
  prompt: A lighthouse at dusk
  duration: 5
  resolution: 720p
output: "seed-{{ seed }}.mp4"
"""
QUESTION = b"Submit 2 paid generations (est. $"


def _on_a_terminal(args: list[str], answer: bytes | None, cwd: Path) -> tuple[int, bytes, bytes]:
    """Run `runner ARGS` with a terminal for stdin and stderr; type `answer` when it
    asks. Return the exit code, what the terminal showed and stdout."""
    master, slave = pty.openpty()
    env = {**os.environ, "AIMLAPI_API_KEY": KEY, "COLUMNS": "200"}
    child = subprocess.Popen(
        [sys.executable, "-m", "runner", *args], stdin=slave, stderr=slave,
        stdout=subprocess.PIPE, cwd=cwd, env=env,
    )
    os.close(slave)
    shown = b""
    deadline = time.monotonic() + 60
    answered = False
    while child.poll() is None and time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                shown += os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
        if answer is not None and not answered and shown.rstrip().endswith(b"[y/N]:"):
            os.write(master, answer)
            answered = True
    out, _ = child.communicate(timeout=60)
    os.close(master)
    return child.returncode, shown, out


@pytest.fixture
def spec(write_spec: Callable[..., Path]) -> Path:
    return write_spec(SPEC, "ask.yaml")


def test_no_means_nothing_is_submitted(
    sandbox: RunningSandbox, spec: Path, workdir: Path
) -> None:
    """The question shows the plan's count and cost; "n" exits 1 with nothing sent."""
    code, shown, _ = _on_a_terminal(["run", str(spec), *fast(sandbox)], b"n\n", workdir)
    assert code == 1, shown
    assert QUESTION in shown and b"estimated cost: $" in shown
    assert b"not confirmed" in shown
    assert sandbox.stats()["submissions"] == 0


def test_yes_runs_and_a_second_run_has_nothing_to_ask(
    sandbox: RunningSandbox, spec: Path, workdir: Path
) -> None:
    """"y" runs the batch; the finished batch then runs without a question (nothing to pay)."""
    code, shown, out = _on_a_terminal(["run", str(spec), *fast(sandbox)], b"y\n", workdir)
    assert code == 0, shown
    assert QUESTION in shown and b"spent $" in out
    assert sandbox.stats()["submissions"] == 2
    code, shown, _ = _on_a_terminal(["run", str(spec), *fast(sandbox)], None, workdir)
    assert code == 0 and QUESTION not in shown


@pytest.mark.parametrize("how", ["--yes", "--sandbox", "pipe"])
def test_it_never_asks_with_yes_on_the_sandbox_or_without_a_terminal(
    sandbox: RunningSandbox, spec: Path, workdir: Path, how: str
) -> None:
    """--yes skips the question; --sandbox never asks (it is free); a pipe never asks."""
    args = ["run", str(spec), *fast(sandbox)]
    if how == "pipe":
        done = subprocess.run(
            [sys.executable, "-m", "runner", *args], capture_output=True, cwd=workdir,
            stdin=subprocess.DEVNULL, env={**os.environ, "AIMLAPI_API_KEY": KEY}, timeout=60,
        )
        code, shown = done.returncode, done.stderr
    else:
        code, shown, _ = _on_a_terminal([*args, how], None, workdir)
    assert code == 0, shown
    assert b"[y/N]" not in shown
    assert sandbox.stats()["submissions"] == 2
