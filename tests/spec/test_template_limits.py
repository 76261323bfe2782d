"""The template sandbox's limits, each at its edge and with the words a spec's author reads."""

from __future__ import annotations

from typing import Any

import pytest

from runner.templates import Renderer, TemplateProblem

BIG = list(range(100_000))  # a context value as large as a rendered value may be
CONTEXT = {"big": BIG, "tags": ["a", "b"], "users": [{"name": "a"}, {"name": "b"}],
           "m": {"a": 1}, "small": list(range(577))}
LIMIT = "templates are limited to 100,000 — make the value smaller"
WALK = "items in one value; templates are bounded — work on fewer items"


def render(source: str, **context: Any) -> Any:
    """Compile and render `source` with a fresh renderer (a fresh budget)."""
    renderer = Renderer()
    return renderer.render(renderer.compile(source), {**CONTEXT, **context})


def refusal(source: str, **context: Any) -> str:
    """Return the reason rendering `source` is refused."""
    with pytest.raises(TemplateProblem) as info:
        render(source, **context)
    return str(info.value)


def test_an_unknown_filter_or_test_is_told_with_what_there_is() -> None:
    """An unknown filter lists the filters on offer; an unknown test lists the tests."""
    assert refusal("{{ x | center }}") == (
        "template syntax error: No filter named 'center'. (spec templates offer: abs, attr, "
        "capitalize, count, d, default, dictsort, e, escape, first, float, forceescape, "
        "format, groupby, int, items, join, last, length, list, lower, map, max, min, "
        "reject, rejectattr, replace, reverse, round, select, selectattr, sort, string, sum, "
        "title, tojson, trim, truncate, unique, upper, urlencode, wordcount) — check the "
        "{{ }} and {% %} pairs")
    told = refusal("{{ 1 is prime }}")
    assert told.startswith(
        "template syntax error: No test named 'prime'. (spec templates offer the tests: !=, "
        "<, <=, ==, >, >=, boolean, callable, defined, divisibleby, ")
    assert " odd, " in told and " in, " not in told  # `in` is removed (quadratic)
    assert told.endswith(", undefined, upper) — check the {{ }} and {% %} pairs")
