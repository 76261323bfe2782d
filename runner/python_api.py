"""The Python API: `runner.validate`, `runner.plan` and `runner.run`, and awaitable twins.

Each function does what the command of the same name does and takes its options as
keyword arguments of the same names (`runner.run(["specs/"], sandbox=True,
concurrency=8)` is `runner run specs/ --sandbox --concurrency 8`). It returns the record
the command prints (`LoadedSpec`s, a `Plan`, a `RunSummary`) and raises the
`runner.errors` exception the command turns into its exit code, never `SystemExit`: a
`SpecError` carries every problem, and each error's `exit_code` is the command's. A run
whose requests failed is not an exception: its summary's `exit_code` is 1, as the
command's would be.

The plain functions work from a script and from code that already runs an event loop
(a notebook cell, an async web handler), where `asyncio.run` is refused: there they run
the work on a new event loop in a worker thread and wait for it. Async code should await
`avalidate` / `aplan` / `arun` instead, which run in the caller's loop and move the
blocking parts (reading specs and images, the manifests) to worker threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import sys
import threading
from collections.abc import Coroutine, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from runner.errors import UsageError
from runner.layout import DEFAULT_ROOT

if TYPE_CHECKING:
    from runner.planning import Plan
    from runner.spec import LoadedSpec
    from runner.summary import RunSummary

__all__ = ["aplan", "arun", "avalidate", "plan", "run", "validate"]

PathLike = str | os.PathLike[str]
Paths = PathLike | Iterable[PathLike]  # one spec file or folder, or several
Only = str | Iterable[str]  # KEY=VALUE, or several (ANDed across keys, as --only)

T = TypeVar("T")


# ------------------------------------------------------------------------ plain calls


def validate(paths: Paths) -> list[LoadedSpec]:
    """Check specs as `runner validate` does; return them loaded, or raise `SpecError`.

    Also reads the lock file beside each spec, so a conflicted one is an error here too.
    Nothing is written and no API is called.
    """
    return _complete(avalidate(paths))


def plan(
    paths: Paths,
    *,
    sandbox: bool = False,
    output_dir: PathLike = DEFAULT_ROOT,
    store: str | None = None,
    only: Only = (),
    force: bool = False,
    retry_failed: bool = False,
    resubmit_unknown: bool = False,
    regenerate_lost: bool = False,
    base_url: str | None = None,
    out: PathLike | None = None,
) -> Plan:
    """Decide what a run would do with each request and why, as `runner plan` does.

    Submits nothing; reads the provider's price list (cached, `RUNNER_PRICES=offline`
    reads none) to price each submission. `Plan.entries` holds one decision per request
    (and orphans), `Plan.to_json()` the object `runner plan --json` prints; `out=` saves
    the plan for `runner.run(plan=...)`.
    """
    return _complete(
        aplan(
            paths, sandbox=sandbox, output_dir=output_dir, store=store, only=only, force=force,
            retry_failed=retry_failed, resubmit_unknown=resubmit_unknown,
            regenerate_lost=regenerate_lost, base_url=base_url, out=out,
        )
    )


def run(
    paths: Paths = (),
    *,
    sandbox: bool = False,
    base_url: str | None = None,
    concurrency: int = 4,
    only: Only = (),
    force: bool = False,
    retry_failed: bool = False,
    resubmit_unknown: bool = False,
    regenerate_lost: bool = False,
    output_dir: PathLike = DEFAULT_ROOT,
    store: str | None = None,
    max_cost: float | None = None,
    allow_unpriced: bool = False,
    plan: PathLike | None = None,
    poll_min: float | None = None,
    poll_max: float | None = None,
    timeout: float = 1800.0,
    reports: PathLike | Iterable[PathLike] = (),
    progress: bool = False,
) -> RunSummary:
    """Submit, poll and download what the specs need, as `runner run --yes` does.

    Resumes whatever an earlier run (or an interrupted call) left; keys come from the
    environment (`AIMLAPI_API_KEY`, `APILAPLAS_API_KEY`) only. Budgets hold as they do
    for the command: `max_cost=` (USD), `budget` in runner.toml and in each spec; a run
    they stop has `exit_code` 3. `plan=` runs a plan saved by `plan(out=...)` exactly
    (no paths or decision options with it). It never asks: calling it is the approval.
    `reports` are written as `--report` writes them; `progress=True` shows the
    command's progress on stderr.
    """
    return _complete(
        arun(
            paths, sandbox=sandbox, base_url=base_url, concurrency=concurrency, only=only,
            force=force, retry_failed=retry_failed, resubmit_unknown=resubmit_unknown,
            regenerate_lost=regenerate_lost, output_dir=output_dir, store=store,
            max_cost=max_cost, allow_unpriced=allow_unpriced, plan=plan,
            poll_min=poll_min, poll_max=poll_max, timeout=timeout, reports=reports,
            progress=progress,
        )
    )


# ------------------------------------------------------------------------ awaitables


async def avalidate(paths: Paths) -> list[LoadedSpec]:
    """Do what `validate` does, awaited (the checks run in a worker thread)."""
    return await asyncio.to_thread(_validate, _paths(paths))


async def aplan(
    paths: Paths,
    *,
    sandbox: bool = False,
    output_dir: PathLike = DEFAULT_ROOT,
    store: str | None = None,
    only: Only = (),
    force: bool = False,
    retry_failed: bool = False,
    resubmit_unknown: bool = False,
    regenerate_lost: bool = False,
    base_url: str | None = None,
    out: PathLike | None = None,
) -> Plan:
    """Do what `plan` does, awaited (the decisions are made in a worker thread)."""
    from runner.decide import Flags
    from runner.preflight import made_with, plan_made_with

    flags = Flags(force, retry_failed, resubmit_unknown, regenerate_lost)

    def work() -> Plan:
        made = made_with(
            _paths(paths), sandbox=sandbox, output_dir=Path(output_dir), store=store,
            base_url=base_url, only=_only(only), flags=flags,
        )
        return plan_made_with(made, out=None if out is None else Path(out))

    return await asyncio.to_thread(work)


async def arun(
    paths: Paths = (),
    *,
    sandbox: bool = False,
    base_url: str | None = None,
    concurrency: int = 4,
    only: Only = (),
    force: bool = False,
    retry_failed: bool = False,
    resubmit_unknown: bool = False,
    regenerate_lost: bool = False,
    output_dir: PathLike = DEFAULT_ROOT,
    store: str | None = None,
    max_cost: float | None = None,
    allow_unpriced: bool = False,
    plan: PathLike | None = None,
    poll_min: float | None = None,
    poll_max: float | None = None,
    timeout: float = 1800.0,
    reports: PathLike | Iterable[PathLike] = (),
    progress: bool = False,
) -> RunSummary:
    """Do what `run` does, awaited in the caller's event loop."""
    from runner import engine
    from runner.clock import SystemClock
    from runner.decide import Flags
    from runner.preflight import made_with, made_with_saved, preflight, run_options
    from runner.progress import make_reporter
    from runner.saved_plan import read_plan
    from runner.summary import write_reports

    # The command's option types check these bounds before its code runs; here they are.
    _at_least("poll_min", poll_min, 0.01)
    _at_least("poll_max", poll_max, 0.01)
    _at_least("timeout", timeout, 1.0)
    _at_least("max_cost", max_cost, 0.0, unit="USD")
    given = {"sandbox": sandbox, "base_url": base_url, "only": _only(only), "force": force,
             "retry_failed": retry_failed, "resubmit_unknown": resubmit_unknown,
             "regenerate_lost": regenerate_lost, "output_dir": Path(output_dir)}
    if plan is not None:
        _refuse_plan_conflicts(paths, given)
        saved = await asyncio.to_thread(read_plan, Path(plan))
        made = await asyncio.to_thread(made_with_saved, saved, store)
    else:
        saved = None
        made = await asyncio.to_thread(
            made_with, _paths(paths), sandbox=sandbox, output_dir=Path(output_dir),
            store=store, base_url=base_url, only=_only(only),
            flags=Flags(force, retry_failed, resubmit_unknown, regenerate_lost),
        )
    prepared = await asyncio.to_thread(
        preflight, made, saved=saved, max_cost=max_cost, plan_first=False
    )
    options = run_options(
        made, prepared, concurrency=concurrency, allow_unpriced=allow_unpriced,
        poll=engine.poll_settings(poll_min, poll_max, timeout, sandbox=made.sandbox),
        priors=True,
    )
    reporter = make_reporter(sys.stderr, SystemClock()) if progress else None
    summary = await engine.arun(
        [Path(p) for p in made.paths], options, sandbox=made.sandbox, only=made.only,
        reporter=reporter, loaded=prepared.specs, pricer=prepared.pricer,
        inventory=prepared.inventory,
    )
    root = Path(made.output_dir)
    await asyncio.to_thread(write_reports, summary, _paths(reports, empty_ok=True), root)
    return summary


