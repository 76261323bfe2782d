"""The validator's shortcut for plain parameter schemas never passes what jsonschema refuses."""

from __future__ import annotations

from typing import Any

import pytest

from runner.schema_errors import _quick_check
from runner.schemas import RunnerValidator

SCHEMAS: list[dict[str, Any]] = [
    {"type": "integer", "minimum": 0, "maximum": 4294967295, "description": "seed"},
    {"type": "integer", "minimum": 1},
    {"type": "integer", "maximum": 10.5},
    {"type": "integer"},
    {"type": "string", "maxLength": 5},
    {"type": "string", "minLength": 2, "maxLength": 3, "default": "ab"},
    {"type": "string"},
]
VALUES: list[Any] = [
    0, 1, -1, 10, 11, 4294967295, 4294967296, 2**70, True, False, 1.0, 2.5, None, "1",
    "", "a", "ab", "abc", "abcd", "abcdef", "é" * 3, "🐉" * 5, "🐉" * 6, [1], {"a": 1},
]


@pytest.mark.parametrize("schema", SCHEMAS, ids=str)
def test_a_value_the_shortcut_passes_is_valid_and_every_other_goes_to_jsonschema(
    schema: dict[str, Any],
) -> None:
    quick = _quick_check(schema)
    assert quick is not None  # each of these takes the shortcut
    validator = RunnerValidator(schema)
    for value in VALUES:
        if quick(value):
            assert validator.is_valid(value), value
        elif type(value) in (int, str) and validator.is_valid(value):
            pytest.fail(f"{value!r} is valid and of the plain type, yet not passed")


@pytest.mark.parametrize("schema", [
    {"type": "integer", "exclusiveMinimum": 0},
    {"type": "string", "pattern": "^a"},
    {"type": "string", "format": "uri"},
    {"type": ["integer", "null"]},
    {"type": "number", "minimum": 0},
    {"type": "string", "enum": ["a"]},
    {"type": "integer", "minimum": "0"},
    {"type": "string", "maxLength": 2.5},
    {"description": "anything"},
    {"const": 5},
    "not a schema",
])
def test_anything_else_is_left_to_jsonschema(schema: Any) -> None:
    assert _quick_check(schema) is None
