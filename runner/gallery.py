"""The HTML gallery of one output folder: `outputs/<name>/index.html`.

One self-contained page per spec, so it works from a file:// URL, from a CI artifact
and from any static server: inline CSS and a small inline script, no external URL,
every link a relative path. Without the script the page is the default grid (see
`runner.gallery_layout`) with a poster per video that links to the MP4; with it, rows
and columns can be switched, items filtered by any axis value, status or badge, and
two to four videos compared side by side with synchronised playback. The data the
script needs is embedded as JSON and read with `JSON.parse`.

A thousand videos open fast: posters are `<img loading="lazy">` (a `<video poster>`
loads its poster eagerly), and a `<video preload="none">` is created only when a poster
is clicked or a comparison opens.

Everything written into the page comes from spec files that anyone on a team may edit:
the page is a jinja2 template with autoescape, links are percent-encoded relative paths,
the embedded JSON has `<`, `>` and `&` escaped, the script builds elements with
`textContent` (never HTML from data), and a Content-Security-Policy lets only the page's
own script and style run, and no request leave the folder's origin.

Items and their badges come from `runner.gallery_data` and `runner.gallery_history`.
"""

from __future__ import annotations

import base64
import difflib
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2

from runner.durable import storage_error, write_atomic
from runner.errors import UsageError
from runner.gallery_data import GalleryItem, items_for
from runner.gallery_history import AUTO, advance, badged, read_history, write_history
from runner.gallery_layout import (
    MISSING,
    Grid,
    JobAxes,
    axis_values,
    group,
    job_axes,
    label,
    layout,
    value_of,
)
from runner.layout import spec_folder
from runner.ownership import check_owner
from runner.repro_names import REPRO_DIR

__all__ = [
    "GALLERY_FILE", "GalleryBuild", "GalleryItem", "Grid", "MISSING", "build_galleries",
    "build_gallery", "gallery_for", "label", "layout", "render", "write_gallery",
]

GALLERY_FILE = "index.html"
ASSETS = Path(__file__).parent / "assets"
STATUSES = ("done", "failed", "unknown", "pending", "missing")  # in the order shown
BADGES = ("new", "changed")


@dataclass(frozen=True, slots=True)
class GalleryBuild:
    """What one build of a gallery wrote."""

    path: Path
    counts: Mapping[str, int]  # status -> requests
    badges: Mapping[str, int]  # "new" / "changed" -> requests
    rows: str | None  # the layout asked for (None: the default)
    cols: str | None


def gallery_for(folder: Path, *, rows: str | None = None, cols: str | None = None) -> Path:
    """Rebuild `folder/index.html` from the manifest, making any missing posters."""
    return build_gallery(folder, rows=rows, cols=cols).path


def build_gallery(
    folder: Path, *, rows: str | None = None, cols: str | None = None
) -> GalleryBuild:
    """Rebuild one folder's gallery; `rows`/`cols` (an axis, or "auto") are remembered."""
    if folder.name == REPRO_DIR:
        # A reproduction's videos sit beside their originals: refresh the spec's gallery.
        folder = folder.parent
    items = items_for(folder)
    check_axes([items], rows, cols)
    return _publish(folder, items, rows, cols)


def build_galleries(
    paths: Sequence[Path], output_root: Path, *, sandbox: bool = False,
    rows: str | None = None, cols: str | None = None,
) -> list[GalleryBuild]:
    """Rebuild the galleries of the specs at `paths` (`runner gallery`)."""
    from runner.spec import load_specs

    specs = load_specs(list(paths), provider_override="sandbox" if sandbox else None)
    folders = [spec_folder(output_root, spec.name, sandbox=spec.sandbox) for spec in specs]
    for spec, folder in zip(specs, folders, strict=True):
        check_owner(folder, spec.path, spec.display)
    collected = [items_for(folder) for folder in folders]
    check_axes(collected, rows, cols)
    builds = []
    for folder, items in zip(folders, collected, strict=True):
        axes = _axis_names(items)
        # A spec without the axis keeps its own remembered layout.
        builds.append(_publish(
            folder, items,
            rows if rows in axes or rows == AUTO else None,
            cols if cols in axes or cols == AUTO else None,
        ))
    return builds


