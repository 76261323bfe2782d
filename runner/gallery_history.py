"""The gallery's memory between builds: `outputs/<name>/.gallery.json`.

Two things outlive one build of `index.html`:

- What the page showed: per output path, the request id and the video's sha256. The next
  build compares with it and badges an item `new` (a request not shown at its path
  before: a first video there, or an edited spec's new request) or `changed` (the same
  request with other video bytes: regenerated with `--force`, or a video where there
  was none).
- The layout chosen with `runner gallery --rows/--cols`, so that the rebuild at the end
  of every later run keeps it (`auto` forgets it).

Badges say what the last run that made something brought. A build with nothing to badge
against the previous one (a second `runner gallery`, a run with nothing to do, a
`runner prune`, a deleted video) keeps comparing with the same earlier view instead of
clearing every badge; the first build of a folder has nothing to compare with and
badges nothing. The file is a cache of the page, never a
source of truth: a missing or unreadable one counts as a first build. It is written
atomically, like `index.html`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from runner.durable import write_atomic
from runner.gallery_data import GalleryItem
from runner.manifest import format_ts

HISTORY_FILE = ".gallery.json"  # hidden: output paths may not start with "."
FORMAT_VERSION = 1
AUTO = "auto"  # a --rows/--cols value: forget the remembered choice, use the default


@dataclass(frozen=True, slots=True)
class Shown:
    """What one cell showed: the request at that output path and its video's hash."""

    id: str
    sha256: str | None


View = Mapping[str, Shown]  # key (output path, else "id:<id>") -> what it showed


@dataclass(frozen=True, slots=True)
class History:
    """The folder's previous builds as far as the next one needs them."""

    shown: View | None = None  # what the latest build showed; None before the first
    shown_at: str | None = None
    baseline: View | None = None  # what that build's badges compared with
    baseline_at: str | None = None
    rows: str | None = None  # the remembered layout (None: the default)
    cols: str | None = None


def history_path(folder: Path) -> Path:
    """Return where the gallery of `folder` keeps its history."""
    return folder / HISTORY_FILE


def read_history(folder: Path) -> History:
    """Return the folder's gallery history (an empty one when there is none to read)."""
    try:
        data = json.loads(history_path(folder).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return History()
    if not isinstance(data, dict) or data.get("v") != FORMAT_VERSION:
        return History()
    return History(
        shown=_view_from(data.get("shown")),
        shown_at=_str_or_none(data.get("shown_at")),
        baseline=_view_from(data.get("baseline")),
        baseline_at=_str_or_none(data.get("baseline_at")),
        rows=_str_or_none(data.get("rows")),
        cols=_str_or_none(data.get("cols")),
    )


def write_history(folder: Path, history: History) -> None:
    """Write `history` beside the folder's index.html, atomically."""
    data = {
        "v": FORMAT_VERSION,
        "shown_at": history.shown_at,
        "baseline_at": history.baseline_at,
        "rows": history.rows,
        "cols": history.cols,
        "shown": _view_to(history.shown),
        "baseline": _view_to(history.baseline),
    }
    text = json.dumps(data, indent=1, ensure_ascii=False, sort_keys=True) + "\n"
    write_atomic(history_path(folder), text.encode("utf-8"))


def view_of(items: Sequence[GalleryItem]) -> dict[str, Shown]:
    """Return what a page of `items` shows, cell by cell."""
    return {_key(item): Shown(item.id, item.sha256) for item in items}


def advance(history: History, items: Sequence[GalleryItem], *, now: float | None = None) -> History:
    """Return the history after a build that shows `items` (layout fields unchanged)."""
    current = view_of(items)
    stamp = format_ts(time.time() if now is None else now)
    if history.shown is None:
        return replace(history, shown=current, shown_at=stamp, baseline=None, baseline_at=None)
    shown = history.shown
    if not any(_badge(item, shown.get(_key(item))) for item in items):
        return replace(history, shown=current, shown_at=stamp)
    return replace(
        history, shown=current, shown_at=stamp,
        baseline=history.shown, baseline_at=history.shown_at,
    )


def badged(items: Sequence[GalleryItem], baseline: View | None) -> list[GalleryItem]:
    """Return `items` with their badge set against `baseline` (none without one)."""
    if baseline is None:
        return [replace(item, badge=None) for item in items]
    return [replace(item, badge=_badge(item, baseline.get(_key(item)))) for item in items]


def _badge(item: GalleryItem, before: Shown | None) -> str | None:
    """Return "new", "changed" or None for one item given what its cell showed before."""
    if before is None or before.id != item.id:
        return "new"
    if before.sha256 != item.sha256 and item.sha256 is not None:
        return "changed"
    return None


def _key(item: GalleryItem) -> str:
    return item.output if item.output is not None else f"id:{item.id}"


def _view_to(view: View | None) -> dict[str, Any] | None:
    if view is None:
        return None
    return {key: {"id": s.id, "sha256": s.sha256} for key, s in view.items()}


def _view_from(data: Any) -> dict[str, Shown] | None:
    if not isinstance(data, dict):
        return None
    view: dict[str, Shown] = {}
    for key, entry in data.items():
        if isinstance(entry, dict) and isinstance(entry.get("id"), str):
            view[str(key)] = Shown(entry["id"], _str_or_none(entry.get("sha256")))
    return view


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None
