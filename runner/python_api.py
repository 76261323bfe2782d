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
import os
import sys
import threading
from collections.abc import Coroutine, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from runner.errors import UsageError
from runner.layout import DEFAULT_ROOT

if TYPE_CHECKING:
    from runner.decide import Flags
    from runner.planning import Plan
    from runner.spec import LoadedSpec
    from runner.store import Store
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
) -> Plan:
    """Decide what a run would do with each request and why, as `runner plan` does.

    Never calls the API. `Plan.entries` holds one decision per request (and orphans),
    `Plan.to_json()` the object `runner plan --json` prints.
    """
    return _complete(
        aplan(
            paths, sandbox=sandbox, output_dir=output_dir, store=store, only=only, force=force,
            retry_failed=retry_failed, resubmit_unknown=resubmit_unknown,
            regenerate_lost=regenerate_lost,
        )
    )


def run(
    paths: Paths,
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
    poll_min: float | None = None,
    poll_max: float | None = None,
    timeout: float = 1800.0,
    reports: PathLike | Iterable[PathLike] = (),
    progress: bool = False,
) -> RunSummary:
    """Submit, poll and download what the specs need, as `runner run` does.

    Resumes whatever an earlier run (or an interrupted call) left; keys come from the
    environment (`AIMLAPI_API_KEY`, `APILAPLAS_API_KEY`) only. `reports` are written as
    `--report` writes them; `progress=True` shows the command's progress on stderr.
    """
    return _complete(
        arun(
            paths, sandbox=sandbox, base_url=base_url, concurrency=concurrency, only=only,
            force=force, retry_failed=retry_failed, resubmit_unknown=resubmit_unknown,
            regenerate_lost=regenerate_lost, output_dir=output_dir, store=store,
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
) -> Plan:
    """Do what `plan` does, awaited (the decisions are made in a worker thread)."""
    from runner.decide import Flags

    flags = Flags(force, retry_failed, resubmit_unknown, regenerate_lost)
    return await asyncio.to_thread(
        _plan, _paths(paths), sandbox, Path(output_dir), store, _only(only), flags
    )


async def arun(
    paths: Paths,
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
    poll_min: float | None = None,
    poll_max: float | None = None,
    timeout: float = 1800.0,
    reports: PathLike | Iterable[PathLike] = (),
    progress: bool = False,
) -> RunSummary:
    """Do what `run` does, awaited in the caller's event loop."""
    from runner import engine
    from runner.clock import SystemClock
    from runner.progress import make_reporter
    from runner.summary import write_reports

    spec_paths = _paths(paths)
    root = Path(output_dir)
    # The command's option types check these bounds before its code runs; here they are.
    _at_least("poll_min", poll_min, 0.01)
    _at_least("poll_max", poll_max, 0.01)
    _at_least("timeout", timeout, 1.0)
    chosen = None if sandbox else await asyncio.to_thread(_open_store, store, spec_paths)
    options = engine.RunOptions(
        output_dir=root,
        base_url=base_url,
        concurrency=concurrency,
        force=force,
        retry_failed=retry_failed,
        resubmit_unknown=resubmit_unknown,
        regenerate_lost=regenerate_lost,
        store=chosen,
        poll=engine.poll_settings(poll_min, poll_max, timeout, sandbox=sandbox),
    )
    reporter = make_reporter(sys.stderr, SystemClock()) if progress else None
    selection = _only(only)
    summary = await engine.arun(
        spec_paths, options, sandbox=sandbox, only=selection, reporter=reporter
    )
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


def _plan(
    paths: list[Path],
    sandbox: bool,
    output_dir: Path,
    store: str | None,
    only: list[str],
    flags: Flags,
) -> Plan:
    """Load the specs and decide every selected request (what `runner plan` prints)."""
    from runner.planning import build_plan
    from runner.spec import load_specs

    specs = load_specs(paths, provider_override="sandbox" if sandbox else None)
    opened = _open_store(store, paths)
    inventory = opened.inventory() if opened is not None else None
    return build_plan(specs, output_dir, only=only, flags=flags, inventory=inventory)


def _open_store(url: str | None, paths: Sequence[Path]) -> Store | None:
    """Open the store `store=`, `RUNNER_STORE` or runner.toml names (None without one)."""
    from runner.config import store_url
    from runner.store import open_store

    chosen = store_url(url, list(paths))
    return open_store(chosen) if chosen else None


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


def _at_least(name: str, value: float | None, low: float) -> None:
    """Raise `UsageError` when a number option is below its bound."""
    if value is not None and not value >= low:  # `not >=` also refuses NaN
        msg = f"{name}={value!r} is below {low:g} — give at least {low:g} (seconds)"
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
