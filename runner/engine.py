"""`runner run`: decide what each request needs, then submit, poll and download.

A run resolves every provider's base URL and key (a missing key stops it before any
I/O), opens and locks every spec's manifest, and lets `runner.resume` decide one action
per selected request. Workers then take those actions in order (resumed generations
first); `--concurrency` bounds how many generations this run has in flight at once (a
paid API's concurrency tier: Runway's start at 1–20 per model) through generation
slots (`runner.slots`), each given back when its generation ends, so a video downloads
while the next request is already generating. The HTTP pools are sized above it. A
failed request never stops the others; 401/403 and a storage error (full disk,
unwritable folder) stop the whole run at once, letting POSTs already sent hear back.
At the end each spec's gallery is rebuilt (`write_gallery`).

Before the first submission the price lists of the providers it goes to are fetched
(`runner.pricing`): every submission reserves its estimate against the run's ceilings
(`runner.budget`: `--max-cost`, `budget` in runner.toml, each spec's `budget:`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import httpx

from runner import priors
from runner.api import ApiClient, download_client
from runner.budget import Budget, Ceilings
from runner.clock import Clock, SystemClock
from runner.decide import Action, Decision, Flags, decide
from runner.errors import AuthError, StorageError, UsageError
from runner.layout import DEFAULT_ROOT, lockfile_of, spec_folder
from runner.lifecycle import (
    Outcome,
    Result,
    Shared,
    SpecRun,
    collect,
    reconcile,
    replace_paid,
    restore,
    submit,
)
from runner.lockfile import LockWriter, read_lock
from runner.loopback import is_loopback_url
from runner.manifest import Manifest, parse_ts, read_state
from runner.observe import observe
from runner.ownership import check_owner, claim
from runner.polling import PollScheduler, PollSettings
from runner.pricing import Pricer
from runner.progress import Reporter, SilentReporter, Tally
from runner.providers import api_key, get_provider, has_usage_logs
from runner.reconcile import Ledger
from runner.report import charged_usd
from runner.request import LocalImage, Request
from runner.resume import Work, decisions, prepare
from runner.retry import RetryPolicy
from runner.sidecar import render_sidecar, sidecar_for
from runner.slots import Slot, Slots
from runner.store import Store, StoreError
from runner.summary import RequestReport, RunSummary, SpecOutcome

SANDBOX = "sandbox"

DEFAULT_CONCURRENCY = 4  # generations in flight; a modest tier for a paid API
WORKERS_PER_SLOT = 2  # per generation slot: one generating, one downloading the last video
REAL_POLL = PollSettings(floor=5.0, ceiling=60.0)  # Runway asks for >= 5 s between polls
SANDBOX_POLL = PollSettings(floor=0.2, ceiling=5.0)  # the emulator answers in seconds


def poll_settings(
    floor: float | None, ceiling: float | None, timeout: float, *, sandbox: bool
) -> PollSettings:
    """Return the poll bounds from the flags, filling gaps with the provider's defaults."""
    base = SANDBOX_POLL if sandbox else REAL_POLL
    floor = base.floor if floor is None else floor
    ceiling = max(base.ceiling, floor) if ceiling is None else ceiling
    if ceiling < floor:
        msg = f"--poll-max ({ceiling:g} s) is below --poll-min ({floor:g} s) — raise --poll-max"
        raise UsageError(msg)
    return PollSettings(floor=floor, ceiling=ceiling, timeout=timeout)


class LoadedSpecLike(Protocol):
    """What the engine needs from a loaded spec (runner.spec.LoadedSpec)."""

    @property
    def name(self) -> str: ...

    @property
    def display(self) -> str: ...

    @property
    def requests(self) -> Sequence[Request]: ...

    @property
    def images(self) -> Mapping[str, LocalImage]: ...

    @property
    def budget(self) -> float | None: ...


