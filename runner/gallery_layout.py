"""Where each gallery item goes: sections, rows and columns chosen from the matrix axes.

Pure: items in, grids out, no disk. Per job, every axis with more than one value can
be the rows or the columns; an axis whose value follows from another one already placed
(a matrix `include` that adds a subject per image) would only fill a diagonal and is
left to the captions. By default:

- columns: `model` when it varies (the same shot across models side by side), else
  `seed` (takes of one shot side by side: what a reviewer picks between), else the
  axis with the most values. Columns wrap on the page, so 50 seeds need no sideways
  scrolling;
- rows: the remaining axis with the most values;
- every other axis splits the job into sections.

`runner gallery --rows A --cols B` (and the page's own switch, which runs the same rule
in JavaScript from `JobAxes`) picks them instead, job by job where the job has the axis.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from runner.gallery_data import MODEL_AXIS, GalleryItem

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")

MISSING = "—"  # the label of an axis a request's matrix combination does not have
SEED_AXIS = "seed"


@dataclass(frozen=True, slots=True)
class JobAxes:
    """The axes of one job and the order in which they are preferred for the grid."""

    job: str
    axes: tuple[str, ...]  # every axis with more than one value, declaration order
    values: Mapping[str, tuple[str, ...]]  # axis -> its labels, in the order shown
    col_rank: tuple[str, ...]  # independent axes, most wanted as columns first
    row_rank: tuple[str, ...]  # independent axes, most wanted as rows first
    determines: Mapping[str, tuple[str, ...]]  # axis -> the axes whose value follows from it


@dataclass(frozen=True, slots=True)
class Grid:
    """One section of the page: items of one job placed by a row axis and a column axis."""

    job: str
    fixed: tuple[tuple[str, str], ...]  # (axis, label) pairs shared by this section
    row_axis: str | None
    col_axis: str | None
    rows: tuple[str, ...]
    cols: tuple[str, ...]
    cells: Mapping[tuple[str, str], tuple[GalleryItem, ...]] = field(default_factory=dict)


def label(value: Any) -> str:
    """Return how a matrix value is shown (strings bare, everything else as JSON)."""
    if isinstance(value, str):
        return value
    if type(value) is int:  # the common case (seeds), without json's machinery
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def value_of(item: GalleryItem, axis: str | None) -> str:
    """Return the label of `item`'s value on `axis` ("" when there is no axis)."""
    if axis is None:
        return ""
    return label(item.matrix[axis]) if axis in item.matrix else MISSING


