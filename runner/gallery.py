"""The HTML gallery of one output folder: `outputs/<name>/index.html`.

One self-contained page per spec: inline CSS, no scripts, no external URLs, relative
links only, so it works from a file:// URL, from a CI artifact and from any static
server. Videos sit in a grid laid out by the matrix axes: the axis with the most values
becomes the columns, the next one the rows, any other varying axis splits the page into
sections, and jobs get a heading each. Every video shows a poster frame taken from the
video itself (`runner.poster`) and loads nothing until played (`preload="none"`).
Requests without a video (failed, pending, missing) keep their cell and say why.

Everything written into the page comes from spec files that anyone on a team may edit,
so every text and attribute is HTML-escaped and every link is a percent-encoded
relative path.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar
from urllib.parse import quote

from runner.durable import storage_error, write_atomic
from runner.manifest import RequestState, read_state
from runner.poster import ensure_poster, poster_path
from runner.repro_names import REPRO_DIR, split_repro

GALLERY_FILE = "index.html"
K = TypeVar("K", bound=Hashable)
T = TypeVar("T")

# original file name -> [(N, reproduction file name)] in one folder
_ReproIndex = dict[str, list[tuple[int, str]]]

MISSING = "—"  # the label of an axis a request's matrix combination does not have


@dataclass(frozen=True, slots=True)
class GalleryItem:
    """One request as the gallery shows it."""

    id: str
    job: str
    status: str  # done | failed | pending | new | missing | ...
    matrix: Mapping[str, Any]
    prompt: str
    seed: int | None
    video: str | None = None  # POSIX path relative to the gallery's folder
    poster: str | None = None  # POSIX path relative to the gallery's folder
    reason: str | None = None  # why there is no video (failed, missing, pending)
    model: str = ""
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    reproductions: tuple[str, ...] = ()  # relative paths of reproduced videos


@dataclass(frozen=True, slots=True)
class Grid:
    """One table of the page: items of one job placed by a row axis and a column axis."""

    job: str
    fixed: tuple[tuple[str, str], ...]  # (axis, label) pairs shared by this section
    row_axis: str | None
    col_axis: str | None
    rows: tuple[str, ...]
    cols: tuple[str, ...]
    cells: Mapping[tuple[str, str], tuple[GalleryItem, ...]] = field(default_factory=dict)


def label(value: Any) -> str:
    """Return how a matrix value is shown (strings bare, everything else as JSON)."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def layout(items: Sequence[GalleryItem]) -> list[Grid]:
    """Place items into grids: per job, columns and rows from the axes with most values."""
    grids: list[Grid] = []
    for job, job_items in _group(items, lambda item: item.job).items():
        values = _axis_values(job_items)
        # Most values first; ties keep declaration order (sorted() is stable). An axis
        # whose value follows from an axis already placed (a matrix `include` that adds a
        # subject per image) would only fill a diagonal: it is left to the captions.
        multi = [a for a in values if len(values[a]) > 1]
        candidates = sorted(multi, key=lambda a: -len(values[a]))
        varying: list[str] = []
        for axis in candidates:
            if not any(_determines(job_items, placed, axis) for placed in varying):
                varying.append(axis)
        col_axis = varying[0] if varying else None
        row_axis = varying[1] if len(varying) > 1 else None
        section_axes = varying[2:]
        sections = _group(job_items, partial(_fixed_of, axes=section_axes))
        for fixed, section_items in sections.items():
            cells: dict[tuple[str, str], list[GalleryItem]] = {}
            for item in section_items:
                key = (_value_of(item, row_axis), _value_of(item, col_axis))
                cells.setdefault(key, []).append(item)
            grids.append(
                Grid(
                    job=job,
                    fixed=fixed,
                    row_axis=row_axis,
                    col_axis=col_axis,
                    rows=_present(values, row_axis, (k[0] for k in cells)),
                    cols=_present(values, col_axis, (k[1] for k in cells)),
                    cells={k: tuple(v) for k, v in cells.items()},
                )
            )
    return grids


def write_gallery(folder: Path, items: Sequence[GalleryItem]) -> Path:
    """Write `folder/index.html` for `items` atomically and return its path."""
    target = folder / GALLERY_FILE
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise storage_error(exc, folder) from exc
    write_atomic(target, render(folder.name, items).encode("utf-8"))
    return target