@dataclass(frozen=True, slots=True)
class RunOptions:
    """Everything `runner run` can be told."""

    output_dir: Path = DEFAULT_ROOT  # the root: sandbox specs go to <root>/_sandbox/<name>/
    base_url: str | None = None  # point every provider at this server
    concurrency: int = DEFAULT_CONCURRENCY
    force: bool = False  # regenerate the selection (pending generations are still polled)
    retry_failed: bool = False
    resubmit_unknown: bool = False  # the user accepts possibly paying twice
    regenerate_lost: bool = False  # pay again for generations the provider lost
    store: Store | None = None  # where verified videos are kept and restored from
    pull: bool = False  # `runner pull`: only what needs no API call (restore from the store)
    poll: PollSettings | None = None  # None: REAL_POLL, or SANDBOX_POLL for the sandbox
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    download_attempts: int = 3
    url_refreshes: int = 3
    seed: int | None = None  # seeds jitter, for reproducible tests
    max_cost: float | None = None  # USD: the run's ceiling (runner.budget)
    max_cost_source: str = "--max-cost"  # what set it (the flag or runner.toml)
    allow_unpriced: bool = False  # under a ceiling, submit requests of unknown price
    # Start the poll schedule from the provider's metrics and earlier runs' times, and
    # record this run's (runner.priors). The CLI turns it on; tests stay hermetic.
    priors: bool = False

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            msg = f"--concurrency must be at least 1, got {self.concurrency}"
            raise UsageError(msg)
        if self.max_cost is not None and not self.max_cost > 0:
            msg = f"--max-cost must be a positive amount in US dollars, got {self.max_cost}"
            raise UsageError(msg)


@dataclass(frozen=True, slots=True)
class Transports:
    """Test seams: httpx transports for the API and for downloads."""

    api: httpx.AsyncBaseTransport | None = None
    download: httpx.AsyncBaseTransport | None = None


@dataclass
class _Counter:
    """The live tally, pushed to the reporter on every change."""

    reporter: Reporter
    tally: Tally

    def change(self, **delta: int) -> None:
        values = {name: getattr(self.tally, name) + d for name, d in delta.items()}
        self.tally = replace(self.tally, **values)
        self.reporter.update(self.tally)


async def execute(
    specs: Sequence[tuple[LoadedSpecLike, Sequence[Request]]],
    options: RunOptions,
    *,
    clock: Clock | None = None,
    reporter: Reporter | None = None,
    environ: Mapping[str, str] | None = None,
    transports: Transports = Transports(),
    sandbox_url: str | None = None,
    folders: Mapping[str, Path] | None = None,
    pricer: Pricer | None = None,
    inventory: frozenset[str] | None = None,
) -> RunSummary:
    """Run the selected requests of each spec to the end; return what happened.

    `sandbox_url` is where the embedded sandbox listens when a request's provider is
    `sandbox` and no `--base-url` was given (the caller starts it). `folders` names a
    spec's folder outright (reproductions) instead of `runner.layout.spec_folder`; such
    runs write no lock file.
    """
    clock = clock or SystemClock()
    reporter = _Noting(reporter or SilentReporter())
    started = clock.monotonic()
    started_at = clock.wall()
    rng = random.Random(options.seed)
    if options.base_url is not None:
        check_base_url(options.base_url)
    runs: list[tuple[SpecRun, Sequence[Request]]] = []
    unstored: list[str] = []
    store = options.store
    if store is not None and inventory is None:
        inventory = await asyncio.to_thread(store.inventory)
    elif store is None:
        inventory = None
    flags = Flags(
        options.force,
        options.retry_failed,
        options.resubmit_unknown,
        options.regenerate_lost,
        materialize=options.pull,
    )
    # A missing key stops the run before anything is written, if the work needs it: then
    # decide once from what is on disk (read only) whether it does.
    if _missing_keys(specs, environ):
        preview = [
            item
            for spec, requests in specs
            for item in _preview(spec, requests, options, folders, flags, inventory)
        ]
        needed = [w.request for w in preview if w.decision.calls_api]
        _endpoints(needed, options, sandbox_url, environ)
    ceilings = _ceilings(specs, options)
    try:
        for spec, requests in specs:
            runs.append((_open(spec, requests, options, clock, folders), requests))
        work = [
            w
            for spec_run, requests in runs
            for w in decisions(
                spec_run, requests, flags, inventory=inventory,
                has_usage_logs=has_usage_logs, pull=options.pull,
            )
        ]
        needs_api = [w.request for w in work if w.decision.calls_api]
        endpoints = _endpoints(needs_api, options, sandbox_url, environ)  # before any write
        prepare(work)
        if store is not None and inventory is not None:
            unstored += await _backfill(work, inventory)
        pricer = pricer or Pricer(base_url=options.base_url)
        paying = {w.request.provider for w in work if w.action in _MAY_PAY}
        await pricer.prefetch(paying, transports.api)
        money = _Money(ceilings, pricer)
        reports, more_unstored = await _run_work(
            work, endpoints, options, clock, reporter, rng, transports, money
        )
        unstored += more_unstored
        for spec_run, _ in runs:
            await asyncio.to_thread(write_gallery, spec_run.folder)
    finally:
        try:
            for spec_run, _ in runs:
                if spec_run.lock is not None:
                    spec_run.lock.flush(final=True)
        finally:
            for spec_run, _ in runs:
                spec_run.manifest.close()
    for line in unstored:
        reporter.note(f"not in the store yet: {line}")
    outcomes = tuple(
        SpecOutcome(spec_run.display, spec_run.folder, tuple(requests))
        for spec_run, requests in runs
    )
    elapsed = clock.monotonic() - started
    return RunSummary(
        tuple(reports), outcomes, started_at, elapsed, tuple(reporter.notes), tuple(unstored),
        budget=ceilings.run.limit, budget_stops=tuple(ceilings.stops),
    )


