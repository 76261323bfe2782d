"""`runner models`: the catalog as a table, one model's parameters, or JSON.

The JSON shapes are described by `schemas/output/models.schema.json`; both carry
`format` (which of the two it is) and `format_version` so scripts can tell when they
change.
"""

from __future__ import annotations

import difflib
import json
import textwrap
from collections.abc import Iterable, Sequence
from typing import Any

from runner.catalog import Catalog, Model, Parameter, Route
from runner.errors import UsageError

LIST_FORMAT = "runner-models"  # `runner models --json`
DETAIL_FORMAT = "runner-model"  # `runner models NAME --json`
FORMAT_VERSION = 1
WRAP = 88


def choose(catalog: Catalog, capabilities: Iterable[str], family: str | None) -> list[Model]:
    """Return the models with every capability (and of the family), or fail on a bad filter."""
    wanted = list(capabilities)
    for capability in wanted:
        if capability not in catalog.capabilities:
            raise UsageError(_unknown("capability", capability, catalog.capabilities))
    if family is not None and family.lower() not in {f.lower() for f in catalog.families}:
        raise UsageError(_unknown("family", family, catalog.families))
    return catalog.select(wanted, family)


def find(catalog: Catalog, name: str) -> Model:
    """Return the model called `name`, or fail saying why it is not there."""
    model = catalog.get(name)
    if model is not None:
        return model
    left_out = catalog.excluded.get(name)
    if left_out is not None:
        msg = (
            f"model {name!r} is left out of the catalog ({left_out.reason}) — see "
            "docs/MODELS.md for what was left out and why"
        )
        raise UsageError(msg)
    close = catalog.suggest(name)
    hint = f"did you mean {close!r}?" if close else "`runner models` lists the catalog"
    msg = f"unknown model {name!r} — {hint}"
    raise UsageError(msg)