def gallery_for(folder: Path) -> Path:
    """Rebuild `folder/index.html` from the manifest, making any missing posters."""
    if folder.name == REPRO_DIR:
        # A reproduction's videos sit beside their originals: refresh the spec's gallery.
        folder = folder.parent
    return write_gallery(folder, items_for(folder))


def items_for(folder: Path) -> list[GalleryItem]:
    """Return one gallery item per request in `folder`'s manifest, posters made."""
    listings: dict[Path, _ReproIndex] = {}  # one directory scan per folder, for reproductions
    return [_item_from_state(folder, s, listings) for s in _latest_per_output(read_state(folder))]


def _latest_per_output(states: Mapping[str, RequestState]) -> list[RequestState]:
    """Keep, of the requests recorded at one output path, the most recently active one.

    After a prompt edit the new request writes where the old (now orphaned) one did;
    the gallery shows what is at that path now, not both, until `runner prune`.
    """
    latest: dict[str, RequestState] = {}
    for state in states.values():
        if state.output is None:
            continue
        held = latest.get(state.output)
        if held is None or _activity(state) > _activity(held):
            latest[state.output] = state
    return [s for s in states.values() if s.output is None or latest[s.output] is s]


def _activity(state: RequestState) -> str:
    """Return the last recorded timestamp of a request (ISO-8601 sorts as text)."""
    return max(state.downloaded_at or "", state.completed_at or "", state.submitted_at or "")


def _item_from_state(
    folder: Path, state: RequestState, listings: dict[Path, _ReproIndex]
) -> GalleryItem:
    """Return the gallery item of one request: its video and poster if the file is there."""
    facts = state.video or {}
    prompt = state.body.get("prompt", "")
    item = GalleryItem(
        id=state.id,
        job=state.job or "default",
        status=state.status,
        matrix=state.matrix,
        prompt=prompt if isinstance(prompt, str) else label(prompt),
        seed=state.seed,
        reason=state.reason,
        model=state.model or "",
        width=_int_or_none(facts.get("width")),
        height=_int_or_none(facts.get("height")),
        duration=_float_or_none(facts.get("duration")),
    )
    if state.status != "done" or state.output is None:
        return item
    video = folder / state.output
    if not video.is_file():
        return replace(
            item,
            status="missing",
            reason=f"{state.output} is gone — `runner run` fetches it again",
        )
    poster = poster_path(folder, state.id)
    return replace(
        item,
        video=state.output,
        poster=poster.relative_to(folder).as_posix() if ensure_poster(video, poster) else None,
        reproductions=_reproductions(folder, state.output, listings),
    )


def _reproductions(
    folder: Path, output: str, listings: dict[Path, _ReproIndex]
) -> tuple[str, ...]:
    """Return the `<stem>.repro-N<suffix>` videos beside `output`, in N order."""
    video = folder / output
    if video.parent not in listings:
        listings[video.parent] = _repros_in(video.parent)
    names = sorted(listings[video.parent].get(video.name, ()))
    return tuple((PurePosixPath(output).parent / name).as_posix() for _, name in names)


def _repros_in(directory: Path) -> _ReproIndex:
    """Index the reproductions in `directory` by their original's file name (one scan)."""
    found: _ReproIndex = {}
    try:
        names = os.listdir(directory)
    except OSError:
        return found
    for name in names:
        parts = split_repro(name)
        if parts is not None:
            found.setdefault(parts[0], []).append((parts[1], name))
    return found


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) else None