# Actions that may POST a paid generation (a reconcile resubmits what provably never ran).
_MAY_PAY = frozenset({Action.SUBMIT, Action.RECONCILE})


@dataclass(frozen=True, slots=True)
class _Money:
    """The run's ceilings and the prices its submissions are estimated from."""

    ceilings: Ceilings
    pricer: Pricer


def _ceilings(
    specs: Sequence[tuple[LoadedSpecLike, Sequence[Request]]], options: RunOptions
) -> Ceilings:
    """Build the run's budget and each spec's own from the options and the specs."""
    run = Budget(options.max_cost, options.allow_unpriced, options.max_cost_source)
    own = {
        spec.display: Budget(spec.budget, options.allow_unpriced, f"budget: in {spec.display}")
        for spec, _ in specs
        if spec.budget is not None
    }
    return Ceilings(run, own)


def _missing_keys(
    specs: Sequence[tuple[LoadedSpecLike, Sequence[Request]]], environ: Mapping[str, str] | None
) -> bool:
    """Return whether a provider of the selection has no API key in the environment."""
    for name in {r.provider for _, requests in specs for r in requests}:
        try:
            api_key(get_provider(name), dict(environ) if environ is not None else None)
        except UsageError:
            return True
    return False


def _folder(
    spec: LoadedSpecLike,
    requests: Sequence[Request],
    options: RunOptions,
    folders: Mapping[str, Path] | None,
) -> tuple[Path, Path | None]:
    """Return a spec's folder and its lock file (None for sandbox and reproduction runs)."""
    sandbox = any(r.provider == SANDBOX for r in (spec.requests or requests))
    given = (folders or {}).get(spec.name)
    folder = given or spec_folder(options.output_dir, spec.name, sandbox=sandbox)
    spec_path = getattr(spec, "path", None)
    if sandbox or given is not None or not isinstance(spec_path, Path):
        return folder, None
    return folder, lockfile_of(spec_path)


def _preview(
    spec: LoadedSpecLike,
    requests: Sequence[Request],
    options: RunOptions,
    folders: Mapping[str, Path] | None,
    flags: Flags,
    inventory: frozenset[str] | None,
) -> list[Decided]:
    """Decide one spec's requests from the files as they are, writing nothing."""
    folder, lockfile = _folder(spec, requests, options, folders)
    locked = read_lock(lockfile) if lockfile is not None else {}
    seen = observe(
        requests, folder, read_state(folder), locked,
        inventory=inventory, has_usage_logs=has_usage_logs,
    )
    return [Decided(r, decide(seen.facts[r.id], flags)) for r in requests]


@dataclass(frozen=True, slots=True)
class Decided:
    """A request and its decision (the read-only preview of a run)."""

    request: Request
    decision: Decision


