"""The older view of the catalog that the expander, the validator and the sandbox still use.

A thin adapter over `runner.catalog` (the registry): `ModelInfo` is one model's default
route flattened into the shape those callers were written for. They assume a Runway-like
body — a `ratio` field with a default, an output size for every ratio, a required
first-frame image in a top-level field — so `catalog()` exposes only the models whose
default route has that shape (today: `runway/gen4_turbo` and `gen3a_turbo` on the legacy
Runway path, exactly as before). New code reads `runner.catalog` instead; once the
callers do, this module goes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from runner.catalog import Model, load_catalog


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One video model as the runner and the sandbox know it."""

    name: str  # the `model` value in the request body, e.g. "runway/gen4_turbo"
    schema_file: str  # relative to schemas/, e.g. "models/runway-gen4_turbo.schema.json"
    endpoint: str  # POST path, also polled with ?generation_id=
    sizes: dict[str, tuple[int, int]]  # ratio -> output (width, height)
    default_ratio: str
    image_fields: tuple[str, ...]  # body fields that carry images
    params: tuple[str, ...]  # every body field the model accepts


def _legacy_shaped(model: Model) -> ModelInfo | None:
    """Return the model's default route as a `ModelInfo`, or None when it has another shape."""
    route = model.default_route
    schema = route.schema()
    ratio = schema["properties"].get("ratio")
    first = route.images.first
    if route.wire_name("ratio") != "ratio" or ratio is None or "default" not in ratio:
        return None
    if first is None or first not in schema.get("required", ()):
        return None
    if route.images.top_level() != route.images.all():
        return None
    sizes: dict[str, tuple[int, int]] = {}
    for name in ratio.get("enum", ()):
        size = model.size(name)
        if size is None:
            return None  # the sandbox renders at the requested ratio's size
        sizes[name] = size
    return ModelInfo(
        name=model.name,
        schema_file=route.schema_file,
        endpoint=route.endpoint,
        sizes=sizes,
        default_ratio=ratio["default"],
        image_fields=route.images.all(),
        params=route.params,
    )


@cache
def catalog() -> dict[str, ModelInfo]:
    """Return every model the older callers can handle, by name."""
    found: dict[str, ModelInfo] = {}
    for name, model in sorted(load_catalog().models.items()):
        info = _legacy_shaped(model)
        if info is not None:
            found[name] = info
    return found


def get_model(name: str) -> ModelInfo | None:
    """Return the model called `name`, or None when it is unknown."""
    return catalog().get(name)
