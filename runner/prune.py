"""`runner prune`: remove the files of orphaned requests, only when asked to.

A request is orphaned when its spec no longer produces it (a prompt was edited, a seed
dropped, a job renamed): `runner plan` lists it as `orphaned`, and its video, sidecar,
poster and reproductions stay on disk until `runner prune --yes` removes them. Without
`--yes` nothing is touched: the files are listed, like `terraform plan` before `apply`.

A file is removed only while it still is the orphan's: the video must hash to what the
manifest recorded for it and no live request may have been recorded at the same path
(an edited prompt usually keeps the output path, and the new video replaces the old one
there); a sidecar must name the orphan's id. Each removal is then recorded in the
manifest (`orphan_removed`) under the spec's lock, so a run cannot be going on at the
same time, and the gallery is rebuilt.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from runner.durable import storage_error
from runner.gallery import gallery_for
from runner.layout import lockfile_of
from runner.lockfile import LockWriter, state_from_entry
from runner.manifest import Manifest, RequestState, sha256_file
from runner.planning import orphans as orphan_entries
from runner.planning import records_of
from runner.poster import poster_path
from runner.repro_names import repro_number
from runner.sidecar import sidecar_path
from runner.spec import load_specs


@dataclass(frozen=True, slots=True)
class Orphan:
    """One orphaned request and what pruning it would do."""

    folder: Path  # outputs/<spec name>/
    spec: str  # the spec file as the user named it
    id: str
    output: str | None  # the video path it was recorded at, relative to folder
    status: str  # its manifest status (done, failed, pending, unknown)
    remove: tuple[Path, ...]  # files that are its own and would be removed
    keep: tuple[tuple[Path, str], ...]  # files at its paths that are not its own, and why
    lock: Path | None = None  # the lock file whose line records it, if any


def find_orphans(
    paths: Sequence[Path], output_dir: Path, *, sandbox: bool = False
) -> list[Orphan]:
    """Return the orphaned requests of the specs at `paths`, with the files of each."""
    specs = load_specs(list(paths), provider_override="sandbox" if sandbox else None)
    orphans: list[Orphan] = []
    for spec in specs:
        records = records_of(spec, output_dir)
        lock_dir = lockfile_of(spec.path).parent
        entries = orphan_entries(spec, records)
        ids = {entry.id for entry in entries}
        for entry in entries:
            state = records.states.get(entry.id)
            if state is None:
                state = state_from_entry(
                    records.locked[entry.id], spec=spec.display, spec_name=spec.name,
                    lock_dir=lock_dir,
                )
            orphan = _orphan(records.folder, spec.display, state, records.states, ids)
            lock = lockfile_of(spec.path) if entry.id in records.locked else None
            orphans.append(replace(orphan, lock=lock))
    return orphans


def prune(orphans: Sequence[Orphan]) -> int:
    """Remove the orphans' own files, record each in its manifest and lock; return files removed."""
    removed = 0
    by_folder: dict[Path, list[Orphan]] = {}
    for orphan in orphans:
        by_folder.setdefault(orphan.folder, []).append(orphan)
    for folder, members in by_folder.items():
        with Manifest.open(folder) as manifest:  # the spec's lock: no run meanwhile
            locks: dict[Path, LockWriter] = {}
            for orphan in members:
                known = orphan.id in manifest.state
                if not known and orphan.lock is None:
                    continue  # pruned by someone else since it was listed
                for path in orphan.remove:
                    try:
                        path.unlink(missing_ok=True)
                    except OSError as exc:
                        raise storage_error(exc, path) from exc
                    removed += 1
                # Files first, record second: a crash in between leaves an orphan with
                # fewer files, which the next prune finishes; never a record without it.
                if known:
                    manifest.record_orphan_removed(orphan.id, orphan.output)
                if orphan.lock is not None:
                    writer = locks.setdefault(orphan.lock, LockWriter(orphan.lock))
                    writer.remove(orphan.id)
            for writer in locks.values():
                writer.flush()
        gallery_for(folder)
    return removed


def _orphan(
    folder: Path,
    spec: str,
    state: RequestState,
    states: Mapping[str, RequestState],
    orphan_ids: set[str],
) -> Orphan:
    """Decide which files at an orphan's paths are its own."""
    remove: list[Path] = []
    keep: list[tuple[Path, str]] = []
    if state.output is not None:
        video = folder / state.output
        live = [rid for rid, s in states.items()
                if rid not in orphan_ids and s.output == state.output]
        if video.is_file():
            if live:
                keep.append((video, f"now the video of request {live[0]}"))
            elif state.sha256 is None or sha256_file(video) != state.sha256:
                keep.append((video, "its content is not the video recorded for this request"))
            else:
                remove.append(video)
        sidecar = sidecar_path(video)
        if _names_id(sidecar, state.id):
            remove.append(sidecar)
        elif sidecar.is_file():
            keep.append((sidecar, "it describes another request"))
        remove.extend(_reproductions(video, state.id))
    poster = poster_path(folder, state.id)
    if poster.is_file():
        remove.append(poster)
    return Orphan(folder, spec, state.id, state.output, state.status, tuple(remove), tuple(keep))


def _reproductions(video: Path, rid: str) -> list[Path]:
    """Return the reproduction videos (and sidecars) of request `rid` beside `video`."""
    try:
        names = sorted(os.listdir(video.parent))
    except FileNotFoundError:
        return []
    found: list[Path] = []
    for name in names:
        if repro_number(video.name, name) is None:
            continue
        repro = video.parent / name
        if _names_id(sidecar_path(repro), rid):
            found += [repro, sidecar_path(repro)]
    return found


def _names_id(sidecar: Path, rid: str) -> bool:
    """Return whether the sidecar at `sidecar` exists and records request `rid`."""
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("id") == rid