def _unknown(what: str, given: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(given, list(known), n=1, cutoff=0.5)
    hint = f"did you mean {close[0]!r}?" if close else f"use one of: {', '.join(known)}"
    return f"unknown {what} {given!r} — {hint}"


# ------------------------------------------------------------------------------- text


def _values(values: Sequence[Any] | None) -> str:
    """Return values for a table cell: "5,10", or a run of whole numbers as "4-15"."""
    if not values:
        return "-"
    ints = [v for v in values if isinstance(v, int) and not isinstance(v, bool)]
    if len(ints) == len(values) > 3 and ints == list(range(ints[0], ints[-1] + 1)):
        return f"{ints[0]}-{ints[-1]}"
    return ",".join(str(v) for v in values)


def list_lines(models: Sequence[Model]) -> list[str]:
    """Return the catalog table: one line per model."""
    header = ("MODEL", "FAMILY", "SEED", "RATIOS", "SECONDS", "ROUTES", "CAPABILITIES")
    rows = [
        (
            m.name,
            m.family,
            "yes" if m.takes_seed else "no",
            _values(m.ratios),
            _values(m.durations),
            ",".join(r.name for r in m.routes),
            ", ".join(c for c in m.capabilities if c != "seed"),
        )
        for m in models
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    lines.append(f"{len(rows)} models — `runner models NAME` shows one's parameters")
    return lines


def detail_lines(catalog: Catalog, model: Model) -> list[str]:
    """Return one model's facts and, per route, its parameters."""
    lines = [f"{model.name} — {model.title} ({model.family})"]
    lines.append(f"capabilities: {', '.join(model.capabilities) or '-'}")
    facts = []
    if model.ratios:
        facts.append(f"ratios: {_with_default(model.ratios, model.default_ratio)}")
    if model.durations:
        facts.append(f"seconds: {_with_default(model.durations, model.default_duration)}")
    if model.resolutions:
        facts.append(f"resolutions: {_with_default(model.resolutions, model.default_resolution)}")
    lines.extend(facts)
    if model.sizes:
        sizes = ", ".join(
            f"{s.ratio}{' ' + s.resolution if s.resolution else ''} {s.width}x{s.height}"
            for s in model.sizes
        )
        lines.append(f"output sizes ({model.sizes_source}): {sizes}")
    lines.append(f"docs: {model.docs_path} ({catalog.docs_repository}@{catalog.docs_commit[:12]})")
    for i, route in enumerate(model.routes):
        lines.append("")
        choice = "default" if i == 0 else f"spec: endpoint: {route.name}"
        lines.append(f"route {route.name} ({choice}): POST {route.endpoint}")
        moved = [f"{p} -> {t.wire}" for p, t in route.fields.items() if t.wire != p]
        if moved:
            lines.append(f"  portable names: {', '.join(moved)}")
        for parameter in route.parameters():
            lines.extend(_parameter_lines(parameter))
    if model.notes:
        lines.append("")
        lines.append("docs notes:")
        for note in model.notes:
            where = f"{note.field}: " if note.field else ""
            lines.extend(
                textwrap.wrap(f"- {where}{note.text} ({note.source})", WRAP,
                              subsequent_indent="  ")
            )
    return lines


def _with_default(values: Sequence[Any], default: Any) -> str:
    return ", ".join(f"{v} (default)" if v == default else str(v) for v in values)


def _parameter_lines(p: Parameter) -> list[str]:
    kind = "one of " + ", ".join(str(v) for v in p.enum) if p.enum else p.type
    if p.minimum is not None or p.maximum is not None:
        low = "" if p.minimum is None else _number(p.minimum)
        high = "" if p.maximum is None else _number(p.maximum)
        kind += f" {low}..{high}"
    parts = [f"  {p.name}: {kind}"]
    if p.required:
        parts.append("required")
    if p.default is not None:
        parts.append(f"default {json.dumps(p.default)}")
    if p.portable and p.portable != (p.name,):
        parts.append(f"portable: {', '.join(p.portable)}")
    lines = ["; ".join(parts)]
    if p.description:
        lines.extend(textwrap.wrap(p.description, WRAP, initial_indent="      ",
                                   subsequent_indent="      "))
    return lines


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


# ------------------------------------------------------------------------------- JSON


def _summary(model: Model) -> dict[str, Any]:
    return {
        "name": model.name,
        "family": model.family,
        "title": model.title,
        "capabilities": list(model.capabilities),
        "image_required": model.image_required,
        "seed": model.takes_seed,
        "ratios": _list(model.ratios),
        "default_ratio": model.default_ratio,
        "durations": _list(model.durations),
        "default_duration": model.default_duration,
        "resolutions": _list(model.resolutions),
        "default_resolution": model.default_resolution,
        "routes": [
            {"name": r.name, "endpoint": r.endpoint, "default": i == 0}
            for i, r in enumerate(model.routes)
        ],
    }


def _list(values: Sequence[Any] | None) -> list[Any] | None:
    return None if values is None else list(values)


def _docs(catalog: Catalog) -> dict[str, str]:
    return {"repository": catalog.docs_repository, "commit": catalog.docs_commit}


def list_json(catalog: Catalog, models: Sequence[Model]) -> dict[str, Any]:
    """Return the `runner models --json` object."""
    return {
        "format": LIST_FORMAT,
        "format_version": FORMAT_VERSION,
        "docs": _docs(catalog),
        "models": [_summary(m) for m in models],
        "excluded": [
            {"name": e.name, "family": e.family, "reason": e.reason}
            for e in sorted(catalog.excluded.values(), key=lambda e: e.name)
        ],
    }


def _route_json(route: Route) -> dict[str, Any]:
    return {
        "name": route.name,
        "endpoint": route.endpoint,
        "portable": {name: target.wire for name, target in route.fields.items()},
        "images": {
            "first": route.images.first,
            "last": route.images.last,
            "other": list(route.images.other),
        },
        "seed": None if route.seed is None else {
            "field": route.seed.field,
            "minimum": route.seed.minimum,
            "maximum": route.seed.maximum,
        },
        "parameters": [
            {
                "name": p.name,
                "type": p.type,
                "enum": _list(p.enum),
                "default": p.default,
                "required": p.required,
                "portable": list(p.portable),
                "minimum": p.minimum,
                "maximum": p.maximum,
                "description": p.description,
            }
            for p in route.parameters()
        ],
    }


def detail_json(catalog: Catalog, model: Model) -> dict[str, Any]:
    """Return the `runner models NAME --json` object."""
    entry = _summary(model)
    entry["routes"] = [
        {**_route_json(r), "default": i == 0} for i, r in enumerate(model.routes)
    ]
    entry["sizes"] = None if model.sizes is None else [
        {"ratio": s.ratio, "resolution": s.resolution, "width": s.width, "height": s.height}
        for s in model.sizes
    ]
    entry["sizes_source"] = model.sizes_source
    entry["docs_path"] = model.docs_path
    entry["notes"] = [
        {"source": n.source, "kind": n.kind, "field": n.field, "text": n.text}
        for n in model.notes
    ]
    return {"format": DETAIL_FORMAT, "format_version": FORMAT_VERSION, "docs": _docs(catalog),
            "model": entry}
