"""Lay down a finished spec's output folder without running it (issue 7, scenario 5).

Running 10,000 generations just to time the nightly re-run would dominate the benchmark,
so the folder is written the way a finished run leaves it, through the runner's own
code: the spec is loaded with `load_specs` (same ids, outputs and bodies as `runner run`),
each request gets the `submitting`, `submitted`, `completed` and `downloaded` records a
run writes (`Manifest`), a real cheap-mode clip at its output path (its true size,
sha256 and mtime recorded), its sidecar (`write_sidecar`) and its gallery poster (made
once with `ensure_poster`, copied: every clip is the same). Only fsync is skipped while
building: the fixture's durability is not what is measured. The generation ids are made
up; a re-run that sent anything would show up in the sandbox's request count.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

from runner.layout import spec_folder
from runner.manifest import Manifest
from runner.poster import ensure_poster, poster_path
from runner.probe import probe
from runner.sidecar import sidecar_for, write_sidecar
from runner.spec import load_specs


@contextlib.contextmanager
def _no_fsync() -> Iterator[None]:
    with mock.patch.object(os, "fsync", lambda fd: None):
        yield


def build_finished(spec: Path, output_dir: Path, clip: Path) -> int:
    """Write `spec`'s finished output folder under `output_dir`; return its request count."""
    (loaded,) = load_specs([spec])
    data = clip.read_bytes()
    size, digest = len(data), hashlib.sha256(data).hexdigest()
    facts = probe(clip).to_dict()
    folder = spec_folder(output_dir, loaded.name, sandbox=loaded.sandbox)
    refs = {image.ref: f"images/{image.path.name}" for image in loaded.images.values()}
    poster = output_dir / "poster.jpg"
    ensure_poster(clip, poster)
    poster_bytes = poster.read_bytes()
    with _no_fsync(), Manifest.open(folder) as manifest:
        for number, request in enumerate(loaded.requests):
            with manifest.group():
                manifest.record_submitting(request, refs)
                manifest.record_submitted(request.id, f"noop-{number:06d}")
                manifest.record_completed(request.id)
            dest = folder / request.output
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
            manifest.record_downloaded(
                request.id,
                output=request.output,
                size=size,
                sha256=digest,
                mtime_ns=dest.stat().st_mtime_ns,
                video=facts,
                download_seconds=0.01,
            )
            write_sidecar(dest, sidecar_for(manifest.state[request.id]))
            made = poster_path(folder, request.id)
            made.parent.mkdir(exist_ok=True)
            made.write_bytes(poster_bytes)  # after the video: newer, so the gallery keeps it
    return len(loaded.requests)
