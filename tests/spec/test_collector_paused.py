"""runner.heap: large plans are built with the cyclic collector paused, and only then."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from runner.heap import collector_paused
from runner.matrix import expand
from runner.observe import observe
from runner.planning import Plan, build_plan
from runner.spec import load_specs
from tests.spec.conftest import BASE, SpecWriter

SPEC = BASE + """
name: paused
matrix:
  seed: [1, 2]
params:
  image_url: images/frame.png
  prompt: a quiet harbour
"""


@pytest.fixture(autouse=True)
def _collector_enabled() -> Iterator[None]:
    gc.enable()
    yield
    gc.enable()


def test_paused_inside_and_enabled_after_even_on_error() -> None:
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError
    assert gc.isenabled()


def test_nested_pauses_and_a_caller_s_own_pause_are_kept() -> None:
    with collector_paused():
        with collector_paused():
            pass
        assert not gc.isenabled()  # the inner block ended; the outer one still pauses
    gc.disable()
    with collector_paused():
        pass
    assert not gc.isenabled()  # paused by the caller before: left as it was


def test_expanding_and_planning_run_paused(
    write_spec: SpecWriter, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, bool] = {}
    def spy_expand(*args: object, **kwargs: object) -> object:
        seen["expand"] = gc.isenabled()
        return expand(*args, **kwargs)  # type: ignore[arg-type]

    def spy_observe(*args: object, **kwargs: object) -> object:
        seen["plan"] = gc.isenabled()
        return observe(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("runner.expand.expand", spy_expand)  # as each module calls it
    monkeypatch.setattr("runner.planning.observe", spy_observe)
    specs = load_specs([write_spec(SPEC)])
    assert gc.isenabled()
    plan = build_plan(specs, workdir / "outputs")
    assert gc.isenabled() and len(plan.entries) == 2
    assert seen == {"expand": False, "plan": False}


def test_runner_plan_prints_its_plan_paused_and_resumes_the_collector(
    write_spec: SpecWriter, run_cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[bool] = []
    iter_json = Plan.iter_json

    def spy(self: Plan, extra: Mapping[str, Any] | None = None) -> Iterator[str]:
        seen.append(gc.isenabled())
        return iter_json(self, extra)

    monkeypatch.setattr(Plan, "iter_json", spy)
    result = run_cli("plan", str(write_spec(SPEC)), "--json")
    assert result.exit_code == 0 and seen == [False]
    assert gc.isenabled()


GRID = BASE + """
name: grid
max_requests: 5000
matrix:
  seed: {{range: [1, {n}]}}
params:
  image_url: images/frame.png
  prompt: a quiet harbour
"""


def test_what_expanding_leaves_is_freed_without_the_collector(write_spec: SpecWriter) -> None:
    """The expander's per-request indexes hold no reference cycle: once a spec is loaded,
    they are freed at once, so the garbage a collection finds does not grow with the spec.
    (No per-request template here: a template's render cache is bounded, and lives as
    long as its renderer.)"""
    found = []
    for n in (10, 2000):
        gc.collect()
        with collector_paused():
            (spec,) = load_specs([write_spec(GRID.format(n=n))])
            assert len(spec.requests) == n
            found.append(gc.collect())
    assert found[1] - found[0] < 200, found
