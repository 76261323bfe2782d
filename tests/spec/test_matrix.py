"""Matrix expansion: GitHub Actions `strategy.matrix` semantics, their documented examples."""

from __future__ import annotations

from typing import Any

import pytest

from runner.matrix import MatrixError, MatrixTooLarge, expand, holds_float
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


def test_include_matches_lists_and_mappings_by_value_and_type() -> None:
    """An include whose list or mapping equals an axis value extends that combination
    (no extra request); a list of another length, or a mapping with other keys or
    values, is a new combination."""
    matrix = {
        "shot": [[1, 2], [1, 2, 3]],
        "cam": [{"move": "pan", "speed": 1}],
        "include": [
            {"shot": [1, 2], "tag": "pair"},
            {"shot": [1], "tag": "short"},
            {"cam": {"move": "pan", "speed": 1}, "lens": 35},
            {"cam": {"move": "pan"}, "lens": 50},
            {"cam": {"move": "pan", "speed": 2}, "lens": 85},
        ],
    }
    got = [c.values for c in expand(matrix, ("matrix",), 100)]
    pan = {"move": "pan", "speed": 1}
    assert got == [
        {"shot": [1, 2], "cam": pan, "tag": "pair", "lens": 35},
        {"shot": [1, 2, 3], "cam": pan, "lens": 35},
        {"shot": [1], "tag": "short"},
        {"cam": {"move": "pan"}, "lens": 50},
        {"cam": {"move": "pan", "speed": 2}, "lens": 85},
    ]


def test_exclude_of_a_list_value_removes_only_that_combination() -> None:
    """Excluding the list [1, 2] keeps [1, 2, 3] and [2, 1]."""
    matrix = {"shot": [[1, 2], [1, 2, 3], [2, 1]], "exclude": [{"shot": [1, 2]}]}
    assert [c.values for c in expand(matrix, ("matrix",), 10)] == [
        {"shot": [1, 2, 3]}, {"shot": [2, 1]}]


def test_too_many_after_exclude_is_refused_at_the_matrix_with_the_cap() -> None:
    """An exclude that leaves more than the cap is refused, naming the cap, at the matrix;
    exactly the cap is accepted."""
    matrix = {"a": {"range": [1, 10]}, "b": [1, 2], "exclude": [{"b": 2, "a": 1}]}
    assert len(expand(matrix, ("matrix",), 19)) == 19
    with pytest.raises(MatrixTooLarge) as info:
        expand(matrix, ("matrix",), 18)
    assert info.value.path == ("matrix",)
    assert info.value.message == (
        "the matrix expands to more than 18 combinations after exclude — shrink an axis, "
        "or raise max_requests if you mean it")


def test_the_cap_is_checked_before_expanding_and_counts_includes() -> None:
    """Without exclude the count is known at once: product plus includes, against the cap
    (exactly the cap fits), refused at the matrix with both numbers."""
    matrix = {"a": [1, 2, 3], "include": [{"a": 9}]}
    assert len(expand(matrix, ("matrix",), 4)) == 4
    with pytest.raises(MatrixTooLarge) as info:
        expand(matrix, ("matrix",), 3)
    assert info.value.path == ("matrix",)
    assert info.value.message == (
        "the matrix expands to 4 combinations, more than the limit of 3 — shrink an axis, "
        "or raise max_requests if you mean it")
    huge = {"a": {"range": [1, 1000]}, "exclude": [{"a": 1}]}
    with pytest.raises(MatrixTooLarge, match="1,000 combinations"):
        expand(huge, ("matrix",), 99)  # past 10 x the cap: not scanned


def test_an_include_only_matrix_counts_its_entries() -> None:
    """A matrix of only includes is as many requests as entries, with their origins."""
    got = expand({"include": [{"x": 1}, {"x": 2}]}, ("matrix",), 2)
    assert [c.values for c in got] == [{"x": 1}, {"x": 2}]
    assert got[1].origins == {"x": ("matrix", "include", 1, "x")}


def test_ranges_of_one_value_and_their_origins() -> None:
    """`{range: [5, 5]}` is the one value 5; a range value's origin is the range itself,
    and a later axis is still read after include/exclude keys."""
    got = expand({"include": [], "seed": {"range": [5, 5]}, "ratio": ["16:9"]}, ("m",), 10)
    assert [c.values for c in got] == [{"seed": 5, "ratio": "16:9"}]
    assert got[0].origins == {"seed": ("m", "seed"), "ratio": ("m", "ratio", 0)}
    with pytest.raises(MatrixError) as info:
        expand({"seed": {"range": [5, 4]}}, ("m",), 10)
    assert info.value.path == ("m", "seed", "range")
    assert "range [5, 4] is empty" in info.value.message


def test_no_matrix_has_no_origins() -> None:
    """The one combination of a spec without a matrix has no values and no origins."""
    (only,) = expand({}, ("matrix",), 1)
    assert (only.values, only.origins) == ({}, {})


