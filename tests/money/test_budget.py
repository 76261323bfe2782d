"""A budget no run can pass: --max-cost, `budget` in runner.toml, a spec's `budget:`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from runner.sandbox import RunningSandbox, SandboxConfig, start_in_thread

from .conftest import catalog, fast, invoke, oracle_price

# 40 requests at two prices (720p and 1080p): enough to keep 20 in flight at once.
WIDE = """\
version: 1
name: wide
provider: aimlapi
model: alibaba/wan-2-6-t2v
matrix:
  resolution: ["720p", "1080p"]
  seed: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]
params:
  prompt: A lighthouse at dusk, waves below
  duration: 5
output: "{{ resolution }}/seed-{{ seed }}.mp4"
"""


def _statuses(spec: Path) -> dict[str, int]:
    return dict(json.loads(invoke("status", "--json", spec).stdout)["counts"])


def test_a_budget_holds_with_20_submissions_in_flight_then_a_larger_one_finishes(
    write_spec: Callable[..., Path]
) -> None:
    """Twenty generations in flight at once, a ceiling of about half the batch: the
    sandbox bills at most the ceiling, the run says why it stopped (exit 3), everything
    it submitted is downloaded, the rest stay new; a larger budget then finishes the batch
    without paying twice."""
    spec = write_spec(WIDE, "wide.yaml")
    # Generations take a second, so the first twenty are all out before any finishes.
    config = SandboxConfig(latency=1.0, jitter=0.0, scale=8, fps=4, concurrency=40)
    with start_in_thread(config) as sandbox:
        prices = [r["estimated_usd"] for r in
                  json.loads(invoke("plan", "--json", "--base-url", sandbox.base_url,
                                    spec).stdout)["requests"]]
        total, dearest = sum(prices), max(prices)
        ceiling = round(total * 0.55, 2)
        first = invoke("run", spec, *fast(sandbox), "--concurrency", "20",
                       "--max-cost", ceiling)
        stats = sandbox.stats()
        assert first.exit_code == 3, first.output
        assert stats["peak_in_flight"] >= 20  # the ceiling held with 20 in flight
        assert 0 < stats["billed_usd"] <= ceiling
        assert stats["billed_usd"] + dearest > ceiling  # it stopped only when it had to
        assert "budget: the next submission" in first.stdout
        assert "ceiling of --max-cost" in first.stdout
        counts = _statuses(spec)
        assert counts["done"] == stats["submissions"] and counts["new"] == 40 - counts["done"]
        assert f"spent ${stats['billed_usd']:,.2f}" in first.stdout

        second = invoke("run", spec, *fast(sandbox), "--concurrency", "20",
                        "--max-cost", round(total, 2) + 1)
        stats = sandbox.stats()
        assert second.exit_code == 0, second.output
        assert _statuses(spec) == {"done": 40}
        assert stats["submissions"] == 40 and stats["duplicate_submissions"] == 0
        assert stats["billed_usd"] == pytest.approx(total)


def test_the_smallest_ceiling_holds_and_a_spec_budget_caps_only_its_spec(
    sandbox: RunningSandbox, write_spec: Callable[..., Path], workdir: Path
) -> None:
    """runner.toml's budget is smaller than --max-cost here, so it holds; a spec with its
    own smaller `budget:` stops alone while the other spec finishes."""
    one = write_spec(WIDE.replace("name: wide", "name: one").replace(
        "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]", "[1, 2]"),
        "one.yaml")
    body = catalog(sandbox)
    price = oracle_price(body, "alibaba/wan-2-6-t2v", {"resolution": "720p", "duration": 5})
    dear = oracle_price(body, "alibaba/wan-2-6-t2v", {"resolution": "1080p", "duration": 5})
    assert price is not None and dear is not None
    capped = write_spec(one.read_text().replace("name: one", f"name: two\nbudget: {price}"),
                        "two.yaml")
    (workdir / "runner.toml").write_text(f"budget = {2 * (price + dear) + price}\n")
    result = invoke("run", one, capped, *fast(sandbox), "--max-cost", 1000)
    assert result.exit_code == 3, result.output
    assert "ceiling of budget: in two.yaml" in result.stdout
    assert _statuses(one) == {"done": 4}
    assert _statuses(capped)["done"] == 1
    assert sandbox.stats()["billed_usd"] <= 2 * (price + dear) + price

    (workdir / "runner.toml").write_text(f"budget = {price / 2}\n")
    again = invoke("run", capped, *fast(sandbox))
    assert again.exit_code == 3
    assert "runner.toml" in again.stdout and _statuses(capped)["done"] == 1


def test_an_unpriced_model_is_not_submitted_under_a_budget_unless_allowed(
    sandbox: RunningSandbox, write_spec: Callable[..., Path]
) -> None:
    """video-01 publishes no price: under a budget it is kept back (exit 3) with a line
    that names --allow-unpriced; with it, it is sent and its charge is recorded."""
    spec = write_spec(
        "version: 1\nname: mini\nprovider: aimlapi\nmodel: video-01\n"
        "params:\n  prompt: A lighthouse at dusk\n"
        'output: "mini.mp4"\n', "mini.yaml")
    plan = json.loads(invoke("plan", "--json", "--base-url", sandbox.base_url, spec).stdout)
    assert plan["unpriced"] == 1 and plan["requests"][0]["estimated_usd"] is None
    held = invoke("run", spec, *fast(sandbox), "--max-cost", 100)
    assert held.exit_code == 3 and "--allow-unpriced" in held.stdout
    assert sandbox.stats()["submissions"] == 0
    sent = invoke("run", spec, *fast(sandbox), "--max-cost", 100, "--allow-unpriced")
    assert sent.exit_code == 0, sent.output
    billed = sandbox.stats()["billed_usd"]
    assert billed > 0  # unpublished is not free
    assert json.loads(invoke("status", "--json", spec).stdout)["spent_usd"] == pytest.approx(
        billed)


@pytest.mark.parametrize(
    ("where", "text", "expected"),
    [
        ("spec", "budget: -5\n", "prices.yaml:2:9:"),
        ("toml", "budget = 0\n", "budget must be a positive amount"),
        ("flag", "", "--max-cost"),
    ],
)
def test_a_bad_budget_is_one_clear_error(
    write_spec: Callable[..., Path], workdir: Path, where: str, text: str, expected: str
) -> None:
    """A non-positive budget anywhere is refused before anything is sent (exit 2)."""
    spec = write_spec("version: 1\n" + (text if where == "spec" else "") + "name: prices\n"
                      "provider: sandbox\nmodel: runway/gen4_turbo\n"
                      "params:\n  image_url: https://example.com/a.png\n  prompt: p\n"
                      'output: "a.mp4"\n')
    if where == "toml":
        (workdir / "runner.toml").write_text(text)
    args = ["run", spec] + (["--max-cost", "0"] if where == "flag" else [])
    result = invoke(*args)
    assert result.exit_code == 2
    assert expected in result.output
    assert not (workdir / "outputs").exists()