def check_axes(
    collected: Sequence[Sequence[GalleryItem]], rows: str | None, cols: str | None
) -> None:
    """Refuse a --rows/--cols axis that none of the galleries has, with a hint."""
    known = sorted(set().union(*(_axis_names(items) for items in collected)))
    if rows is not None and rows == cols and rows != AUTO:
        msg = f"--rows and --cols are both {rows!r} — pick two different axes"
        raise UsageError(msg)
    if not known:
        return  # nothing run yet: there is nothing to check the names against
    for flag, name in (("--rows", rows), ("--cols", cols)):
        if name is None or name == AUTO or name in known:
            continue
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        msg = (
            f"{flag} {name!r}: no such axis{hint} — the axes are: {', '.join(known)}, "
            f"or {AUTO!r} for the default layout"
        )
        raise UsageError(msg)


def _axis_names(items: Sequence[GalleryItem]) -> set[str]:
    return {axis for item in items for axis in item.matrix}


def _publish(
    folder: Path, items: list[GalleryItem], rows: str | None, cols: str | None
) -> GalleryBuild:
    """Badge `items`, write the page and the history; `rows`/`cols` None keep the old ones."""
    history = read_history(folder)
    if rows is not None:
        history = replace(history, rows=None if rows == AUTO else rows)
    if cols is not None:
        history = replace(history, cols=None if cols == AUTO else cols)
    history = advance(history, items)
    shown = badged(items, history.baseline)
    path = write_gallery(
        folder, shown, rows=history.rows, cols=history.cols, compared_at=history.baseline_at
    )
    write_history(folder, history)
    return GalleryBuild(
        path=path,
        counts=_tally(item.status for item in shown),
        badges=_tally(item.badge for item in shown if item.badge),
        rows=history.rows,
        cols=history.cols,
    )


def write_gallery(
    folder: Path, items: Sequence[GalleryItem], *, rows: str | None = None,
    cols: str | None = None, compared_at: str | None = None,
) -> Path:
    """Write `folder/index.html` for `items` atomically and return its path."""
    target = folder / GALLERY_FILE
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise storage_error(exc, folder) from exc
    page = render(folder.name, items, rows=rows, cols=cols, compared_at=compared_at)
    write_atomic(target, page.encode("utf-8"))
    return target


def render(
    title: str, items: Sequence[GalleryItem], *, rows: str | None = None,
    cols: str | None = None, compared_at: str | None = None,
) -> str:
    """Return the gallery page for `items` as one HTML string."""
    index = {id(item): n for n, item in enumerate(items)}
    by_job = group(items, lambda item: item.job)
    jobs = [job_axes(job, job_items) for job, job_items in by_job.items()]
    axes = list(dict.fromkeys(a for job in jobs for a in job.axes))
    # A remembered axis the spec no longer varies is the default again, on the page too.
    rows, cols = (rows if rows in axes else None), (cols if cols in axes else None)
    grids = group(layout(items, rows, cols), lambda grid: grid.job)
    show_jobs = len(jobs) > 1 or any(job.job != "default" for job in jobs)
    script, style = _asset("gallery.js"), _asset("gallery.css")
    context = {
        "title": title,
        "total": len(items),
        "counts": [(s, n) for s, n in _tally(i.status for i in items).items()],
        "badges": [(b, n) for b, n in _tally(i.badge for i in items if i.badge).items()],
        "compared_at": compared_at,
        "filters": _filters(items),
        "jobs": [
            {
                "heading": f"job: {job.job}" if show_jobs else None,
                "sections": [_section(grid, index) for grid in grids[job.job]],
            }
            for job in jobs
        ],
        "axes": axes,
        "rows": rows or AUTO,
        "cols": cols or AUTO,
        "data": _page_data(items, jobs, rows, cols, show_jobs),
        "script": script,  # our own asset files, inserted as they are (`|safe`)
        "style": style,
        "csp": _csp(script, style),
    }
    return _environment().get_template("gallery.html.j2").render(context)


def _section(grid: Grid, index: Mapping[int, int]) -> dict[str, Any]:
    """Return one grid as the template walks it: heading, rows, cells, items."""
    return {
        "heading": " · ".join(f"{axis} = {value}" for axis, value in grid.fixed) or None,
        "classes": section_classes(len(grid.cols), len(grid.rows)),
        "rows": [
            {
                "axis": grid.row_axis,
                "label": row,
                "cells": [
                    {
                        "axis": grid.col_axis,
                        "label": col,
                        "items": [
                            (index[id(item)], item, _facts(item))
                            for item in grid.cells.get((row, col), ())
                        ],
                    }
                    for col in grid.cols
                ],
            }
            for row in grid.rows
        ],
    }