def test_includes_that_extend_combinations_do_not_count_against_the_cap() -> None:
    """Three seeds and an include adding a key to one of them are three requests: they
    fit a cap of 3 (they were refused as "4 combinations"); a product past the cap is
    refused at once, at least that many."""
    matrix = {"seed": [1, 2, 3], "include": [{"seed": 1, "tag": "x"}]}
    assert [c.values for c in expand(matrix, ("matrix",), 3)] == [
        {"seed": 1, "tag": "x"}, {"seed": 2}, {"seed": 3}]
    with pytest.raises(MatrixTooLarge) as info:
        expand(matrix, ("matrix",), 2)
    assert info.value.message == (
        "the matrix expands to at least 3 combinations, more than the limit of 2 — shrink "
        "an axis, or raise max_requests if you mean it")


def test_an_unknown_exclude_key_is_told_the_axes_it_may_name() -> None:
    """An exclude key that is no axis gets one line listing the axes, sorted, or saying
    there are none (a matrix of only includes)."""
    with pytest.raises(MatrixError) as info:
        expand({"seed": [1], "ratio": ["16:9"], "exclude": [{"sede": 1}]}, ("matrix",), 10)
    assert info.value.message == (
        "exclude key 'sede' is not a matrix axis — use one of: ratio, seed")
    with pytest.raises(MatrixError) as info:
        expand({"include": [{"x": 1}], "exclude": [{"x": 1}]}, ("matrix",), 10)
    assert info.value.path == ("matrix", "exclude", 0, "x")
    assert info.value.message == (
        "exclude key 'x' is not a matrix axis — use one of: (no axes)")


def test_a_product_past_the_cap_is_refused_at_the_matrix_with_its_exact_count() -> None:
    """Without includes the early refusal gives the exact count (no "at least"), at the
    matrix itself."""
    matrix = {"seed": {"range": [1, 1_000_000_000]}, "ratio": ["16:9", "9:16"]}
    with pytest.raises(MatrixTooLarge) as info:
        expand(matrix, ("jobs", "a", "matrix"), 10_000)
    assert info.value.path == ("jobs", "a", "matrix")
    assert info.value.message == (
        "the matrix expands to 2,000,000,000 combinations, more than the limit of 10,000 — "
        "shrink an axis, or raise max_requests if you mean it")


def test_with_exclude_a_product_of_exactly_ten_times_the_cap_is_still_scanned() -> None:
    """A product of exactly 10 x the cap is expanded, so an exclude that brings it under
    the cap is accepted; one more combination is refused before expanding."""
    excludes = [{"seed": s} for s in range(3, 21)]
    matrix = {"seed": {"range": [1, 20]}, "exclude": excludes}
    assert [c.values for c in expand(matrix, ("matrix",), 2)] == [{"seed": 1}, {"seed": 2}]
    with pytest.raises(MatrixTooLarge, match="expands to 21 combinations"):
        expand({**matrix, "seed": {"range": [1, 21]}}, ("matrix",), 2)


def test_an_include_only_job_after_the_cap_is_spent_is_refused_with_its_count() -> None:
    """When earlier jobs have used the whole cap (0 left), a job of only includes is
    refused after counting its entries: "1 combinations", not a guessed "at least"."""
    with pytest.raises(MatrixTooLarge) as info:
        expand({"include": [{"x": 1}]}, ("jobs", "b", "matrix"), 0)
    assert info.value.path == ("jobs", "b", "matrix")
    assert info.value.message == (
        "the matrix expands to 1 combinations, more than the limit of 0 — shrink an axis, "
        "or raise max_requests if you mean it")


@pytest.mark.parametrize(
    ("matrix", "expected"),
    [
        ({"seed": [1, 2], "ratio": ["16:9"]}, False),
        ({"seed": [1, 2.0]}, True),
        ({"seed": {"range": [1, 9]}}, False),
        ({"seed": [1], "include": [{"seed": 1, "duration": 5.0}]}, True),
        ({"seed": [1, 2], "exclude": [{"seed": 2.0}]}, False),  # an excluded value is no value
        ({"tags": [[1.5]], "opts": [{"cfg": 0.5}]}, False),  # inside a value: kept as written
        ({"seed": {"range": [1, 3]}, "cfg": [0.5]}, True),  # found after a range
        ({"seed": [1, 2], "exclude": [{"seed": 2}], "cfg": [1, 0.5]}, True),  # after exclude
        ({}, False),
        (None, False),
    ],
)
def test_holds_float_says_whether_a_combination_may_hold_one_at_its_top(
    matrix: dict[str, Any] | None, expected: bool
) -> None:
    """The expander normalises a combination's values (1.0 -> 1) only when this says so:
    it must agree with looking at every value of every combination."""
    assert holds_float(matrix) is expected
    combos = expand(matrix, ("matrix",), 100)
    assert any(isinstance(v, float) for c in combos for v in c.values.values()) is expected