# ------------------------------------------------------------------------ the work


def _validate(paths: list[Path]) -> list[LoadedSpec]:
    """Load and check the specs at `paths` and read each one's lock file."""
    from runner.layout import lockfile_of
    from runner.lockfile import read_lock
    from runner.spec import load_specs

    specs = load_specs(paths)
    for spec in specs:
        read_lock(lockfile_of(spec.path))  # a conflicted or hand-broken lock is one clear error
    return specs


def _paths(given: Paths, *, empty_ok: bool = False) -> list[Path]:
    """Return `given` (one path or several) as a list of paths."""
    if isinstance(given, str | os.PathLike):
        return [Path(given)]
    paths = [Path(p) for p in given]
    if not paths and not empty_ok:
        msg = "no spec paths given — pass a spec file or folder, e.g. runner.validate(['specs/'])"
        raise UsageError(msg)
    return paths


def _only(only: Only) -> list[str]:
    """Return `only=` (one KEY=VALUE or several) as a list."""
    return [only] if isinstance(only, str) else list(only)


def _at_least(name: str, value: float | None, low: float, *, unit: str = "seconds") -> None:
    """Raise `UsageError` when a number option is below its bound."""
    if value is not None and not value >= low:  # `not >=` also refuses NaN
        msg = f"{name}={value!r} is below {low:g} — give at least {low:g} ({unit})"
        raise UsageError(msg)


