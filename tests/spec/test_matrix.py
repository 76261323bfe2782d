"""Matrix expansion: GitHub Actions `strategy.matrix` semantics, their documented examples."""

from __future__ import annotations

from typing import Any

import pytest

from runner.matrix import MatrixError, MatrixTooLarge, expand
from runner.yamlpos import load


def combos(yaml_text: str, limit: int = 10_000) -> list[dict[str, Any]]:
    """Expand the `matrix:` of a YAML snippet and return the plain combinations."""
    matrix = load(yaml_text).data["matrix"]
    return [c.values for c in expand(matrix, ("matrix",), limit)]


def test_docs_multi_dimension_order() -> None:
    """GitHub docs: version x os runs in declaration order, first variable slowest."""
    got = combos("""
matrix:
  version: [10, 12, 14]
  os: [ubuntu-latest, windows-latest]
""")
    assert got == [
        {"version": 10, "os": "ubuntu-latest"},
        {"version": 10, "os": "windows-latest"},
        {"version": 12, "os": "ubuntu-latest"},
        {"version": 12, "os": "windows-latest"},
        {"version": 14, "os": "ubuntu-latest"},
        {"version": 14, "os": "windows-latest"},
    ]


def test_docs_single_dimension() -> None:
    """GitHub docs: a single variable gives one combination per value."""
    assert combos("matrix:\n  version: [10, 12, 14]\n") == [
        {"version": 10},
        {"version": 12},
        {"version": 14},
    ]


def test_docs_include_fruit_animal_example() -> None:
    """GitHub docs' include example gives exactly their six combinations, in order."""
    got = combos("""
matrix:
  fruit: [apple, pear]
  animal: [cat, dog]
  include:
    - color: green
    - color: pink
      animal: cat
    - fruit: apple
      shape: circle
    - fruit: banana
    - fruit: banana
      animal: cat
""")
    assert got == [
        {"fruit": "apple", "animal": "cat", "color": "pink", "shape": "circle"},
        {"fruit": "apple", "animal": "dog", "color": "green", "shape": "circle"},
        {"fruit": "pear", "animal": "cat", "color": "pink"},
        {"fruit": "pear", "animal": "dog", "color": "green"},
        {"fruit": "banana"},
        {"fruit": "banana", "animal": "cat"},
    ]


def test_docs_expanding_configurations() -> None:
    """GitHub docs: include adds npm: 6 only to the windows-latest / node 16 job."""
    got = combos("""
matrix:
  os: [windows-latest, ubuntu-latest]
  node: [14, 16]
  include:
    - os: windows-latest
      node: 16
      npm: 6
""")
    assert got == [
        {"os": "windows-latest", "node": 14},
        {"os": "windows-latest", "node": 16, "npm": 6},
        {"os": "ubuntu-latest", "node": 14},
        {"os": "ubuntu-latest", "node": 16},
    ]


def test_docs_adding_configurations() -> None:
    """GitHub docs: 3 x 3 plus an include that contradicts an axis value runs 10 jobs."""
    got = combos("""
matrix:
  os: [macos-latest, windows-latest, ubuntu-latest]
  version: [12, 14, 16]
  include:
    - os: windows-latest
      version: 17
""")
    assert len(got) == 10
    assert got[-1] == {"os": "windows-latest", "version": 17}


def test_docs_include_only_matrix() -> None:
    """GitHub docs: with no axes, every include entry is its own combination."""
    got = combos("""
matrix:
  include:
    - site: "production"
      datacenter: "site-a"
    - site: "staging"
      datacenter: "site-b"
""")
    assert got == [
        {"site": "production", "datacenter": "site-a"},
        {"site": "staging", "datacenter": "site-b"},
    ]


def test_docs_exclude_partial_match() -> None:
    """GitHub docs: 12 combinations minus a full match and a partial match leave 9."""
    got = combos("""
matrix:
  os: [macos-latest, windows-latest]
  version: [12, 14, 16]
  environment: [staging, production]
  exclude:
    - os: macos-latest
      version: 12
      environment: production
    - os: windows-latest
      version: 16
""")
    assert len(got) == 9
    assert {"os": "macos-latest", "version": 12, "environment": "production"} not in got
    assert not [c for c in got if c["os"] == "windows-latest" and c["version"] == 16]