def section_classes(ncols: int, nrows: int) -> str:
    """Return a section's CSS classes: its column count, and `pack` for narrow rows.

    Up to six columns keep their count (`c-N`, fewer when the window is narrow); more
    wrap (`c-many`). Rows of at most three columns sit several to a line (`pack`), so
    two seeds of each of twelve shots do not leave most of the page empty.
    """
    width = f"c-{ncols}" if ncols <= 6 else "c-many"
    return f"sect {width} pack" if ncols <= 3 and nrows > 1 else f"sect {width}"


def _facts(item: GalleryItem) -> str:
    """Return the one-line facts under a video: seed, length, size, model."""
    facts = [f"seed {item.seed}" if item.seed is not None else "seed ?"]
    if item.duration is not None:
        facts.append(f"{item.duration:g} s")
    if item.width and item.height:
        facts.append(f"{item.width}×{item.height}")
    if item.model:
        facts.append(item.model)
    return " · ".join(facts)


def _filters(items: Sequence[GalleryItem]) -> list[dict[str, Any]]:
    """Return, per axis with several values, its labels and how many items have each."""
    filters = []
    for axis, labels in axis_values(items).items():
        if len(labels) < 2:
            continue
        counts = _tally(value_of(item, axis) for item in items)
        filters.append({"axis": axis, "values": [(v, counts[v]) for v in labels]})
    return filters


def _page_data(
    items: Sequence[GalleryItem], jobs: Sequence[JobAxes], rows: str | None,
    cols: str | None, show_jobs: bool,
) -> dict[str, Any]:
    """Return what the page's script needs: the axes per job and each item's values."""
    job_index = {job.job: n for n, job in enumerate(jobs)}
    return {
        "layout": {"rows": rows, "cols": cols},
        "missing": MISSING,
        "jobs": [
            {
                "name": job.job,
                "heading": f"job: {job.job}" if show_jobs else None,
                "axes": list(job.axes),
                "values": {axis: list(v) for axis, v in job.values.items()},
                "col_rank": list(job.col_rank),
                "row_rank": list(job.row_rank),
                "determines": {axis: list(d) for axis, d in job.determines.items()},
            }
            for job in jobs
        ],
        "items": [
            {
                "j": job_index[item.job],
                "s": item.status,
                "b": item.badge,
                "v": {axis: label(value) for axis, value in item.matrix.items()},
            }
            for item in items
        ],
    }


def _tally(values: Any) -> dict[str, int]:
    """Count values; statuses and badges in their fixed order, anything else after."""
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    order = {name: n for n, name in enumerate((*STATUSES, *BADGES))}
    return dict(sorted(counts.items(), key=lambda kv: order.get(kv[0], len(order))))


def _csp(script: str, style: str) -> str:
    """Return a policy that runs only this page's script and style, and loads only local files.

    `'self'` covers a page served over HTTP; `file:` a page opened from disk (a file://
    page has no origin of its own to match `'self'`).
    """
    return (
        "default-src 'none'; "
        f"script-src '{_hash(script)}'; style-src '{_hash(style)}'; "
        "img-src 'self' file: data:; media-src 'self' file:; "
        "connect-src 'none'; base-uri 'none'; form-action 'none'"
    )


def _hash(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "sha256-" + base64.b64encode(digest).decode("ascii")


def _href(path: str | None) -> str:
    """Return a relative POSIX path percent-encoded for a link (the template escapes it)."""
    return quote(path or "", safe="/")


@cache
def _asset(name: str) -> str:
    return (ASSETS / name).read_text(encoding="utf-8")


@cache
def _environment() -> jinja2.Environment:
    """Return the page's jinja2 environment: autoescape on, undefined names are errors."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(ASSETS),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["href"] = _href
    # Compact, and in the order built; `tojson` still escapes <, >, & and ' for <script>.
    env.policies["json.dumps_kwargs"] = {
        "ensure_ascii": False, "separators": (",", ":"), "sort_keys": False,
    }
    return env
