"""runner.heap: large plans are built with the cyclic collector paused, and only then."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.heap import collector_paused
from runner.matrix import expand
from runner.observe import observe
from runner.planning import build_plan
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