def _refuse_plan_conflicts(paths: Paths, given: dict[str, Any]) -> None:
    """Refuse `plan=` with paths or a decision option: the saved plan fixes them."""
    if _paths(paths, empty_ok=True):
        msg = "plan= runs the specs the plan was made for — give no spec paths with it"
        raise UsageError(msg)
    # The defaults are arun's own, so this check cannot drift from its signature.
    defaults = inspect.signature(arun).parameters
    for name, value in given.items():
        default = defaults[name].default
        if name == "output_dir":
            default = Path(default)
        elif name == "only":
            default = _only(default)
        if value != default:
            msg = f"plan= runs with the options the plan was made with — drop {name}="
            raise UsageError(msg)


# ------------------------------------------------------------------------ event loops


def _complete(work: Coroutine[Any, Any, T]) -> T:
    """Run `work` to its end: on a new event loop, or in a worker thread with its own
    loop when this thread already runs one (where `asyncio.run` is refused)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(work)
    return _in_worker_thread(work)


def _in_worker_thread(work: Coroutine[Any, Any, T]) -> T:
    """Run `work` on a new event loop in a worker thread; wait for it and return its result.

    An interrupt (Ctrl-C, a notebook's stop button) while waiting cancels the work, as
    `asyncio.run` would, and waits for it to wind down, so manifests are saved and the
    embedded sandbox is stopped before `KeyboardInterrupt` reaches the caller.
    """
    started, finished = threading.Event(), threading.Event()
    held: dict[str, Any] = {}

    async def main() -> T:
        held["loop"], held["task"] = asyncio.get_running_loop(), asyncio.current_task()
        started.set()
        return await work

    def target() -> None:
        try:
            held["result"] = asyncio.run(main())
        except BaseException as exc:  # handed to the waiting thread, which re-raises it
            held["error"] = exc
        finally:
            started.set()
            finished.set()

    thread = threading.Thread(target=target, name="runner-api")
    thread.start()
    # Wait on an event, not in `thread.join()`: on Python 3.11 an interrupted join marks
    # the thread as ended while it still runs, and a second join would not wait.
    try:
        finished.wait()
    except KeyboardInterrupt:
        started.wait()
        loop, task = held.get("loop"), held.get("task")
        if loop is not None and task is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed: the work had ended
                loop.call_soon_threadsafe(task.cancel)
        finished.wait()
        raise
    thread.join()
    if "error" in held:
        error: BaseException = held["error"]
        raise error
    result: T = held["result"]
    return result
