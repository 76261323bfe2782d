"""Identity, YAML positions and templates: the small pure pieces of the spec layer."""

from __future__ import annotations

import hashlib
import json

import pytest

from runner.identity import canonical_json, derive_seed, request_id
from runner.templates import Renderer, TemplateProblem
from runner.yamlpos import Mark, YamlProblem, load

# --------------------------------------------------------------------------- identity


def test_canonical_json_is_sorted_compact_utf8() -> None:
    """Canonical JSON sorts keys, drops whitespace and keeps non-ASCII as UTF-8."""
    assert canonical_json({"b": 1, "a": [1, "é"]}) == '{"a":[1,"é"],"b":1}'.encode()


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
def test_canonical_json_refuses_numbers_json_cannot_hold(number: float) -> None:
    """NaN and infinities have no JSON spelling: an identity made of them is refused."""
    with pytest.raises(ValueError):
        canonical_json({"seed": number})


def test_request_id_follows_the_documented_formula() -> None:
    """The id is sha256 of canonical {provider, model, endpoint, body}, first 16 hex."""
    body = {"model": "m", "seed": 1}
    expected = hashlib.sha256(
        canonical_json({"provider": "p", "model": "m", "endpoint": "/e", "body": body})
    ).hexdigest()[:16]
    assert request_id("p", "m", "/e", body) == expected
    assert request_id("p", "m", "/e", {"seed": 1, "model": "m"}) == expected


def test_derived_seed_follows_the_documented_formula() -> None:
    """The derived seed is int(first 8 hex of the same hash without seed), in 0..2**32-1."""
    body = {"model": "m", "prompt": "x"}
    digest = hashlib.sha256(
        canonical_json({"provider": "p", "model": "m", "endpoint": "/e", "body": body})
    ).hexdigest()
    seed = derive_seed("p", "m", "/e", body)
    assert seed == int(digest[:8], 16)
    assert 0 <= seed <= 4294967295
    with pytest.raises(ValueError, match="without its seed"):
        derive_seed("p", "m", "/e", {**body, "seed": 1})


def test_provider_is_part_of_the_identity() -> None:
    """The same body for the sandbox and a real provider has different ids and seeds."""
    body = {"model": "m"}
    assert request_id("sandbox", "m", "/e", body) != request_id("aimlapi", "m", "/e", body)
    assert derive_seed("sandbox", "m", "/e", body) != derive_seed("aimlapi", "m", "/e", body)


# ------------------------------------------------------------------------------- YAML


def test_yaml_12_scalars_keep_ratios_as_text() -> None:
    """Unquoted 16:9 stays text (YAML 1.1 would read 969); no/on stay text; no dates."""
    data = load("r: 16:9\nw: [no, on, yes]\nd: 2024-01-01\nb: true\nn: ~\nh: 0x1f\n").data
    assert data == {
        "r": "16:9",
        "w": ["no", "on", "yes"],
        "d": "2024-01-01",
        "b": True,
        "n": None,
        "h": 31,
    }


def test_positions_of_keys_and_values_are_one_based() -> None:
    """Values and keys keep their 1-based line and column."""
    doc = load("a:\n  b: [1, 2]\n")
    assert doc.at(("a", "b", 1)) == Mark(2, 10)
    assert doc.key_at(("a", "b")) == Mark(2, 3)
    assert doc.at(("a", "missing")) == Mark(2, 3)  # nearest written parent


def test_merge_keys_work_and_explicit_keys_win() -> None:
    """`<<: *anchor` merges a mapping; keys written in place override merged ones."""
    data = load("base: &b {x: 1, y: 2}\nm:\n  <<: *b\n  y: 3\n").data
    assert data["m"] == {"y": 3, "x": 1}


@pytest.mark.parametrize(
    ("text", "where", "fragment"),
    [
        ("a: 1\na: 2\n", Mark(2, 1), "duplicate key"),
        ("a: &a [*a]\n", Mark(1, 8), "contains it"),
        ("a: !!python/object/apply:os.system [x]\n", Mark(1, 4), "not supported"),
        ("1: x\n", Mark(1, 1), "quote it"),
        ("a: .nan\n", Mark(1, 4), "not a finite number"),
        ("a: [1,\n", Mark(2, 1), "invalid YAML"),
        ("a: " + "[" * 70 + "]" * 70 + "\n", Mark(1, 67), "nesting"),
    ],
)
def test_yaml_problems_have_positions(text: str, where: Mark, fragment: str) -> None:
    """Bad YAML raises one problem at the right place, with a readable reason."""
    with pytest.raises(YamlProblem) as info:
        load(text)
    assert info.value.mark == where
    assert fragment in info.value.message


