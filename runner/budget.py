"""A run's spending ceiling: no submission is sent that could take the run past it.

Before each submission the runner reserves its estimated cost (`runner.pricing`); the
reservation counts against the ceiling while the POST is out and the generation runs,
together with everything this run has already been charged. A submission that does not
fit is not sent, and none after it: the run stops submitting with one line, lets what was
submitted finish and download, and leaves the rest `new` for the next run. A request whose
price is unknown is not submitted under a budget unless the user allows it
(`--allow-unpriced`, then it reserves nothing). What the provider charges replaces the
estimate once the create answers; a failed generation is refunded (it is not billed).

The estimate is the provider's published price for the request; a provider that then
charges more than it published can take the run past the ceiling by that difference.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass
class Budget:
    """What this run may spend, has spent, and has promised to submissions in flight."""

    limit: float | None  # USD; None: no ceiling (costs are still counted)
    allow_unpriced: bool = False
    source: str = "--max-cost"  # what set the ceiling, for the line that says it was hit
    spent: float = 0.0  # charged for this run's accepted submissions (refunds taken off)
    reserved: dict[str, float] = field(default_factory=dict)  # request id -> estimate
    charged: dict[str, float] = field(default_factory=dict)  # request id -> charge
    stop: str | None = None  # why submitting stopped, once it has

    @property
    def committed(self) -> float:
        """Spent plus reserved: what the ceiling is measured against."""
        return self.spent + sum(self.reserved.values())

    def reserve(self, rid: str, estimate: float | None) -> str | None:
        """Reserve a submission's estimate; return why it may not be sent, or None."""
        if self.stop is not None:
            return self.stop
        if rid in self.reserved:
            return None  # a retry of a POST that made nothing keeps its reservation
        if self.limit is None:
            self.reserved[rid] = estimate or 0.0
            return None
        if estimate is None:
            if self.allow_unpriced:
                self.reserved[rid] = 0.0
                return None
            self.stop = (
                f"budget: the price of the next submission is unknown, so it cannot be kept "
                f"under the ${self.limit:,.2f} ceiling ({self.source}) — submitting stopped; "
                "the rest stay new (--allow-unpriced sends such requests anyway)"
            )
            return self.stop
        if self.committed + estimate > self.limit + 1e-9:
            self.stop = (
                f"budget: the next submission (est. ${estimate:,.2f}) would pass the "
                f"${self.limit:,.2f} ceiling of {self.source} (${self.committed:,.2f} spent "
                f"or in flight) — submitting stopped; the rest stay new: run again with a "
                f"larger {self.source}"
            )
            return self.stop
        self.reserved[rid] = estimate
        return None

    def settle(self, rid: str, charged: float | None) -> None:
        """A submission was accepted: its charge (else its estimate) is spent (once)."""
        if rid in self.charged:
            self.reserved.pop(rid, None)
            return
        estimate = self.reserved.pop(rid, 0.0)
        amount = charged if charged is not None else estimate
        self.charged[rid] = amount
        self.spent += amount

    def release(self, rid: str) -> None:
        """A submission provably made nothing: its reservation goes back."""
        self.reserved.pop(rid, None)

    def refund(self, rid: str) -> None:
        """A generation failed: it is not billed, so its charge comes off."""
        self.spent -= self.charged.pop(rid, 0.0)


@dataclass
class Ceilings:
    """The run's budget and each spec's own: a submission must fit every one that applies.

    The run's ceiling is the smaller of `--max-cost` and `budget` in runner.toml; a spec's
    `budget:` caps that spec's submissions only (when it stops, the other specs go on).
    """

    run: Budget = field(default_factory=lambda: Budget(None))
    specs: Mapping[str, Budget] = field(default_factory=dict)  # spec display -> its budget

    def _of(self, spec: str) -> tuple[Budget, ...]:
        own = self.specs.get(spec)
        return (self.run,) if own is None else (own, self.run)

    def reserve(self, spec: str, rid: str, estimate: float | None) -> str | None:
        """Reserve in every applicable budget, or in none; return why not, or None."""
        taken: list[Budget] = []
        for budget in self._of(spec):
            refused = budget.reserve(rid, estimate)
            if refused is not None:
                for other in taken:
                    other.release(rid)
                return refused
            taken.append(budget)
        return None

    def settle(self, spec: str, rid: str, charged: float | None) -> None:
        """Record an accepted submission's charge in every applicable budget."""
        for budget in self._of(spec):
            budget.settle(rid, charged)

    def release(self, spec: str, rid: str) -> None:
        """Give a reservation back everywhere (the POST provably made nothing)."""
        for budget in self._of(spec):
            budget.release(rid)

    def refund(self, spec: str, rid: str) -> None:
        """Take a failed generation's charge off everywhere (it is not billed)."""
        for budget in self._of(spec):
            budget.refund(rid)

    @property
    def stops(self) -> list[str]:
        """Why submitting stopped, for every budget that stopped it."""
        return [b.stop for b in (self.run, *self.specs.values()) if b.stop is not None]


def run_ceiling(
    max_cost: float | None, config_budget: float | None, config_path: str | None = None
) -> tuple[float | None, str]:
    """Return the run's ceiling (the smaller of the flag and the project config) and its
    source, named as the user set it."""
    if config_budget is not None and (max_cost is None or config_budget < max_cost):
        where = f"budget in {config_path}" if config_path else "the project budget"
        return config_budget, where
    return max_cost, "--max-cost"
