"""What `runner run` settles before the engine starts: specs, store, ceiling, prices, plan.

A run made from a saved plan (`run --plan`) is checked here against it, before anything
is written or sent (`runner.saved_plan`). A run that will ask the user first (a terminal,
no `--yes`) is planned here with prices, so the question can show what it would cost; the
engine then reuses the specs, the store's listing and the price lists instead of reading
them again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from runner.budget import run_ceiling
from runner.config import load_settings, store_url
from runner.decide import Flags
from runner.planning import Plan, build_plan
from runner.pricing import Pricer
from runner.providers import get_provider
from runner.saved_plan import (
    MadeWith,
    SavedPlan,
    check_decisions,
    check_inputs,
    check_spec_files,
    check_store,
    write_plan,
)
from runner.spec import LoadedSpec, load_specs
from runner.store import Store, open_store

if TYPE_CHECKING:
    from runner.engine import RunOptions
    from runner.polling import PollSettings


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


def made_with(
    paths: Sequence[Path],
    *,
    sandbox: bool,
    output_dir: Path,
    store: str | None,
    base_url: str | None,
    only: Sequence[str],
    flags: Flags,
) -> MadeWith:
    """Return what a plan or run of `paths` is made with: the options, and the store in
    effect (the flag, `RUNNER_STORE` or runner.toml; none on the sandbox)."""
    return MadeWith(
        tuple(str(p) for p in paths), sandbox, str(output_dir),
        None if sandbox else store_url(store, list(paths)), base_url, tuple(only),
        flags.force, flags.retry_failed, flags.resubmit_unknown, flags.regenerate_lost,
    )


def made_with_saved(saved: SavedPlan, store: str | None) -> MadeWith:
    """Return what a saved plan was made with, the store named again (refused when it is
    not the plan's: the file keeps only the store's digest)."""
    made = saved.made_with
    if not made.sandbox:
        made = replace(made, store=store_url(store, [Path(p) for p in made.paths]))
    check_store(saved, made.store)
    return made


def plan_made_with(made: MadeWith, *, out: Path | None = None) -> Plan:
    """Decide and price every request as `runner plan` does; save it to `out` if given."""
    root = Path(made.output_dir)
    specs, store = _specs_and_store(made)
    plan = build_plan(
        specs, root, only=made.only, flags=made.flags,
        inventory=store.inventory() if store is not None else None,
        pricer=Pricer(base_url=made.base_url),
    )
    if out is not None:
        write_plan(out, plan, made, specs, root)
    return plan


def run_options(
    made: MadeWith,
    prepared: Prepared,
    *,
    concurrency: int,
    poll: PollSettings,
    allow_unpriced: bool,
    priors: bool = False,
) -> RunOptions:
    """Return the engine's options for a run made with `made` and settled by preflight."""
    from runner.engine import RunOptions

    return RunOptions(
        output_dir=Path(made.output_dir),
        base_url=made.base_url,
        concurrency=concurrency,
        force=made.force,
        retry_failed=made.retry_failed,
        resubmit_unknown=made.resubmit_unknown,
        regenerate_lost=made.regenerate_lost,
        store=prepared.store,
        poll=poll,
        max_cost=prepared.ceiling,
        max_cost_source=prepared.ceiling_source,
        allow_unpriced=allow_unpriced,
        priors=priors,
    )


def preflight(
    made: MadeWith, *, saved: SavedPlan | None, max_cost: float | None, plan_first: bool
) -> Prepared:
    """Load and check what the run will use; raise `StalePlan` when `saved` is stale."""
    if saved is not None:
        check_spec_files(saved)  # before loading: a changed spec is named as such
    root = Path(made.output_dir)
    specs, store = _specs_and_store(made)
    settings = load_settings([Path(p) for p in made.paths])
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


def _specs_and_store(made: MadeWith) -> tuple[list[LoadedSpec], Store | None]:
    """Load the specs `made` names (the sandbox swapped in when it says so) and open its
    store (None without one)."""
    paths = [Path(p) for p in made.paths]
    specs = load_specs(paths, provider_override="sandbox" if made.sandbox else None)
    return specs, open_store(made.store) if made.store else None
