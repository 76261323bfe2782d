"""The JSON sidecar beside each video: everything needed to know and redo it.

`<video stem>.json` sits next to `<video stem>.mp4` (format in docs/ARCHITECTURE.md). It
is derived from the manifest (`sidecar_for`), so a lost sidecar can be rewritten, and it
is written atomically so a crash never leaves half a file. It never holds image bytes,
keys or signed URLs: images appear as `sha256:` references.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runner import __version__
from runner.durable import write_atomic
from runner.errors import StorageError
from runner.layout import sidecar_of
from runner.manifest import RequestState

sidecar_path = sidecar_of  # the rule lives with the rest of the tree's (runner.layout)


def sidecar_for(state: RequestState, *, reproduction_of: str | None = None) -> dict[str, Any]:
    """Build the sidecar of a downloaded request from its manifest state."""
    generation = state.generation_seconds
    return {
        "runner_version": __version__,
        "id": state.id,
        "spec": state.spec,
        "spec_name": state.spec_name,
        "job": state.job,
        "provider": state.provider,
        "model": state.model,
        "endpoint": state.endpoint,
        "payload": dict(state.body),
        "images": dict(state.images),
        "seed": state.seed,
        "seed_derived": state.seed_derived,
        "matrix": dict(state.matrix),
        "generation_id": state.generation_id,
        "output": state.output,
        "timings": {
            "submitted_at": state.submitted_at,
            "completed_at": state.completed_at,
            "downloaded_at": state.downloaded_at,
            "generation_seconds": None if generation is None else round(generation, 3),
            "download_seconds": state.download_seconds,
        },
        "size": state.size,
        "sha256": state.sha256,
        "video": None if state.video is None else dict(state.video),
        "cost": None if state.cost is None else dict(state.cost),
        "reproduction_of": reproduction_of,
    }


def render_sidecar(data: Mapping[str, Any]) -> bytes:
    """Return a sidecar's bytes as written beside the video (and given to the store)."""
    return (json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode()


def write_sidecar(video_path: Path, data: Mapping[str, Any]) -> Path:
    """Write `data` atomically as the sidecar of `video_path`; return its path."""
    path = sidecar_path(video_path)
    write_atomic(path, render_sidecar(data))
    return path


def read_sidecar(video_path: Path) -> dict[str, Any]:
    """Return the sidecar of `video_path` (or of the sidecar path itself)."""
    path = video_path if video_path.suffix == ".json" else sidecar_path(video_path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        msg = f"{path}: no sidecar beside the video — was it produced by `runner run`?"
        raise StorageError(msg) from None
    except (OSError, ValueError) as exc:
        msg = f"{path}: unreadable sidecar ({exc}) — delete it and run again to rewrite it"
        raise StorageError(msg) from None
    if not isinstance(data, dict):
        msg = f"{path}: a sidecar must be a JSON object — delete it and run again"
        raise StorageError(msg)
    return data
