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
    assert ceilings.stops == [ceilings.specs["a.yaml"].stop]  # only the spec's stopped
    assert "budget: in a.yaml" in ceilings.stops[0]
    assert ceilings.reserve("b.yaml", "4", 9.0) is not None  # now the run's stops too
    assert ceilings.stops == [ceilings.run.stop, ceilings.specs["a.yaml"].stop]
    assert run_ceiling(20.0, 10.0, "runner.toml") == (10.0, "budget in runner.toml")
    assert run_ceiling(5.0, 10.0, "runner.toml") == (5.0, "--max-cost")
    assert run_ceiling(None, None) == (None, "--max-cost")


def test_settling_spends_the_charge_else_the_estimate_and_only_once() -> None:
    """The provider's charge replaces the estimate; without one the estimate is spent; a
    second settle of the same request spends nothing more."""
    budget = Budget(10.0)
    assert budget.reserve("a", 2.0) is None and budget.committed == 2.0
    budget.settle("a", 3.0)
    assert (budget.spent, budget.reserved, budget.committed) == (3.0, {}, 3.0)
    budget.settle("a", 3.0)
    assert budget.spent == 3.0
    assert budget.reserve("b", 1.5) is None
    budget.settle("b", None)
    assert (budget.spent, budget.charged) == (4.5, {"a": 3.0, "b": 1.5})


def test_releases_and_refunds_give_back_exactly_what_was_taken() -> None:
    """A POST that made nothing frees its reservation; a failed generation's charge comes
    off once; either for a request never taken changes nothing."""
    budget = Budget(10.0)
    budget.reserve("a", 4.0)
    budget.release("a")
    budget.release("never")
    assert budget.committed == 0.0
    budget.reserve("b", 2.0)
    budget.settle("b", 2.5)
    budget.refund("b")
    budget.refund("b")
    budget.refund("never")
    assert (budget.spent, budget.committed) == (0.0, 0.0)


def test_without_a_ceiling_estimates_are_still_counted() -> None:
    """No ceiling refuses nothing, but what is in flight is counted at its estimate (an
    unpriced request at nothing)."""
    budget = Budget(None)
    assert budget.reserve("a", 2.5) is None and budget.reserve("b", None) is None
    assert budget.committed == 2.5


def test_an_unpriced_request_allowed_reserves_nothing_and_a_full_fit_is_sent() -> None:
    """--allow-unpriced sends an unpriced request reserving $0; estimates that fill the
    ceiling exactly still fit; one cent more stops submitting, naming the flag."""
    budget = Budget(1.0, allow_unpriced=True)
    assert budget.reserve("free", None) is None
    assert budget.reserve("a", 0.5) is None and budget.reserve("b", 0.5) is None
    assert budget.committed == 1.0
    refused = budget.reserve("c", 0.01)
    assert refused is not None and refused.startswith("budget: the next submission (est. $0.01)")
    unpriced = Budget(1.0).reserve("x", None)
    assert unpriced is not None
    assert unpriced.endswith("the rest stay new (--allow-unpriced sends such requests anyway)")


def test_ceilings_move_every_applicable_budget_together() -> None:
    """A spec's budget and the run's take, settle, release and refund together; a refusal
    by either leaves neither holding a reservation."""
    run, own = Budget(10.0), Budget(3.0)
    ceilings = Ceilings(run, {"a.yaml": own})
    assert ceilings.reserve("a.yaml", "r", 2.0) is None
    ceilings.settle("a.yaml", "r", 2.5)
    assert run.spent == own.spent == 2.5
    ceilings.refund("a.yaml", "r")
    assert run.spent == own.spent == 0.0
    assert ceilings.reserve("a.yaml", "s", 1.0) is None
    ceilings.release("a.yaml", "s")
    assert run.committed == own.committed == 0.0
    tight = Ceilings(Budget(1.0), {"a.yaml": own})
    assert tight.reserve("a.yaml", "t", 2.0) is not None  # own fits, the run's does not
    assert own.committed == 0.0


def test_the_run_ceiling_names_what_set_it() -> None:
    """The smaller of --max-cost and the project budget wins; a tie is the flag's; an
    unnamed project config is 'the project budget'."""
    assert run_ceiling(5.0, 5.0, "runner.toml") == (5.0, "--max-cost")
    assert run_ceiling(5.0, 4.0, "runner.toml") == (4.0, "budget in runner.toml")
    assert run_ceiling(None, 3.0) == (3.0, "the project budget")


def test_a_second_submission_of_a_settled_request_keeps_no_reservation() -> None:
    """A request settled once and submitted again (found absent, resubmitted) is not
    charged twice, and its new reservation goes once it settles; a settle without any
    reservation spends only the charge."""
    budget = Budget(10.0)
    budget.reserve("a", 2.0)
    budget.settle("a", 2.0)
    budget.reserve("a", 2.0)
    budget.settle("a", 2.0)
    assert (budget.spent, budget.committed) == (2.0, 2.0)
    budget.settle("never-reserved", None)
    budget.settle("also-never", 1.5)
    assert budget.spent == 3.5 and budget.charged["never-reserved"] == 0.0
