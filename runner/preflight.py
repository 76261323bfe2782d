"""What `runner run` settles before the engine starts: specs, store, ceiling, prices, plan.

A run made from a saved plan (`run --plan`) is checked here against it, before anything
is written or sent (`runner.saved_plan`). A run that will ask the user first (a terminal,
no `--yes`) is planned here with prices, so the question can show what it would cost; the
engine then reuses the specs, the store's listing and the price lists instead of reading
them again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from runner.budget import run_ceiling
from runner.config import load_settings
from runner.planning import Plan, build_plan
from runner.pricing import Pricer
from runner.providers import get_provider
from runner.saved_plan import MadeWith, SavedPlan, check_decisions, check_inputs, check_spec_files
from runner.spec import LoadedSpec, load_specs
from runner.store import Store, open_store


@dataclass(frozen=True)
class Prepared:
    """Everything a run needs that is read before it starts."""

    specs: list[LoadedSpec]
    store: Store | None
    inventory: frozenset[str] | None  # the store's listing, when already taken
    pricer: Pricer
    ceiling: float | None  # USD: the run's budget (--max-cost or runner.toml)
    ceiling_source: str
    plan: Plan | None  # built for a saved plan's check or for the question

    @property
    def paying(self) -> list[str]:
        """Ids the plan would pay a real provider for (the sandbox never bills)."""
        if self.plan is None:
            return []
        return [
            e.id for e in self.plan.entries
            if e.paid and e.request is not None
            and get_provider(e.request.provider).base_url is not None
        ]


def preflight(
    made: MadeWith, *, saved: SavedPlan | None, max_cost: float | None, plan_first: bool
) -> Prepared:
    """Load and check what the run will use; raise `StalePlan` when `saved` is stale."""
    if saved is not None:
        check_spec_files(saved)  # before loading: a changed spec is named as such
    paths = [Path(p) for p in made.paths]
    root = Path(made.output_dir)
    specs = load_specs(paths, provider_override="sandbox" if made.sandbox else None)
    store = open_store(made.store) if made.store else None
    settings = load_settings(paths)
    ceiling, source = run_ceiling(
        max_cost, settings.budget, str(settings.path) if settings.path else None
    )
    pricer = Pricer(base_url=made.base_url)
    plan = inventory = None
    if saved is not None or plan_first:
        inventory = store.inventory() if store is not None else None
        if saved is not None:
            check_inputs(saved, specs, root)
        plan = build_plan(
            specs, root, only=made.only, flags=made.flags, inventory=inventory,
            pricer=pricer if plan_first else None,
        )
        if saved is not None:
            check_decisions(saved, plan)
    return Prepared(specs, store, inventory, pricer, ceiling, source, plan)
