"""One JSON value per line, compact, for the request lines of `runner plan --json`.

A plan of 100,000 requests writes 100,000 lines (75 MB); the standard encoder spends
about 20 µs on each, orjson a fifth of that. orjson writes compact JSON (no spaces after
`,` and `:`) and refuses what it cannot represent exactly (integers beyond 64 bits); those
values take the standard encoder with the same separators, so every line reads alike.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import orjson


def _mapping(value: Any) -> dict[Any, Any]:
    """Encode a mapping that is not a dict (a read-only view) as the dict it shows."""
    if isinstance(value, Mapping):
        return dict(value)
    msg = f"{type(value).__name__} is not JSON serializable"
    raise TypeError(msg)


def _standard(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_mapping)


def line_encoder() -> Callable[[Any], str]:
    """Return a function giving one value as a line of compact JSON (UTF-8 text)."""
    dumps = orjson.dumps

    def encode(value: Any) -> str:
        try:
            return dumps(value, default=_mapping).decode("utf-8")
        except orjson.JSONEncodeError:
            return _standard(value)

    return encode
