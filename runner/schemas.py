"""Locate and load the JSON Schemas in `schemas/`, with the keywords we add.

The schemas are the single source of truth for what a spec and a request body may
say. We add one keyword, `maxUtf16Length`, because the API counts prompt length in
UTF-16 code units while JSON Schema's `maxLength` counts code points (an emoji is one
code point but two units).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema import Draft202012Validator


def schemas_dir() -> Path:
    """Return the folder holding the schemas: the repository's, else the wheel's copy."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "schemas", here / "_schemas"):
        if (candidate / "spec.schema.json").is_file():
            return candidate
    msg = f"runner's schemas/ folder is missing (looked beside {here}); reinstall runner"
    raise FileNotFoundError(msg)


def utf16_length(text: str) -> int:
    """Count UTF-16 code units, the unit the API measures prompts in."""
    return len(text.encode("utf-16-le")) // 2


def _max_utf16_length(
    validator: Any, limit: int, instance: Any, schema: dict[str, Any]
) -> Iterator[jsonschema.ValidationError]:
    if isinstance(instance, str):
        units = utf16_length(instance)
        if units > limit:
            yield jsonschema.ValidationError(
                f"is {units} UTF-16 code units long; the limit is {limit}"
            )


RunnerValidator = jsonschema.validators.extend(
    Draft202012Validator, {"maxUtf16Length": _max_utf16_length}
)


@cache
def load_schema(relative: str) -> dict[str, Any]:
    """Load one schema file by its path relative to `schemas/`."""
    with (schemas_dir() / relative).open(encoding="utf-8") as fh:
        schema: dict[str, Any] = json.load(fh)
    return schema


@cache
def validator_for(relative: str) -> Any:
    """Return a (cached) validator for one schema file.

    The files are not checked against the metaschema here: they ship with runner and the
    tests check every one of them (tests/catalog/test_spec_schema.py), while checking the
    spec schema and a body schema again took ~30 ms of every run before its first request.
    """
    return RunnerValidator(load_schema(relative))
