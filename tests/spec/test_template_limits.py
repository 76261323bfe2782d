"""The template sandbox's limits, each at its edge and with the words a spec's author reads."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

import runner.templates
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


@pytest.mark.parametrize(
    ("source", "words"),
    [
        ("{{ 10**6 * 'x' }}", f"'*' would build a value of 1,000,000 characters or items; {LIMIT}"),
        ("{{ 'ab' * 10**6 }}",
         f"'*' would build a value of 2,000,000 characters or items; {LIMIT}"),
        ("{{ 'x' * 60000 + 'y' * 60000 }}",
         f"'+' would build a value of 120,000 characters or items; {LIMIT}"),
        ("{% set a = 'x' * 1000 %}" + "{% set a = a ~ a %}" * 30 + "{{ a }}",
         f"'~' would build a value of 128,000 characters or items; {LIMIT}"),
        ("{{ '%s' % big }}", f"'%' would build a value of 100,002 characters or items; {LIMIT}"),
        ("{{ '%s' | format(big) }}",
         f"'%' would build a value of 100,002 characters or items; {LIMIT}"),
        ("{{ '%(v)s' | format(v=big) }}",
         f"'%' would build a value of 100,005 characters or items; {LIMIT}"),
        ("{{ range(3000) | map('string') | join('-' * 50) }}",
         f"join would build a value of 160,890 characters or items; {LIMIT}"),
        ("{{ 'ab' | replace('', 'x' * 33333) }}",
         f"replace would build a value of 100,001 characters or items; {LIMIT}"),
        ("{{ ('x' * 100001) | length }}",
         f"'*' would build a value of 100,001 characters or items; {LIMIT}"),
        ("{{ 10**1000 * 10**400 }}",
         "'*' would build an integer of about 4,651 bits; the limit is 4,096 — use smaller "
         "numbers"),
        ("{{ 10 ** 100000 }}",
         "'**' would build an integer of about 400,000 bits; the limit is 4,096 — use smaller "
         "numbers"),
        ("{{ " + "1" * 1300 + " ** 1 }}",  # a power of a written integer past the limit
         "'**' would build an integer of about 4,316 bits; the limit is 4,096 — use smaller "
         "numbers"),
        ("{{ (2 ** 2049) > 0 }}",
         "'**' would build an integer of about 4,098 bits; the limit is 4,096 — use smaller "
         "numbers"),
        ("{{ '%*d' % (5, 1) }}",
         "%-format widths and precisions over 100 are refused — use a smaller one"),
        ("{{ '%101d' % 1 }}",
         "%-format widths and precisions over 100 are refused — use a smaller one"),
        ("{{ '%s' | format(1, x=2) }}",
         "format takes positional or keyword arguments, not both — pick one"),
        ("{{ 'a' + 1 }}",
         'template error: TypeError: can only concatenate str (not "int") to str — fix the '
         "expression"),
        ("{{ tags.append(1) }}",
         "template error: access to attribute 'append' of 'list' object is unsafe. — use "
         "variables, filters and plain values"),
    ],
)
def test_what_would_grow_too_much_is_refused_before_it_runs(source: str, words: str) -> None:
    """Each growing operation is charged before it runs, and its refusal names it and the
    size it would have built."""
    assert refusal(source) == words


@pytest.mark.parametrize(
    ("source", "value"),
    [
        ("{{ ('x' * 100000) | length }}", 100_000),  # exactly the limit
        ("{{ (2 ** 2048) > 0 }}", True),  # exactly 4,096 bits by the estimate
        ("{{ 1 ** 3000 }}", 1),  # 1 and 0 count as one bit each
        ("{{ 2 ** 0 }}", 1),
        ("{{ 2.5 * 3 }}", 7.5),  # floats are not sizes
        ("{{ 3 * 2.5 }}", 7.5),
        ("{{ 2.0 ** 3 }}", 8.0),
        ("{{ 7 % 3 }}", 1),  # % of numbers is not formatting
        ("{{ '%100d' % 1 }}", " " * 99 + "1"),  # a width of 100 is allowed
        ("{{ long % 5 }}", "x" * 99_997 + "5"),  # 99,999 characters and one scalar: 100,000
        ("{{ 'a' ~ 'b' }}", "ab"),
        ("{{ tags | join }}", "ab"),
        ("{{ users | join(', ', attribute='name') }}", "a, b"),
        ("{{ m.keys() | list }}", ["a"]),
        ("{{ 'aaa' | replace('a', 'b') }}", "bbb"),
        ("{{ (('a' * 60000) | replace('b', 'cc')) | length }}", 60_000),  # nothing to replace
        ("{{ 'ab' | replace('', 'x' * 33332) | length }}", 99_998),  # '' is 3 places in 'ab'
        ("{{ (('a' * 50000) | replace('a', 'bbb', 0)) | length }}", 50_000),
        ("{{ (('a' * 50000) | replace('a', 'bbb', 1)) | length }}", 50_002),
        ("{{ (('a' * 50000) | replace('a', 'b')) | length }}", 50_000),  # same length
        ("{{ (('ab' * 50000) | replace('ab', 'c')) | length }}", 50_000),  # shrinking
    ],
)
def test_what_fits_is_rendered_exactly(source: str, value: Any) -> None:
    """Values at the limits, and operations that cannot grow, render as Python would."""
    assert render(source, long="x" * 99_997 + "%d") == value


def test_the_work_of_one_render_is_bounded_in_total() -> None:
    """Items walked and characters built share one budget of 1,000,000 per render:
    exactly the budget fits, one item more is refused, and an operation that builds
    nothing still fits at the end."""
    walk = "{% set a = big | list %}"
    build = "{% set s = 'x' * 100000 %}"
    assert render(walk * 10 + "ok") == "ok"
    assert refusal(walk * 11 + "ok") == f"list would walk more than 1,000,000 {WALK}"
    assert render(walk * 9 + build + "ok") == "ok"
    assert render(build * 10 + "{{ 'ab' * 0 }}{{ 0 * 'ab' }}done") == "done"
    assert refusal(build * 11 + "done") == (
        f"'*' would build a value of 100,000 characters or items; {LIMIT}")


def test_a_lazy_chain_of_filters_counts_each_item_each_filter_yields() -> None:
    """Past the budget, the refusal names the filter whose item went over it."""
    walk = "{% set a = big | list %}"
    assert refusal(walk * 9 + "{{ big | map('string') | list | length }}") == (
        f"map would walk more than 1,000,000 {WALK}")
    two_left = walk * 9 + "{% set b = big[:99998] | list %}"
    assert refusal(two_left + "{{ big[:1] | map('string') | list }}") == (
        f"list would walk more than 1,000,000 {WALK}")


@pytest.mark.parametrize(
    ("source", "nesting"),
    [
        ("{{ " + "(" * 33 + "1" + ")" * 33 + " }}", 33),
        ("{{ 'a'" + "|lower" * 33 + " }}", 33),  # each filter is a level
        ("{{ '" + "(" * 32 + ")" + "((" + "' | length }}", 34),  # a close undoes one level
        ("{{ '()" + "(" * 32 + "' | length }}", 33),  # closing never goes below none
        ("{{ '" + "(" * 31 + "X(" + "' | length }}", 33),  # a letter closes nothing
    ],
)
def test_templates_nested_past_32_levels_are_refused(source: str, nesting: int) -> None:
    """Brackets and filters nest; past 32 levels the template is refused, saying how deep."""
    assert refusal(source) == (
        f"the template nests {nesting} levels deep (brackets, parentheses and filters); the "
        "limit is 32 — split it into simpler values")


@pytest.mark.parametrize(
    ("source", "value"),
    [
        ("{{ " + "(" * 32 + "1" + ")" * 32 + " }}", 1),
        ("{{ 'a'" + "|lower" * 32 + " }}", "a"),
        ("{{ '" + "()" * 40 + "' | length }}", 80),  # side by side, not nested
        ("{{ '" + "X" * 40 + "' | length }}", 40),  # letters are not brackets
    ],
)
def test_templates_nested_32_levels_or_side_by_side_are_rendered(source: str, value: Any) -> None:
    """32 levels is the limit, not over it; brackets one after another do not add up."""
    assert render(source) == value


def test_a_template_whose_parsing_recurses_too_deeply_is_refused_cleanly() -> None:
    """Thousands of `not`s (no brackets to count) fail as too deep, not with a crash."""
    assert refusal("{{ " + "not " * 3000 + "x }}") == (
        "the template is nested too deeply to compile — split it into simpler values")


def late_clock(monkeypatch: pytest.MonkeyPatch, later: float) -> None:
    """Make the render start at 0 and every later reading of the clock say `later`."""
    readings = iter([0.0, 0.0])  # the budget's deadline (0 + 1 s), the render's start
    monkeypatch.setattr(runner.templates, "time",
                        SimpleNamespace(monotonic=lambda: next(readings, later)))


@pytest.mark.parametrize("later", [1.0, 1.5])
def test_a_render_past_its_second_is_refused_naming_what_ran(
    monkeypatch: pytest.MonkeyPatch, later: float
) -> None:
    """Work checked after 1 s of one render is refused, naming the operation; at exactly
    1 s it still runs."""
    late_clock(monkeypatch, later)
    if later == 1.0:
        assert render("{{ 'a' ~ 'b' }}") == "ab"
        return
    assert refusal("{{ 'a' ~ 'b' }}") == (
        "'~' ran for more than 1 s in one value; templates are bounded — simplify the "
        "expression")


def test_walking_looks_at_the_clock_every_1024_items(monkeypatch: pytest.MonkeyPatch) -> None:
    """Walking 576 items does not reach the first look at the clock (at 1,024 items from
    1,000,000), 577 do; a late walk is refused naming the filter."""
    late_clock(monkeypatch, 1.5)
    assert render("{{ small[:576] | list }}") == list(range(576))
    late_clock(monkeypatch, 1.5)
    assert refusal("{{ small | list }}") == (
        "list ran for more than 1 s in one value; templates are bounded — simplify the "
        "expression")
    late_clock(monkeypatch, 1.0)
    assert render("{{ small | list }}") == list(range(577))