def _open(
    spec: LoadedSpecLike,
    requests: Sequence[Request],
    options: RunOptions,
    clock: Clock,
    folders: Mapping[str, Path] | None,
) -> SpecRun:
    """Lock one spec's folder, open its manifest and (for paid providers) its lock file."""
    folder, lockfile = _folder(spec, requests, options, folders)
    found = getattr(spec, "path", None)
    spec_path = found if isinstance(found, Path) and spec.name not in (folders or {}) else None
    if spec_path is not None:
        check_owner(folder, spec_path, spec.display)
    refuse_escaping_outputs(folder, requests, spec.display)
    lock = LockWriter(lockfile) if lockfile is not None else None
    manifest = Manifest.open(folder, clock=clock)
    if spec_path is not None:
        claim(folder, spec_path)  # under the folder's run lock
    if lock is not None:
        for state in manifest.state.values():  # a crash may have left the lock behind
            lock.put(state, catch_up=True)
        manifest.observe(_follow(manifest, lock))
    store = None if lockfile is None else options.store  # the store keeps paid videos only
    return SpecRun(spec.name, spec.display, folder, manifest, spec.images, lock=lock, store=store)


def _follow(manifest: Manifest, lock: LockWriter) -> Callable[[set[str]], None]:
    """Return a manifest observer that keeps the lock file up to date."""

    def follow(ids: set[str]) -> None:
        for rid in ids:
            state = manifest.state.get(rid)
            if state is not None:
                lock.put(state)
            else:
                lock.forget(rid)  # not sent after all (a refused POST), or --force
        lock.maybe_flush()

    return follow


async def _backfill(work: Sequence[Work], inventory: frozenset[str]) -> list[str]:
    """Give the store every verified video of the selection it does not hold yet."""
    refused: list[str] = []
    for item in work:
        state = item.spec.manifest.state.get(item.request.id)
        if state is None or state.status != "done" or state.sha256 in inventory:
            continue
        if state.sha256 is None or item.decision.action != Action.SKIP:
            continue
        video = item.spec.folder / item.request.output
        if not video.is_file():
            continue
        store = item.spec.store
        assert store is not None
        try:
            await asyncio.to_thread(
                store.put, video, state.sha256, render_sidecar(sidecar_for(state))
            )
        except StoreError as exc:
            refused.append(f"{video}: {exc}")
    return refused


def refuse_escaping_outputs(folder: Path, requests: Sequence[Request], display: str) -> None:
    """Raise `UsageError` when a symlink in the output tree would put a video outside it.

    The spec layer already refuses `../` and absolute output paths; a symlink already in
    `outputs/<name>/` (a restored cache, a hand-made link) is only visible on disk. The
    folder itself may be a link (outputs kept on another disk); links below it may not
    lead out. Each distinct parent folder is resolved once, each file only if a link.
    """
    if not folder.exists():
        return
    base = folder.absolute()
    checked: dict[Path, bool] = {}
    for request in requests:
        target = folder / request.output
        # The tree a video may land in is the one its path names: the spec's folder, or
        # for a reproduction (`../<original>` from `.reproductions/`) the folder above.
        # The spec layer refuses `..` in users' output paths; here only links may lead out.
        lexical = os.path.normpath(base / request.output)
        root = Path(os.path.commonpath([base, lexical])).resolve()
        inside = checked.get(target.parent)
        if inside is None:
            inside = checked[target.parent] = target.parent.resolve().is_relative_to(root)
        if inside and target.is_symlink():
            inside = target.resolve().is_relative_to(root)
        if not inside:
            msg = (
                f"{display}: output {request.output!r} would be written outside {folder} "
                f"through a symbolic link ({target.resolve()}) — remove the link or choose "
                "another --output-dir"
            )
            raise UsageError(msg)
        # Found now, not after paying: a video that can never be written.
        blocker = _blocking_path(folder, request.output)
        if blocker is not None:
            msg = (
                f"{display}: output {request.output!r} cannot be written: {blocker} — move "
                "it away (or change the output template) and run again"
            )
            raise UsageError(msg)


def _blocking_path(folder: Path, output: str) -> str | None:
    """Return what on disk stops a video from being written at `output`, if anything."""
    target = folder / output
    if target.is_dir() and not target.is_symlink():
        return f"{target} is a folder"
    parent = target.parent
    while parent != folder and not parent.exists():
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        return f"{parent} is a file, not a folder"
    return None


