"""The model catalog: which models exist, where they are posted, what they output.

Everything here is read from the per-model schemas in `schemas/models/` (their
`x-runner` block), so adding a model means adding one schema file.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from runner.schemas import load_schema, schemas_dir


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


@cache
def catalog() -> dict[str, ModelInfo]:
    """Return every known model by its name."""
    models: dict[str, ModelInfo] = {}
    for path in sorted((schemas_dir() / "models").glob("*.schema.json")):
        relative = f"models/{path.name}"
        schema = load_schema(relative)
        extra = schema["x-runner"]
        props = schema["properties"]
        name = props["model"]["const"]
        models[name] = ModelInfo(
            name=name,
            schema_file=relative,
            endpoint=extra["endpoint"],
            sizes={ratio: (w, h) for ratio, (w, h) in extra["sizes"].items()},
            default_ratio=props["ratio"]["default"],
            image_fields=tuple(extra["image_fields"]),
            params=tuple(props),
        )
    return models


def get_model(name: str) -> ModelInfo | None:
    """Return the model called `name`, or None when it is unknown."""
    return catalog().get(name)