def group(items: Iterable[T], key: Callable[[T], K]) -> dict[K, list[T]]:
    """Group items by key(item), keeping first-seen order of keys and items."""
    groups: dict[K, list[T]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return groups


def job_axes(job: str, items: Sequence[GalleryItem]) -> JobAxes:
    """Return the axes of one job's items, ranked for columns and rows."""
    values = axis_values(items)
    axes = tuple(a for a in values if len(values[a]) > 1)
    by_count = sorted(axes, key=lambda a: -len(values[a]))  # stable: ties keep declaration
    wanted = [a for a in (MODEL_AXIS, SEED_AXIS) if a in axes]
    col_order = wanted + [a for a in by_count if a not in wanted]
    determines = {
        a: tuple(b for b in axes if b != a and _determines(items, a, b)) for a in axes
    }
    independent: list[str] = []
    for axis in col_order:
        if not any(axis in determines[placed] for placed in independent):
            independent.append(axis)
    return JobAxes(
        job=job,
        axes=axes,
        values={a: tuple(values[a]) for a in axes},
        col_rank=tuple(independent),
        row_rank=tuple(a for a in by_count if a in independent),
        determines=determines,
    )


def choose(
    axes: JobAxes, rows: str | None = None, cols: str | None = None
) -> tuple[str | None, str | None, tuple[str, ...]]:
    """Return (row axis, column axis, section axes) of one job; None asks for the default.

    An axis the job does not vary is ignored for that job. The page's JavaScript
    (`choose` in assets/gallery.js) is this function line by line.
    """
    row = rows if rows in axes.axes else None
    col = cols if cols in axes.axes and cols != row else None
    if col is None:
        col = _first(axes.col_rank, axes, taken=(row,))
    if row is None:
        row = _first(axes.row_rank, axes, taken=(col,))
    placed = (row, col)
    sections = tuple(
        a for a in axes.col_rank
        if a not in placed and not any(p is not None and a in axes.determines[p] for p in placed)
    )
    return row, col, sections


def _first(rank: Sequence[str], axes: JobAxes, taken: Sequence[str | None]) -> str | None:
    """Return the first axis of `rank` that is neither taken nor follows from a taken one."""
    for axis in rank:
        if axis in taken or any(t is not None and axis in axes.determines[t] for t in taken):
            continue
        return axis
    return None


def layout(
    items: Sequence[GalleryItem], rows: str | None = None, cols: str | None = None
) -> list[Grid]:
    """Place items into grids: per job, sections of rows × columns (see the module doc)."""
    grids: list[Grid] = []
    for job, job_items in group(items, lambda item: item.job).items():
        axes = job_axes(job, job_items)
        row_axis, col_axis, section_axes = choose(axes, rows, cols)
        sections = group(job_items, partial(_fixed_of, axes=section_axes))
        ordered = sorted(sections.items(), key=lambda kv: _position(axes, kv[0]))
        for fixed, section_items in ordered:
            cells: dict[tuple[str, str], list[GalleryItem]] = {}
            for item in section_items:
                key = (value_of(item, row_axis), value_of(item, col_axis))
                cells.setdefault(key, []).append(item)
            grids.append(
                Grid(
                    job=job,
                    fixed=fixed,
                    row_axis=row_axis,
                    col_axis=col_axis,
                    rows=_present(axes, row_axis, (k[0] for k in cells)),
                    cols=_present(axes, col_axis, (k[1] for k in cells)),
                    cells={k: tuple(v) for k, v in cells.items()},
                )
            )
    return grids


def axis_values(items: Sequence[GalleryItem]) -> dict[str, list[str]]:
    """Return every axis (declaration order) with its distinct labels, in the order shown."""
    axes: dict[str, None] = {}
    for item in items:
        axes.update(dict.fromkeys(item.matrix))
    values: dict[str, list[str]] = {}
    for axis in axes:
        labels = list(dict.fromkeys(value_of(item, axis) for item in items))
        numbers = [item.matrix[axis] for item in items if axis in item.matrix]
        if all(isinstance(n, int | float) and not isinstance(n, bool) for n in numbers):
            # Seeds and durations read best in numeric order, whatever order they ran in.
            labels.sort(key=lambda text: (text == MISSING, float(text) if text != MISSING else 0))
        values[axis] = labels
    return values


def _determines(items: Sequence[GalleryItem], axis: str, other: str) -> bool:
    """Return whether each value of `axis` comes with a single value of `other`."""
    seen: dict[str, str] = {}
    for item in items:
        value, follows = value_of(item, axis), value_of(item, other)
        if seen.setdefault(value, follows) != follows:
            return False
    return True


def _fixed_of(item: GalleryItem, axes: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """Return `item`'s (axis, label) pairs on the section axes."""
    return tuple((axis, value_of(item, axis)) for axis in axes)


def _position(axes: JobAxes, fixed: tuple[tuple[str, str], ...]) -> tuple[int, ...]:
    """Return where a section goes: its labels' positions in their axes' order."""
    return tuple(axes.values[axis].index(value) for axis, value in fixed)


def _present(axes: JobAxes, axis: str | None, used: Iterable[str]) -> tuple[str, ...]:
    """Return the labels of `axis` that this section uses, in the axis's order."""
    if axis is None:
        return ("",)
    seen = set(used)
    return tuple(v for v in axes.values[axis] if v in seen)