def write_gallery(folder: Path) -> Path:
    """The end-of-run hook: rebuild the spec's HTML gallery from its manifest."""
    from runner.gallery import gallery_for

    return gallery_for(folder)


class _Noting:
    """A reporter wrapper that also keeps every note for the summary."""

    def __init__(self, inner: Reporter) -> None:
        self._inner = inner
        self.notes: list[str] = []

    def start(self, tally: Tally) -> None:
        self._inner.start(tally)

    def update(self, tally: Tally) -> None:
        self._inner.update(tally)

    def note(self, line: str) -> None:
        self.notes.append(line)
        self._inner.note(line)

    def stop(self) -> None:
        self._inner.stop()


def _endpoints(
    requests: Sequence[Request],
    options: RunOptions,
    sandbox_url: str | None,
    environ: Mapping[str, str] | None,
) -> dict[str, tuple[str, str, str | None]]:
    """Resolve base URL and key of every provider the API work needs (before any write)."""
    out: dict[str, tuple[str, str, str | None]] = {}
    for request in requests:
        if request.provider in out:
            continue
        provider = get_provider(request.provider)
        key = api_key(provider, dict(environ) if environ is not None else None)
        base = options.base_url or provider.base_url or sandbox_url
        if base is None:
            msg = "the sandbox provider needs --sandbox or --base-url pointing at a sandbox"
            raise UsageError(msg)
        out[request.provider] = (base, key, provider.key_env)
    return out


def check_base_url(url: str) -> None:
    """Refuse a --base-url that is not http(s), or that would send the key in clear text."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        msg = f"--base-url {url!r} is not an http(s) URL — write e.g. http://127.0.0.1:8080"
        raise UsageError(msg)
    if parts.scheme == "http" and not is_loopback_url(url):
        msg = (
            f"--base-url {url!r} would send the API key unencrypted — use https, or plain "
            "http only on this machine (127.0.0.1, localhost)"
        )
        raise UsageError(msg)


async def _run_work(
    work: list[Work],
    endpoints: Mapping[str, tuple[str, str, str | None]],
    options: RunOptions,
    clock: Clock,
    reporter: Reporter,
    rng: random.Random,
    transports: Transports,
    money: _Money,
) -> tuple[list[RequestReport], list[str]]:
    """Take every action with `options.concurrency` workers; return one report each
    and the videos the store refused."""
    reports: dict[int, RequestReport] = {}
    queue: list[int] = []
    initial = Tally(total=len(work))
    unstored: list[str] = []
    for index, item in enumerate(work):
        if item.action in (Action.SKIP, Action.ADOPT):
            outcome = _SETTLED.get(item.decision.status, "already_done")
            reports[index] = _report(item, outcome)
            initial = replace(initial, done=initial.done + 1)
        elif item.action == Action.REPORT:
            outcome = item.decision.status if item.decision.status in _REPORTED else "not_run"
            reports[index] = _report(item, outcome, item.why)
            field_name = _TALLY_FIELD.get(Outcome(outcome), "skipped")
            initial = replace(initial, **{field_name: getattr(initial, field_name) + 1})
        else:
            queue.append(index)
    # Resumed generations first: they are already paid for and in flight.
    queue.sort(key=lambda i: work[i].action != Action.COLLECT)
    counter = _Counter(reporter, initial)
    reporter.start(initial)
    try:
        if queue:
            wanted = {(work[i].request.provider, work[i].request.model) for i in queue}
            prior = _remembered(work, wanted, options)
            shared = _shared(endpoints, options, clock, reporter, rng, transports, money,
                             prior)
            # The published metrics arrive while the first POSTs are out, not before them.
            fetch = (asyncio.create_task(_published(shared, wanted, endpoints, transports))
                     if options.priors else None)
            try:
                async with _writing_off_loop(work):
                    await Workers(shared, work, reports, counter).run(queue, options.concurrency)
                if options.priors:
                    priors.write_history(options.output_dir, _learned(work, queue, shared))
            finally:
                if fetch is not None:
                    fetch.cancel()  # a metrics request still out is not worth waiting for
                unstored = shared.unstored
                clients = shared.clients.values()
                await asyncio.gather(*(c.aclose() for c in clients), shared.downloads.aclose())
    finally:
        reporter.stop()
    return [reports[i] for i in range(len(work)) if i in reports], unstored


@contextlib.asynccontextmanager
async def _writing_off_loop(work: Sequence[Work]) -> AsyncIterator[None]:
    """Let the workers' manifest and lock-file writes happen in threads (runner.manifest
    `off_loop`): an fsync on the event loop would hold up every poll and POST."""
    runs = {id(item.spec): item.spec for item in work}.values()
    async with contextlib.AsyncExitStack() as stack:
        for spec_run in runs:
            if spec_run.lock is not None:
                stack.enter_context(spec_run.lock.in_background())
            await stack.enter_async_context(spec_run.manifest.off_loop())
        yield


def _remembered(
    work: Sequence[Work], wanted: set[tuple[str, str]], options: RunOptions
) -> dict[str, list[float]]:
    """Return the generation times earlier runs recorded for the run's models."""
    if not options.priors:
        return {}
    runs = {id(item.spec): item.spec for item in work}.values()
    states = [state for run in runs for state in run.manifest.state.values()]
    return priors.remembered(wanted, states, options.output_dir)


