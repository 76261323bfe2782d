"""The wheel pip builds from a clone ships the package's types and its schemas."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from .conftest import offline_pip_env


def test_the_wheel_ships_py_typed_and_the_schemas(
    clone: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    """`pip wheel` of a clone (offline): runner/py.typed, the API module and schemas are in."""
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(tmp_path),
         str(clone)],
        capture_output=True, text=True, timeout=300, env=offline_pip_env(wheelhouse),
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = tmp_path.glob("runner-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"runner/py.typed", "runner/__init__.py", "runner/python_api.py",
            "runner/_schemas/spec.schema.json"} <= names
