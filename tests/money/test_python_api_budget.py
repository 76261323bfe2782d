"""The Python API spends as the command does: priced plans, every ceiling, saved plans."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import runner
from runner.errors import StalePlan
from runner.sandbox import RunningSandbox

from .conftest import KEY, MIXED, catalog, invoke, oracle_price

ONE_MODEL = MIXED.replace("  model: [alibaba/wan-2-6-t2v, alibaba/wan-2-7-t2v]\n", "").replace(
    "provider: aimlapi\n", "provider: aimlapi\nmodel: alibaba/wan-2-6-t2v\n")


@pytest.fixture(autouse=True)
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Python API reads keys from the environment, as the command does."""
    monkeypatch.setenv("AIMLAPI_API_KEY", KEY)


def quick(sandbox: RunningSandbox) -> dict[str, Any]:
    """Keyword arguments pointing a run at `sandbox` and polling it quickly."""
    return {"base_url": sandbox.base_url, "poll_min": 0.02, "poll_max": 0.1}


def test_plan_prices_each_submission_as_plan_json_does(
    sandbox: RunningSandbox, write_spec: Callable[..., Path]
) -> None:
    """runner.plan(base_url=) reads the price list: the same estimates as the command."""
    spec = write_spec(MIXED)
    plan = runner.plan(spec, base_url=sandbox.base_url)
    printed = json.loads(invoke("plan", "--json", "--base-url", sandbox.base_url, spec).stdout)
    assert plan.to_json() == printed
    assert plan.estimated_usd == pytest.approx(printed["estimated_usd"]) and plan.estimated_usd


def test_max_cost_stops_a_run_with_exit_code_3_and_a_larger_one_finishes(
    sandbox: RunningSandbox, write_spec: Callable[..., Path]
) -> None:
    """max_cost= is the --max-cost ceiling: the sandbox bills no more, exit_code is 3, and
    a second call with room finishes the rest without paying twice."""
    spec = write_spec(ONE_MODEL)
    body = catalog(sandbox)
    cheap = oracle_price(body, "alibaba/wan-2-6-t2v", {"resolution": "720p", "duration": 5})
    assert cheap is not None
    first = runner.run(spec, max_cost=cheap * 1.5, concurrency=1, **quick(sandbox))
    assert first.exit_code == 3
    billed = sandbox.stats()["billed_usd"]
    assert 0 < billed <= cheap * 1.5
    second = runner.run(spec, max_cost=1000, **quick(sandbox))
    stats = sandbox.stats()
    assert second.exit_code == 0
    assert stats["submissions"] == 4 and stats["duplicate_submissions"] == 0


def test_runner_toml_budget_holds_for_the_python_api(
    sandbox: RunningSandbox, write_spec: Callable[..., Path], workdir: Path
) -> None:
    """`budget` in runner.toml caps a run started from Python, not only from the shell."""
    spec = write_spec(ONE_MODEL)
    (workdir / "runner.toml").write_text("budget = 0.01\n")
    summary = runner.run(spec, **quick(sandbox))
    assert summary.exit_code == 3
    assert sandbox.stats()["submissions"] == 0


def test_a_saved_plan_runs_exactly_and_refuses_what_it_fixes(
    sandbox: RunningSandbox, write_spec: Callable[..., Path]
) -> None:
    """plan(out=) then run(plan=): the saved plan's specs and options, nothing given twice;
    an edited spec afterwards makes the plan stale (exit code 2), before any submission."""
    spec = write_spec(ONE_MODEL)
    runner.plan(spec, base_url=sandbox.base_url, out="plan.json")
    with pytest.raises(runner.UsageError, match="give no spec paths"):
        runner.run(spec, plan="plan.json")
    with pytest.raises(runner.UsageError, match="drop force="):
        runner.run(plan="plan.json", force=True)
    summary = runner.run(plan="plan.json", poll_min=0.02, poll_max=0.1)
    assert summary.exit_code == 0 and sandbox.stats()["submissions"] == 4

    runner.plan(spec, base_url=sandbox.base_url, out="again.json")
    spec.write_text(spec.read_text(encoding="utf-8").replace("dusk", "dawn"), encoding="utf-8")
    with pytest.raises(StalePlan) as caught:
        runner.run(plan="again.json")
    assert caught.value.exit_code == 2
    assert sandbox.stats()["submissions"] == 4