async def _published(
    shared: Shared,
    wanted: set[tuple[str, str]],
    endpoints: Mapping[str, tuple[str, str, str | None]],
    transports: Transports,
) -> None:
    """Feed the providers' published latency percentiles to the poll schedule."""
    bases = {name: base for name, (base, _, _) in endpoints.items()}
    for model, samples in (await priors.published_for(wanted, bases, transports.api)).items():
        shared.scheduler.add_prior(model, samples)


def _learned(
    work: Sequence[Work], queue: Sequence[int], shared: Shared
) -> dict[tuple[str, str], list[float]]:
    """Return this run's generation times per (provider, model), for the history file."""
    providers: dict[str, set[str]] = {}
    for i in queue:
        providers.setdefault(work[i].request.model, set()).add(work[i].request.provider)
    return {
        (provider, model): durations
        for model, durations in shared.scheduler.learned().items()
        if model is not None
        for provider in sorted(providers.get(model, ()))
    }


def _shared(
    endpoints: Mapping[str, tuple[str, str, str | None]],
    options: RunOptions,
    clock: Clock,
    reporter: Reporter,
    rng: random.Random,
    transports: Transports,
    money: _Money,
    prior: Mapping[str, list[float]] | None = None,
) -> Shared:
    """Build the clients, the poll scheduler and the policies the workers share."""
    uses_sandbox = any(env is None for _, _, env in endpoints.values())
    poll = options.poll or (SANDBOX_POLL if uses_sandbox else REAL_POLL)
    keepalive = max(120.0, poll.ceiling * 2)  # polls reuse their connection
    clients = {
        name: ApiClient(
            name,
            base,
            key,
            clock,
            key_env=env,
            max_in_flight=options.concurrency,
            keepalive=keepalive,
            transport=transports.api,
        )
        for name, (base, key, env) in endpoints.items()
    }
    ledgers = {
        name: Ledger(client, clock, refresh=poll.floor)
        for name, client in clients.items()
        if get_provider(name).usage_logs
    }
    return Shared(
        clients=clients,
        ledgers=ledgers,
        downloads=download_client(
            max_in_flight=WORKERS_PER_SLOT * options.concurrency, transport=transports.download
        ),
        scheduler=PollScheduler(poll, rng, prior),
        poll=poll,
        policy=options.retry,
        clock=clock,
        rng=rng,
        notify=reporter.note,
        download_attempts=options.download_attempts,
        url_refreshes=options.url_refreshes,
        ceilings=money.ceilings,
        estimates=money.pricer.usd,
    )


_TALLY_FIELD = {
    Outcome.DONE: "done",
    Outcome.RESTORED: "done",
    Outcome.FAILED: "failed",
    Outcome.LOST: "failed",
    Outcome.UNKNOWN: "unknown",
}
# How a request nothing was sent for ends (by its decision's status).
_SETTLED = {"done": "already_done", "stored": "stored", "adopt": "adopted"}
_REPORTED = frozenset({"failed", "unknown", "lost"})


