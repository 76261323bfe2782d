"""Which spec file owns an output folder: `outputs/<name>/.spec`.

Two spec files that give the same `name:` would share `outputs/<name>/`; run one after
the other, and pruning the second deletes the first one's paid videos as "orphans". So a
folder belongs to one spec: the first command that writes there records the spec's path
(relative to the folder, so moving the whole repository keeps it valid), and every
command that reads or writes a spec's folder checks it. The record is stale, and taken
over, when that spec file is gone (renamed, moved) or no longer names this folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from runner.durable import write_atomic
from runner.errors import UsageError
from runner.layout import OWNER
from runner.yamlpos import YamlProblem, load

MAX_READ = 1 << 20  # a spec is a page of YAML: read no more of the other one than this


def owner_of(folder: Path) -> Path | None:
    """Return the spec file recorded as owning `folder`, if any (resolved)."""
    try:
        text = (folder / OWNER).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return (folder / text).resolve() if text else None


def check_owner(folder: Path, spec: Path, display: str) -> None:
    """Raise `UsageError` when another, live spec file owns `folder`."""
    other = owner_of(folder)
    if other is None or other == spec.resolve():
        return
    if _still_claims(other, folder.name):
        msg = (
            f"{display}: the output folder {folder} belongs to {_shown(other)}, which has the "
            f"same name {folder.name!r} — set a different `name:` in one of them (a folder "
            "holds one spec's paid videos)"
        )
        raise UsageError(msg)


def claim(folder: Path, spec: Path) -> None:
    """Record `spec` as the owner of `folder` (after `check_owner` said it may)."""
    if owner_of(folder) == spec.resolve():
        return
    relative = os.path.relpath(spec.resolve(), folder.resolve())
    write_atomic(folder / OWNER, (Path(relative).as_posix() + "\n").encode("utf-8"))


def _still_claims(spec: Path, name: str) -> bool:
    """Return whether the spec file at `spec` exists and still names the folder `name`."""
    try:
        with spec.open("rb") as fh:
            raw = fh.read(MAX_READ)
    except OSError:
        return False  # renamed or deleted: its claim is stale
    try:  # the bounded loader: the other file is as untrusted as any spec
        data = load(raw.decode("utf-8", "replace")).data
    except YamlProblem:
        return True  # unreadable for now: do not take a folder that may still be its own
    declared = data.get("name") if isinstance(data, dict) else None
    return (declared if isinstance(declared, str) else spec.stem) == name


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
