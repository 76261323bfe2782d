"""docs/examples/pre-commit-config.yaml works as written: pinned the way it says, the hook
installs from a clone of this repository and keeps a bad spec out of a commit."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import ROOT, git, offline_pip_env

EXAMPLE = ROOT / "docs" / "examples" / "pre-commit-config.yaml"
PLACEHOLDER_URL = "https://github.com/<you>/runner"
BIN = Path(sys.executable).parent  # this environment's pre-commit


def documented_commands() -> list[list[str]]:
    """Return the commands the example's header tells a user to run, in order."""
    text = EXAMPLE.read_text(encoding="utf-8")
    return [shlex.split(line) for line in re.findall(r"^#\s{4,}(pre-commit .+)$", text, re.M)]


def project(tmp_path: Path, clone: Path) -> Path:
    """Make a user's repository: the repository's specs and the example config, as told."""
    folder = tmp_path / "project"
    shutil.copytree(ROOT / "specs", folder / "specs")
    config = EXAMPLE.read_text(encoding="utf-8")
    assert config.count(PLACEHOLDER_URL) == 1
    (folder / ".pre-commit-config.yaml").write_text(config.replace(PLACEHOLDER_URL, str(clone)),
                                                    encoding="utf-8")
    git(folder, "init", "--quiet")
    return folder


def environment(tmp_path: Path, wheelhouse: Path) -> dict[str, str]:
    """Return the hook's environment: offline pip, its own pre-commit home, a git identity."""
    env = offline_pip_env(wheelhouse)
    env.update(PRE_COMMIT_HOME=str(tmp_path / "pre-commit-home"),
               PATH=os.pathsep.join([str(BIN), env.get("PATH", "")]),
               GIT_AUTHOR_NAME="user", GIT_AUTHOR_EMAIL="user@example.invalid",
               GIT_COMMITTER_NAME="user", GIT_COMMITTER_EMAIL="user@example.invalid")
    return env


def run(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run a command in the user's repository, to its end."""
    return subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


def test_the_header_says_how_to_pin_and_install() -> None:
    """The documented steps are `pre-commit autoupdate --freeze`, then `pre-commit install`."""
    assert documented_commands() == [["pre-commit", "autoupdate", "--freeze"],
                                     ["pre-commit", "install"]]
    (repo,) = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))["repos"]
    assert repo["repo"] == PLACEHOLDER_URL and repo["rev"] == "COMMIT-SHA"


def test_freeze_pins_a_release_tag_by_its_sha(clone: Path, tmp_path: Path) -> None:
    """With a tag in the hook repository, the pinned sha is the tag's, named in a comment."""
    tagged = tmp_path / "tagged"
    git(tmp_path, "clone", "--quiet", str(clone), str(tagged))
    git(tagged, "-c", "user.name=r", "-c", "user.email=r@example.invalid", "tag", "-a",
        "v9.9.9", "-m", "release", "HEAD~1")
    folder = project(tmp_path, tagged)
    env = environment(tmp_path, tmp_path / "no-wheels")
    done = run(folder, env, "pre-commit", "autoupdate", "--freeze")
    assert done.returncode == 0, done.stdout + done.stderr
    text = (folder / ".pre-commit-config.yaml").read_text(encoding="utf-8")
    sha = git(tagged, "rev-parse", "v9.9.9")  # an annotated tag's own object
    assert f"    rev: {sha}  # frozen: v9.9.9\n" in text
    assert git(tagged, "rev-parse", f"{sha}^{{commit}}") == git(tagged, "rev-parse", "HEAD~1")


@pytest.mark.slow
def test_the_example_installs_and_keeps_bad_specs_out(
    clone: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    """As written: pin, install, then `pre-commit run` and `git commit` pass a good spec
    and stop a bad one with its file:line:col problem."""
    folder = project(tmp_path, clone)
    env = environment(tmp_path, wheelhouse)
    for command in documented_commands():
        done = run(folder, env, *command)
        assert done.returncode == 0, done.stdout + done.stderr
    (repo,) = yaml.safe_load((folder / ".pre-commit-config.yaml").read_text())["repos"]
    assert repo["rev"] == git(clone, "rev-parse", "HEAD")  # the clone has no tag: its HEAD
    installed = run(folder, env, "pre-commit", "install-hooks")
    assert installed.returncode == 0, installed.stdout + installed.stderr

    good = run(folder, env, "pre-commit", "run", "--files", "specs/dragon.yaml")
    assert good.returncode == 0, good.stdout + good.stderr
    assert re.search(r"runner validate\.+Passed", good.stdout)

    bad = folder / "specs" / "typo.yaml"
    bad.write_text((folder / "specs" / "dragon.yaml").read_text(encoding="utf-8")
                   .replace("name: dragon", "name: typo").replace("duration: 5", "duration: 7"),
                   encoding="utf-8")
    failed = run(folder, env, "pre-commit", "run", "--files", "specs/dragon.yaml",
                 "specs/typo.yaml")
    assert failed.returncode == 1
    assert re.search(r"runner validate\.+Failed", failed.stdout)
    assert re.search(r"specs/typo\.yaml:\d+:\d+: .*duration", failed.stdout), failed.stdout
    assert "Traceback" not in failed.stdout

    # The git hook `pre-commit install` wrote: the bad spec cannot be committed.
    git(folder, "add", "specs")
    refused = run(folder, env, "git", "commit", "--quiet", "-m", "add specs")
    assert refused.returncode == 1 and "specs/typo.yaml:" in refused.stdout + refused.stderr
    assert run(folder, env, "git", "rev-parse", "--verify", "HEAD").returncode != 0
    git(folder, "rm", "--quiet", "--cached", "specs/typo.yaml")
    bad.unlink()
    committed = run(folder, env, "git", "commit", "--quiet", "-m", "add specs")
    assert committed.returncode == 0, committed.stdout + committed.stderr