@dataclass
class Workers:
    """The worker pool: each worker takes the next queued action until none is left."""

    shared: Shared
    work: list[Work]
    reports: dict[int, RequestReport]
    counter: _Counter
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def run(self, queue: list[int], concurrency: int) -> None:
        """Run the queue; on 401/403 stop at once, letting POSTs in flight hear back.

        `concurrency` generations go on at once (the shared slots); twice as many workers
        let the next ones be submitted while the last ones' videos download.
        """
        pending = iter(queue)  # shared: each index is taken by exactly one worker
        slots = Slots(concurrency)
        workers = min(WORKERS_PER_SLOT * concurrency, len(queue))
        self.tasks = [asyncio.create_task(self._worker(pending, slots)) for _ in range(workers)]
        try:
            await self._join()
        except BaseException:
            for task in self.tasks:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
            raise
        if self.shared.abort is not None:
            raise self.shared.abort

    async def _join(self) -> None:
        """Wait for every worker; raise the first error at once.

        A worker the abort cancelled is not an error, even one cancelled before it began
        (a worker still waiting for a slot may never have run a line of its own).
        """
        running = set(self.tasks)
        while running:
            done, running = await asyncio.wait(running, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                if task.cancelled():
                    if self.shared.abort is None:
                        raise asyncio.CancelledError  # not ours: the run is being stopped
                    continue
                error = task.exception()
                if error is not None:
                    raise error

    async def _worker(self, pending: Iterator[int], slots: Slots) -> None:
        for index in pending:
            if self.shared.abort is not None:
                return
            item = self.work[index]
            try:
                async with slots.held() as slot:
                    self.counter.change(running=1)
                    result = await _take(self.shared, item, slot)
            except (AuthError, StorageError) as exc:
                self._abort(exc)
                return
            except asyncio.CancelledError:
                if self.shared.abort is None:
                    raise  # the run itself is being stopped (Ctrl-C)
                return  # cut off by another worker's abort: the run ends with that error
            self.counter.change(running=-1, **{_TALLY_FIELD.get(result.outcome, "skipped"): 1})
            self.reports[index] = _report(
                item, result.outcome.value, result.reason, result, self.shared
            )
            if result.outcome in (Outcome.UNKNOWN, Outcome.TIMED_OUT):
                note = f"{item.spec.display}: {item.request.output}: {result.reason}"
                self.shared.notify(note)

    def _abort(self, exc: AuthError | StorageError) -> None:
        """Stop the run: no new request goes out; a POST already sent still hears back,
        so its outcome is recorded instead of becoming unknown (paid, id lost)."""
        if self.shared.abort is None:
            self.shared.abort = exc
        current = asyncio.current_task()
        for task in self.tasks:
            if task is not current and task not in self.shared.posting:
                task.cancel()


async def _take(shared: Shared, item: Work, slot: Slot) -> Result:
    """Take one action: submit then collect, collect a recorded generation, restore a
    recorded video, or settle an unknown outcome from the usage logs. `slot` is the
    generation slot the action holds; collecting gives it back when the generation ends."""
    request = item.request
    manifest = item.spec.manifest
    if item.action == Action.SUBMIT:
        submitted = await submit(shared, item.spec, request, forget=item.why)
        if isinstance(submitted, Result):
            return submitted
        if shared.abort is not None:  # the run stopped while this POST was out: it is
            return Result(Outcome.NOT_RUN, str(shared.abort))  # recorded; next run polls it
        result = await collect(
            shared, item.spec, request, submitted, shared.clock.wall(), learn=True, slot=slot
        )
        return replace_paid(result)
    if item.action == Action.RESTORE:
        return await restore(shared, item.spec, request, item.facts.moved_from)
    if item.action == Action.RECONCILE:
        return await reconcile(shared, item.spec, request, slot)
    state = manifest.state[request.id]
    if state.generation_id is None:  # pragma: no cover - decide() only collects with an id
        msg = f"request {request.id} has no generation id to collect"
        raise AssertionError(msg)
    submitted_at = (
        parse_ts(state.submitted_at).timestamp() if state.submitted_at else shared.clock.wall()
    )
    recovering = item.decision.status == "recover" or state.sha256 is not None
    return await collect(
        shared, item.spec, request, state.generation_id, submitted_at, learn=False,
        poll_now=True, recovering=recovering, slot=slot,
    )


def _report(
    item: Work,
    outcome: str,
    reason: str | None = None,
    result: Result | None = None,
    shared: Shared | None = None,
) -> RequestReport:
    paid = result.paid if result is not None else False
    usd = estimated = None
    if paid and shared is not None:
        estimated = shared.estimate(item.request)
        state = item.spec.manifest.state.get(item.request.id)
        usd = charged_usd(state) if state is not None else None
    return RequestReport(
        id=item.request.id,
        spec=item.spec.display,
        output=item.request.output,
        outcome=outcome,
        reason=reason,
        video_seconds=result.video_seconds if result is not None else 0.0,
        paid=paid,
        usd=usd,
        estimated_usd=estimated,
    )


def run(
    paths: Sequence[Path],
    options: RunOptions,
    *,
    sandbox: bool = False,
    only: Sequence[str] = (),
    clock: Clock | None = None,
    reporter: Reporter | None = None,
    environ: Mapping[str, str] | None = None,
    transports: Transports = Transports(),
    loaded: Sequence[LoadedSpecLike] | None = None,
    pricer: Pricer | None = None,
    inventory: frozenset[str] | None = None,
) -> RunSummary:
    """Load the specs at `paths`, select requests and run them (`runner run`).

    `sandbox` swaps every provider for the embedded emulator; without `--base-url` it is
    started in this process (fast defaults) and spoken to over real loopback HTTP.
    `loaded` gives specs the caller already loaded from `paths` (with the same sandbox
    choice), e.g. to plan them first.
    """
    return asyncio.run(
        arun(
            paths, options, sandbox=sandbox, only=only, clock=clock, reporter=reporter,
            environ=environ, transports=transports, loaded=loaded, pricer=pricer,
            inventory=inventory,
        )
    )


async def arun(
    paths: Sequence[Path],
    options: RunOptions,
    *,
    sandbox: bool = False,
    only: Sequence[str] = (),
    clock: Clock | None = None,
    reporter: Reporter | None = None,
    environ: Mapping[str, str] | None = None,
    transports: Transports = Transports(),
    loaded: Sequence[LoadedSpecLike] | None = None,
    pricer: Pricer | None = None,
    inventory: frozenset[str] | None = None,
) -> RunSummary:
    """Do what `run` does, awaited in the caller's event loop.

    Loading the specs (which reads and hashes their images) and starting and stopping
    the embedded sandbox block, so they happen in worker threads: the caller's loop keeps
    turning meanwhile.
    """
    chosen = await asyncio.to_thread(_select_specs, paths, sandbox, only, loaded)
    needs_sandbox = options.base_url is None and any(
        get_provider(r.provider).base_url is None for _, requests in chosen for r in requests
    )
    async with contextlib.AsyncExitStack() as stack:
        sandbox_url = None
        if needs_sandbox:
            from runner.sandbox import IN_PROCESS, start_in_thread

            # Fast defaults: a generation takes about a second, so a demo run feels like one.
            running = await asyncio.to_thread(start_in_thread, IN_PROCESS)
            stack.push_async_callback(asyncio.to_thread, running.stop)
            sandbox_url = running.base_url
        return await execute(
            chosen,
            options,
            clock=clock,
            reporter=reporter,
            environ=environ,
            transports=transports,
            sandbox_url=sandbox_url,
            pricer=pricer,
            inventory=inventory,
        )


def _select_specs(
    paths: Sequence[Path],
    sandbox: bool,
    only: Sequence[str],
    loaded: Sequence[LoadedSpecLike] | None = None,
) -> list[tuple[LoadedSpecLike, list[Request]]]:
    """Load the specs at `paths` (unless given) and pick each one's `--only` selection."""
    from runner.planning import refuse_empty_selection, select
    from runner.spec import load_specs

    specs: Sequence[LoadedSpecLike] = (
        loaded if loaded is not None
        else load_specs(list(paths), provider_override="sandbox" if sandbox else None)
    )
    chosen: list[tuple[LoadedSpecLike, list[Request]]] = [
        (spec, list(select(spec.requests, list(only)))) for spec in specs
    ]
    refuse_empty_selection(
        [r for spec in specs for r in spec.requests], list(only), sum(len(c) for _, c in chosen)
    )
    return chosen