def test_alias_bomb_fails_fast_while_composing() -> None:
    """A billion-laughs document is refused while composing, before any object is built."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        prev, name = chr(96 + i), chr(97 + i)
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    with pytest.raises(YamlProblem, match="expands to more than"):
        load("\n".join(lines))


# -------------------------------------------------------------------------- templates


@pytest.fixture
def render() -> object:
    """Render a template source with a small context."""
    renderer = Renderer()
    context = {"seed": 7, "ratio": "16:9", "creature": "dragon", "tags": ["a", "b"]}

    def go(source: str) -> object:
        return renderer.render(renderer.compile(source), context)

    return go


def test_whole_expression_keeps_its_type(render) -> None:  # type: ignore[no-untyped-def]
    """`{{ seed }}` renders the int 7; surrounding spaces do not matter; lists stay lists."""
    assert render("{{ seed }}") == 7
    assert render(" {{ seed + 1 }} ") == 8
    assert render("{{ tags }}") == ["a", "b"]
    assert render("seed-{{ seed }}") == "seed-7"
    assert render("no template") == "no template"


def test_filters_useful_for_paths_and_prompts(render) -> None:  # type: ignore[no-untyped-def]
    """replace, format, join and upper work as in Jinja."""
    assert render("{{ ratio | replace(':', 'x') }}/{{ '%05d' | format(seed) }}") == "16x9/00007"
    assert render("{{ tags | join(', ') }} {{ creature.upper() }}") == "a, b DRAGON"


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("{{ creture }}", "did you mean 'creature'"),
        ("{{ ''.__class__.__mro__ }}", "unsafe"),
        ("{{ seed.__class__.__subclasses__() }}", "unsafe"),
        ("{{ 'a' * 10**10 }}", "limited to"),
        ("{{ 2 ** 1000000 }}", "bits"),
        ("{{ range(10**9) | list }}", "Range too big"),
        ("{% for i in range(9) %}x{% endfor %}", "for loops are not allowed"),
        ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "macros are not allowed"),
        ("{{ 'x' | center(10**9) }}", "No filter named 'center'"),
        ("{{ '{:>999999999}'.format(1) }}", "unsafe"),
        ("{{ '%999999999d' % 1 }}", "width"),
        ("{{ 'ab' | replace('a', 'x' * 99999) | replace('x', 'yy') }}", "limited to"),
        ("{% set a = 'x' * 1000 %}" + "{% set a = a ~ a %}" * 30 + "{{ a }}", "limited to"),
        # Small enough to reach the size limit in milliseconds: a longer map can hit the 1 s
        # time limit first on a loaded machine, which is a different (also right) refusal.
        ("{{ range(3000) | map('string') | join('-' * 50) }}", "limited to"),
        ("{{ lipsum() }}", "undefined"),
        ("{{ 1 / 0 }}", "ZeroDivisionError"),
        ("{{ seed", "syntax error"),
        ("{{ cycler }}", "not data"),
    ],
)
def test_hostile_or_broken_templates_fail_cleanly(render, source: str, fragment: str) -> None:  # type: ignore[no-untyped-def]
    """Escapes, bombs, loops and typos fail fast with a clear reason."""
    with pytest.raises(TemplateProblem) as info:
        render(source)
    assert fragment in str(info.value)


def test_rendering_is_cached_by_the_names_it_reads() -> None:
    """A template that reads only `creature` renders once for many different seeds."""
    renderer = Renderer()
    template = renderer.compile("A {{ creature }}")
    calls = 0
    original = template._render
    assert original is not None

    def counting(context):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        return original(context)

    object.__setattr__(template, "_render", counting)
    for seed in range(50):
        assert renderer.render(template, {"creature": "dragon", "seed": seed}) == "A dragon"
    assert calls == 1
    assert json.dumps(sorted(template.names)) == '["creature"]'
