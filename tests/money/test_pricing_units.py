"""The two pricing kinds, read `price` per `per` units; budgets that reserve and settle."""

from __future__ import annotations

import pytest

from runner.budget import Budget, Ceilings, run_ceiling
from runner.catalog import get_model
from runner.pricing import estimate

PER_SECOND = {"kind": "fixed", "units": [{"name": "second", "price": 0.3, "per": 1}]}
PER_TEN = {"kind": "fixed", "units": [{"name": "second", "price": 1.0, "per": 10}]}
BY_RESOLUTION = {
    "kind": "variants",
    "dimensions": ["resolution"],
    "variants": [
        {"when": {"resolution": "720p"}, "price": 0.1, "unit": "second", "per": 1},
        {"when": {"resolution": "1080P"}, "price": 0.16, "unit": "second", "per": 1},
    ],
}
MODEL = "alibaba/wan-2-6-t2v"  # resolutions 720p/1080p (default 1080p)


@pytest.mark.parametrize(
    ("block", "body", "usd"),
    [
        (PER_SECOND, {"duration": 10}, 3.0),
        (PER_TEN, {"duration": 5}, 0.5),  # `per` is read with `price`
        (BY_RESOLUTION, {"duration": 10, "resolution": "720p"}, 1.0),
        (BY_RESOLUTION, {"duration": 5, "resolution": "1080p"}, 0.8),  # case of the docs
        (BY_RESOLUTION, {"duration": 5}, 0.8),  # the model's default resolution
        (BY_RESOLUTION, {"duration": 5, "resolution": "4k"}, None),  # no such variant
        ({"kind": "fixed", "units": [{"name": "generation", "price": 0.4, "per": 1}]}, {}, 0.4),
        ({"kind": "fixed", "units": [{"name": "token", "price": 1e-6, "per": 1}]}, {}, None),
        ({"kind": "fixed", "units": [{"name": "second", "price": "free", "per": 1}]}, {}, None),
        ({"kind": "tiered"}, {"duration": 5}, None),  # a kind this runner does not know
    ],
)
def test_estimate_reads_both_kinds(block: dict, body: dict, usd: float | None) -> None:
    """Unknown stays None (never 0): a shape the runner cannot read is not free."""
    found = estimate(block, MODEL, body)
    assert found == (None if usd is None else pytest.approx(usd))


def test_a_request_with_no_length_is_priced_by_its_models_default_or_not_at_all() -> None:
    """Billed by the second: the body's duration, else the model's default, else None."""
    default = get_model(MODEL).expected_duration  # type: ignore[union-attr]
    assert default is not None
    assert estimate(PER_SECOND, MODEL, {}) == pytest.approx(0.3 * default)
    assert estimate(PER_SECOND, "no/such-model", {}) is None


def test_a_budget_reserves_in_flight_and_settles_at_the_charge() -> None:
    """Reservations count against the ceiling until the charge replaces them; a refund
    gives a failed generation back; a retried POST keeps its one reservation."""
    budget = Budget(1.0)
    assert budget.reserve("a", 0.4) is None
    assert budget.reserve("a", 0.4) is None  # the same request again: no second hold
    assert budget.reserve("b", 0.4) is None
    assert budget.committed == pytest.approx(0.8)
    assert budget.reserve("c", 0.4) is not None  # 1.2 > 1.0: stops, and stays stopped
    assert budget.reserve("d", 0.01) == budget.stop
    budget.settle("a", 0.3)  # charged less than estimated
    budget.release("b")  # provably never sent
    assert budget.spent == pytest.approx(0.3) and budget.committed == pytest.approx(0.3)
    budget.refund("a")
    assert budget.spent == 0


def test_unknown_prices_and_the_smallest_ceiling() -> None:
    """Unpriced requests stop a budget unless allowed; a spec budget stops only its spec."""
    assert "--allow-unpriced" in (Budget(5.0).reserve("x", None) or "")
    assert Budget(5.0, allow_unpriced=True).reserve("x", None) is None
    assert Budget(None).reserve("x", None) is None  # no ceiling: nothing is refused
    ceilings = Ceilings(Budget(10.0), {"a.yaml": Budget(1.0, source="budget: in a.yaml")})
    assert ceilings.reserve("a.yaml", "1", 0.8) is None
    assert "budget: in a.yaml" in (ceilings.reserve("a.yaml", "2", 0.8) or "")
    assert ceilings.reserve("b.yaml", "3", 0.8) is None  # another spec goes on
    assert ceilings.run.committed == pytest.approx(1.6)  # the refused one holds nothing
    assert run_ceiling(20.0, 10.0, "runner.toml") == (10.0, "budget in runner.toml")
    assert run_ceiling(5.0, 10.0, "runner.toml") == (5.0, "--max-cost")
    assert run_ceiling(None, None) == (None, "--max-cost")
