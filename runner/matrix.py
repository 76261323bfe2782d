"""Matrix expansion with GitHub Actions `strategy.matrix` semantics, exactly.

    1. The cartesian product of the axes, in declaration order (first axis slowest).
    2. `exclude`: a product combination is removed when it matches any exclude entry
       on all of that entry's keys (a partial match is enough).
    3. `include`, entry by entry: the entry's pairs are merged into every *original*
       (product, after exclude) combination whose original axis values the entry does
       not contradict; values added by earlier includes may be overwritten. An entry
       that merges into none is appended as a new combination; appended combinations
       never receive later entries. With no axes at all, every entry is appended.

Values compare by JSON equality (1, 1.0 and "1" differ; true is not 1).

Besides lists, an axis may be the compact integer range `{range: [first, last]}`
(both ends included, optional `step`), so 100,000 seeds take one line.

The number of combinations is counted arithmetically before anything is expanded,
so a matrix that would expand to billions fails at once with `MatrixTooLarge`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runner.yamlpos import Path

EXCLUDE_SCAN_FACTOR = 10  # with exclude, scan at most this many times the cap


@dataclass(frozen=True, slots=True)
class Axis:
    """One matrix axis: its name, its values, and where each value was written."""

    name: str
    values: Sequence[Any]  # a list, or a `range` for compact integer axes
    path: Path  # the axis in the spec
    is_range: bool

    def origin(self, index: int) -> Path:
        """Return the spec path of the value at `index`."""
        return self.path if self.is_range else (*self.path, index)


@dataclass(slots=True)  # not frozen: one per request, as `runner.request.Request` says
class Combination:
    """One matrix combination: axis -> value, and where each value came from."""

    values: dict[str, Any]
    origins: dict[str, Path]


class MatrixError(Exception):
    """A problem with a matrix, at a spec path."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


class MatrixTooLarge(MatrixError):
    """The matrix would expand to more combinations than allowed."""


def parse_axes(matrix: Mapping[str, Any], path: Path) -> list[Axis]:
    """Return the axes of a (schema-valid) matrix mapping, ranges kept lazy."""
    axes: list[Axis] = []
    for name, raw in matrix.items():
        if name in ("include", "exclude"):
            continue
        axis_path = (*path, name)
        if isinstance(raw, dict):
            first, last = raw["range"]
            step = raw.get("step", 1)
            if last < first:
                raise MatrixError(
                    (*axis_path, "range"),
                    f"range [{first}, {last}] is empty — write [first, last] with first <= last",
                )
            axes.append(Axis(name, range(first, last + 1, step), axis_path, True))
        else:
            axes.append(Axis(name, raw, axis_path, False))
    return axes


def expand(matrix: Mapping[str, Any] | None, path: Path, limit: int) -> list[Combination]:
    """Expand a schema-valid matrix into combinations, or raise `MatrixError`.

    `limit` bounds the result; it is checked arithmetically before expanding.
    An absent or empty matrix is one empty combination (a single request).
    """
    if not matrix:
        return [Combination({}, {})]
    axes = parse_axes(matrix, path)
    names = {axis.name for axis in axes}
    excludes: list[dict[str, Any]] = matrix.get("exclude", [])
    includes: list[dict[str, Any]] = matrix.get("include", [])
    for i, entry in enumerate(excludes):
        for key in entry:
            if key not in names:
                raise MatrixError(
                    (*path, "exclude", i, key),
                    f"exclude key {key!r} is not a matrix axis — use one of: "
                    f"{', '.join(sorted(names)) or '(no axes)'}",
                )

    product = math.prod(len(axis.values) for axis in axes) if axes else 0
    # Refused before expanding only when certain: includes may extend combinations instead
    # of adding any, so the product is the least count; with exclude, scan a bounded number.
    if product > limit and (not excludes or product > limit * EXCLUDE_SCAN_FACTOR):
        least = "" if not includes else "at least "
        raise MatrixTooLarge(
            path,
            f"the matrix expands to {least}{product:,} combinations, more than the limit of "
            f"{limit:,} — shrink an axis, or raise max_requests if you mean it",
        )

    originals = list(_product(axes, excludes, path, limit))
    extra: list[Combination] = []
    for i, entry in enumerate(includes):
        entry_origin = (*path, "include", i)
        matched = False
        for combo in originals:
            if all(_same(combo.values[key], value) for key, value in entry.items() if key in names):
                matched = True
                for key, value in entry.items():
                    if key not in names:
                        combo.values[key] = value
                        combo.origins[key] = (*entry_origin, key)
        if not matched:
            extra.append(Combination(dict(entry), {key: (*entry_origin, key) for key in entry}))
    result = originals + extra
    if len(result) > limit:
        raise MatrixTooLarge(
            path,
            f"the matrix expands to {len(result):,} combinations, more than the limit of "
            f"{limit:,} — shrink an axis, or raise max_requests if you mean it",
        )
    return result


def holds_float(matrix: Mapping[str, Any] | None) -> bool:
    """Return whether a combination of this (schema-valid) matrix may hold a float value.

    A combination's values are axis values and include entries' values, so those are
    looked at, once each, rather than the (many more) combinations. Ranges are integers.
    """
    for name, raw in (matrix or {}).items():
        values = [v for entry in raw for v in entry.values()] if name == "include" else raw
        # An axis is a list of values (a range, a mapping of integers); exclude's list
        # holds mappings, never a float.
        if isinstance(values, list) and any(isinstance(v, float) for v in values):
            return True
    return False


def _product(
    axes: list[Axis], excludes: list[dict[str, Any]], path: Path, limit: int
) -> Iterator[Combination]:
    if not axes:
        return
    kept = 0
    names = [axis.name for axis in axes]
    # Values and origins as two products in step: a combination is then two C-level zips
    # instead of a method call per axis (a 100,000-combination sweep makes 100,000).
    values_of = [axis.values for axis in axes]
    origins_of = [list(map(axis.origin, range(len(axis.values)))) for axis in axes]
    products = zip(itertools.product(*values_of), itertools.product(*origins_of), strict=True)
    for chosen, where in products:
        values = dict(zip(names, chosen, strict=True))
        if excludes and any(
            all(_same(values[k], v) for k, v in entry.items()) for entry in excludes
        ):
            continue
        kept += 1
        if kept > limit:
            raise MatrixTooLarge(
                path,
                f"the matrix expands to more than {limit:,} combinations after exclude — "
                "shrink an axis, or raise max_requests if you mean it",
            )
        yield Combination(values, dict(zip(names, where, strict=True)))


def _same(a: Any, b: Any) -> bool:
    """Compare two YAML values as JSON values: types matter (1 != 1.0 != "1" != true)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)
