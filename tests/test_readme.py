"""The README's two commands are the ones CI and new users actually run."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _top_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    head = readme.split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", head, flags=re.S)


def test_readme_top_has_exactly_two_commands() -> None:
    """Above the first section there are exactly two one-line shell commands."""
    commands = _top_commands()
    assert len(commands) == 2
    assert all("\n" not in command for command in commands)
    assert "runner run --sandbox specs/" in commands[0]
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    """.ci/run contains the README's test command character for character."""
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert _top_commands()[1] in ci.splitlines()


def test_main_command_spec_exists() -> None:
    """The spec the main command runs is in the repository."""
    spec = re.search(r"runner run --sandbox (\S+)", _top_commands()[0])
    assert spec is not None
    assert (ROOT / spec.group(1)).is_file()