def _float_or_none(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def render(title: str, items: Sequence[GalleryItem]) -> str:
    """Return the gallery page for `items` as one HTML string."""
    grids = layout(items)
    jobs = list(dict.fromkeys(grid.job for grid in grids))
    body: list[str] = [f"<h1>{_e(title)}</h1>", _summary(items)]
    current_job: str | None = None
    for grid in grids:
        if grid.job != current_job and (len(jobs) > 1 or grid.job != "default"):
            body.append(f"<h2>job: {_e(grid.job)}</h2>")
        current_job = grid.job
        body.append(_grid_html(grid))
    if not items:
        body.append('<p class="empty">No requests yet — run <code>runner run</code>.</p>')
    return _PAGE.format(title=_e(title), css=_CSS, body="\n".join(body))


def _summary(items: Sequence[GalleryItem]) -> str:
    """Return the one-line count of requests by status."""
    counts: dict[str, int] = {}
    for item in items:
        counts[item.status] = counts.get(item.status, 0) + 1
    parts = [f"{len(items)} request{'s' if len(items) != 1 else ''}"]
    parts += [f'<span class="s-{_e(s)}">{n} {_e(s)}</span>' for s, n in sorted(counts.items())]
    return f'<p class="summary">{" · ".join(parts)}</p>'


def _grid_html(grid: Grid) -> str:
    """Return one section: its heading (if any) and its table of cells."""
    out: list[str] = []
    if grid.fixed:
        heading = ", ".join(f"{_e(axis)} = {_e(value)}" for axis, value in grid.fixed)
        out.append(f"<h3>{heading}</h3>")
    out.append('<div class="scroll"><table>')
    if grid.col_axis is not None:
        corner = _e(grid.col_axis) if grid.row_axis is None else (
            f"{_e(grid.row_axis)} ↓ · {_e(grid.col_axis)} →"
        )
        heads = "".join(f'<th scope="col">{_e(c)}</th>' for c in grid.cols)
        out.append(f'<thead><tr><th class="corner">{corner}</th>{heads}</tr></thead>')
    out.append("<tbody>")
    for row in grid.rows:
        row_head = _e(row) if grid.row_axis is not None else ""
        cells = "".join(
            f"<td>{''.join(_item_html(i) for i in grid.cells.get((row, col), ()))}</td>"
            for col in grid.cols
        )
        out.append(f'<tr><th scope="row">{row_head}</th>{cells}</tr>')
    out.append("</tbody></table></div>")
    return "\n".join(out)


def _item_html(item: GalleryItem) -> str:
    """Return one request's figure: video with poster, or the reason it has none."""
    if item.video is not None:
        size = ""
        if item.width and item.height:
            size = f' width="{item.width}" height="{item.height}"'
        poster = f' poster="{_href(item.poster)}"' if item.poster else ""
        media = (
            f'<video controls preload="none" playsinline{poster}{size} '
            f'src="{_href(item.video)}"></video>'
        )
    else:
        reason = f'<p class="reason">{_e(item.reason)}</p>' if item.reason else ""
        media = f'<div class="placeholder"><strong>{_e(item.status)}</strong>{reason}</div>'
    facts = [f"seed {item.seed}" if item.seed is not None else "seed ?"]
    if item.duration is not None:
        facts.append(f"{item.duration:g} s")
    if item.width and item.height:
        facts.append(f"{item.width}×{item.height}")
    link = ""
    if item.video is not None:
        link = f' · <a href="{_href(item.video)}">{_e(item.video)}</a>'
    repros = ""
    if item.reproductions:
        links = ", ".join(
            f'<a href="{_href(path)}">{_e(Path(path).name)}</a>' for path in item.reproductions
        )
        repros = f'<p class="repros">reproduced: {links}</p>'
    return (
        f'<figure class="item st-{_e(item.status)}" id="r-{_e(item.id)}">{media}'
        f'<figcaption title="{_e(item.prompt)}">'
        f'<p class="facts">{_e(" · ".join(facts))}{link}</p>'
        f'<p class="prompt">{_e(item.prompt)}</p>{repros}'
        f'<p class="rid">{_e(item.id)}</p></figcaption></figure>'
    )


def _e(text: str | None) -> str:
    """Escape text for HTML content and quoted attributes."""
    return html.escape(text or "", quote=True)


def _href(path: str | None) -> str:
    """Return a relative POSIX path as an escaped, percent-encoded link."""
    return _e(quote(path or "", safe="/"))


def _group(items: Iterable[T], key: Callable[[T], K]) -> dict[K, list[T]]:
    """Group items by key(item), keeping first-seen order of keys and items."""
    groups: dict[K, list[T]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return groups


def _value_of(item: GalleryItem, axis: str | None) -> str:
    """Return the label of `item`'s value on `axis` ("" when there is no axis)."""
    if axis is None:
        return ""
    return label(item.matrix[axis]) if axis in item.matrix else MISSING


def _determines(items: Sequence[GalleryItem], axis: str, other: str) -> bool:
    """Return whether each value of `axis` comes with a single value of `other`."""
    seen: dict[str, str] = {}
    for item in items:
        value, follows = _value_of(item, axis), _value_of(item, other)
        if seen.setdefault(value, follows) != follows:
            return False
    return True


def _fixed_of(item: GalleryItem, axes: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """Return `item`'s (axis, label) pairs on the section axes."""
    return tuple((axis, _value_of(item, axis)) for axis in axes)


def _axis_values(items: Sequence[GalleryItem]) -> dict[str, list[str]]:
    """Return every axis (declaration order) with its distinct labels (first-seen order)."""
    axes: dict[str, None] = {}
    for item in items:
        axes.update(dict.fromkeys(item.matrix))
    values: dict[str, list[str]] = {}
    for axis in axes:
        labels = list(dict.fromkeys(_value_of(item, axis) for item in items))
        numbers = [item.matrix[axis] for item in items if axis in item.matrix]
        if all(isinstance(n, int | float) and not isinstance(n, bool) for n in numbers):
            # Seeds and durations read best in numeric order, whatever order they ran in.
            labels.sort(key=lambda text: (text == MISSING, float(text) if text != MISSING else 0))
        values[axis] = labels
    return values


def _present(
    values: Mapping[str, list[str]], axis: str | None, used: Iterable[str]
) -> tuple[str, ...]:
    """Return the labels of `axis` that this section uses, in the axis's order."""
    if axis is None:
        return ("",)
    seen = set(used)
    return tuple(v for v in values[axis] if v in seen)


_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} — runner gallery</title>
<link rel="icon" href="data:,">
<style>{css}</style>
</head>
<body>
{body}
</body>
</html>
"""

_CSS = """
:root { color-scheme: light dark; --fg: #1d1d1f; --muted: #6e6e73; --line: #d2d2d7;
  --cell: #f5f5f7; --bad: #b3261e; --warn: #8a6d00; }
@media (prefers-color-scheme: dark) { :root { --fg: #f5f5f7; --muted: #a1a1a6;
  --line: #3a3a3c; --cell: #1c1c1e; --bad: #ff6b60; --warn: #ffd60a; } }
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
  margin: 1.5rem; }
h1 { margin: 0 0 .25rem; font-size: 1.5rem; }
h2 { margin: 2rem 0 .5rem; font-size: 1.2rem; }
h3 { margin: 1.5rem 0 .5rem; font-size: 1rem; color: var(--muted); }
.summary { color: var(--muted); margin: 0 0 1rem; }
.summary .s-failed, .summary .s-missing { color: var(--bad); font-weight: 600; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; }
th { font-weight: 600; padding: .4rem .6rem; color: var(--muted); text-align: left;
  vertical-align: middle; white-space: nowrap; }
th.corner { font-weight: 400; font-size: .85em; }
td { vertical-align: top; padding: .4rem; width: 18rem; min-width: 14rem; }
figure { margin: 0 0 .5rem; background: var(--cell); border: 1px solid var(--line);
  border-radius: 8px; overflow: hidden; }
video { display: block; width: 100%; height: auto; max-height: 20rem; object-fit: contain;
  background: #000; }
.placeholder { display: flex; flex-direction: column; justify-content: center;
  min-height: 9rem; padding: .75rem; box-sizing: border-box; }
.st-failed .placeholder strong, .st-missing .placeholder strong { color: var(--bad); }
.st-pending .placeholder strong, .st-new .placeholder strong { color: var(--warn); }
.reason { margin: .25rem 0 0; overflow-wrap: anywhere; }
figcaption { padding: .4rem .6rem; }
figcaption p { margin: 0; }
.facts { color: var(--muted); font-size: .85em; overflow-wrap: anywhere; }
.prompt { display: -webkit-box; -webkit-line-clamp: 3; -webkit-box-orient: vertical;
  overflow: hidden; }
figcaption:hover .prompt { -webkit-line-clamp: unset; }
.repros { font-size: .85em; }
.rid { color: var(--muted); font: .75em ui-monospace, monospace; }
a { color: inherit; }
"""