def test_docs_fail_fast_example_adds_experimental_job() -> None:
    """GitHub docs (fail-fast): versions 6-8 plus an included version 9 make four jobs."""
    got = combos("""
matrix:
  version: [6, 7, 8]
  experimental: [false]
  include:
    - version: 9
      experimental: true
""")
    assert got == [
        {"version": 6, "experimental": False},
        {"version": 7, "experimental": False},
        {"version": 8, "experimental": False},
        {"version": 9, "experimental": True},
    ]


def test_docs_continue_on_error_example() -> None:
    """GitHub docs (continue-on-error): 2 x 2 x 1 plus node 15 on ubuntu make five jobs."""
    got = combos("""
matrix:
  node: [13, 14]
  os: [macos-latest, ubuntu-latest]
  experimental: [false]
  include:
    - node: 15
      os: ubuntu-latest
      experimental: true
""")
    assert len(got) == 5
    assert got[-1] == {"node": 15, "os": "ubuntu-latest", "experimental": True}


def test_include_after_exclude_adds_back() -> None:
    """Include is processed after exclude, so it can add an excluded combination back."""
    got = combos("""
matrix:
  seed: [1, 2]
  ratio: ["16:9", "9:16"]
  exclude:
    - {seed: 2, ratio: "9:16"}
  include:
    - {seed: 2, ratio: "9:16"}
""")
    assert got == [
        {"seed": 1, "ratio": "16:9"},
        {"seed": 1, "ratio": "9:16"},
        {"seed": 2, "ratio": "16:9"},
        {"seed": 2, "ratio": "9:16"},
    ]


def test_values_compare_with_their_types() -> None:
    """An include value "1" (text) does not match the axis value 1 (number)."""
    got = combos("""
matrix:
  seed: [1]
  include:
    - {seed: "1", tag: x}
""")
    assert got == [{"seed": 1}, {"seed": "1", "tag": "x"}]


def test_compact_range_axis() -> None:
    """`{range: [first, last]}` lists the integers first..last, both included, with step."""
    assert combos("matrix:\n  seed: {range: [3, 6]}\n") == [{"seed": s} for s in (3, 4, 5, 6)]
    assert combos("matrix:\n  seed: {range: [0, 10], step: 5}\n") == [
        {"seed": 0},
        {"seed": 5},
        {"seed": 10},
    ]


def test_origins_point_at_the_written_values() -> None:
    """Each combination remembers where its values were written (for error positions)."""
    matrix = load("matrix:\n  seed: [1, 2]\n  include:\n    - {seed: 2, x: 1}\n").data["matrix"]
    second = expand(matrix, ("matrix",), 100)[1]
    assert second.origins == {"seed": ("matrix", "seed", 1), "x": ("matrix", "include", 0, "x")}


def test_billion_combinations_are_counted_not_expanded() -> None:
    """A matrix of billions of combinations is refused with its count, never expanded."""
    matrix = {"seed": {"range": [1, 1_000_000_000]}, "ratio": ["16:9", "9:16"]}
    with pytest.raises(MatrixTooLarge, match="2,000,000,000 combinations"):
        expand(matrix, ("matrix",), 10_000)


def test_cap_counts_exclude_and_include() -> None:
    """The cap applies to the final count: exclude can bring a big product under it."""
    matrix = {"a": [1, 2], "b": {"range": [1, 6]}, "exclude": [{"a": 2}]}
    assert len(expand(matrix, ("matrix",), 6)) == 6
    with pytest.raises(MatrixTooLarge):
        expand({**matrix, "include": [{"a": 3}]}, ("matrix",), 6)


def test_exclude_key_must_be_an_axis() -> None:
    """An exclude entry naming no axis is an error (as on GitHub), pointing at the key."""
    with pytest.raises(MatrixError) as info:
        expand({"seed": [1], "exclude": [{"sede": 1}]}, ("matrix",), 10)
    assert info.value.path == ("matrix", "exclude", 0, "sede")


def test_empty_range_is_an_error() -> None:
    """A range whose last value is below its first is refused."""
    with pytest.raises(MatrixError, match="empty"):
        expand({"seed": {"range": [5, 1]}}, ("matrix",), 10)


def test_no_matrix_is_one_request() -> None:
    """A spec without a matrix expands to exactly one (empty) combination."""
    assert [c.values for c in expand(None, ("matrix",), 10)] == [{}]
