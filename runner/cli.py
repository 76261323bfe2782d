"""The `runner` command line: parse, call one core function, render.

This is the only module that imports click, prints for the user, or exits. The core
raises `runner.errors.RunnerError`s; `_errors_to_exit()` turns them into one clear line
each and the documented exit code (0 done, 1 failures or runtime error, 2 bad input).
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from runner import __version__
from runner.config import MAX_BUDGET
from runner.errors import RunnerError, SpecError, UsageError
from runner.heap import collector_paused
from runner.layout import DEFAULT_ROOT
from runner.providers import PROVIDERS

if TYPE_CHECKING:
    from runner.planning import Plan
    from runner.store import Store


@contextlib.contextmanager
def _errors_to_exit(only_code: int | None = None) -> Iterator[None]:
    """Turn the core's errors into one line each on stderr and an exit code (`only_code`
    for every error, when a flag such as --detailed-exitcode gives codes a meaning)."""
    try:
        yield
    except SpecError as exc:
        for problem in exc.problems:
            click.echo(f"error: {problem}", err=True)
        sys.exit(only_code or exc.exit_code)
    except RunnerError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(only_code or exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted — state is saved; run the same command again to resume", err=True)
        sys.exit(130)


PATHS = click.argument(
    "paths", nargs=-1, required=True, type=click.Path(path_type=Path, exists=False)
)

OUTPUT_DIR = click.option(
    "--output-dir", type=click.Path(path_type=Path, file_okay=False), default=DEFAULT_ROOT,
    show_default=True,
    help="Root of the output tree: <DIR>/<spec name>/, and <DIR>/_sandbox/<spec name>/ for "
         "sandbox runs, so emulator videos never replace paid ones.",
)
STORE = click.option(
    "--store", metavar="URL",
    help="Keep verified videos here and restore them on any machine: s3://bucket/prefix, "
         "file:///path or a folder [default: $RUNNER_STORE, else `store` in runner.toml].",
)


def _open_store(url: str | None, paths: tuple[Path, ...]) -> Store | None:
    """Open the store the flag, the environment or runner.toml names (None without one)."""
    from runner.config import store_url
    from runner.store import open_store

    chosen = store_url(url, list(paths))
    return open_store(chosen) if chosen else None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="runner")
def cli() -> None:
    """Run batches of AI video generations from spec files, reproducibly.

    A spec (YAML) says which images to animate with which prompts, models, seeds and
    ratios. `runner` validates it, expands it into requests with stable ids, runs them
    against the API (submit, poll, download), and keeps resumable state in a manifest
    beside the videos in outputs/<spec name>/.

    \b
    Examples:
      runner validate specs/                  check every spec in a folder
      runner plan specs/dragon.yaml           what a run would do, per request
      runner run --sandbox specs/dragon.yaml  run on the embedded emulator (no key)
      AIMLAPI_API_KEY=... runner run specs/   run for real; resumes where it stopped
      runner status specs/dragon.yaml         what the manifest says
      runner reproduce outputs/dragon/16x9/seed-1.mp4

    Keys come from AIMLAPI_API_KEY or APILAPLAS_API_KEY, never from spec files.
    """


@cli.command()
def schema() -> None:
    """Print the spec JSON Schema (for editors and CI)."""
    from runner.schemas import schemas_dir

    click.echo((schemas_dir() / "spec.schema.json").read_text(encoding="utf-8"), nl=False)


@cli.command()
@PATHS
def validate(paths: tuple[Path, ...]) -> None:
    """Check specs: schema, model parameters, templates, images, output paths, lock files.

    Exit 0 when every spec is valid; 2 with one `file:line:col: problem — fix` line per
    problem otherwise. Nothing is written and no API is called.
    """
    from runner.layout import lockfile_of
    from runner.lockfile import read_lock
    from runner.spec import load_specs

    with _errors_to_exit():
        specs = load_specs(list(paths))
        for spec in specs:
            lock = lockfile_of(spec.path)
            locked = read_lock(lock)  # a conflicted or hand-broken lock is one clear error
            note = f", {len(locked)} in {lock.name}" if locked else ""
            click.echo(f"ok: {spec.display} ({spec.name}: {len(spec.requests)} requests{note})")


@cli.command()
@PATHS
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object (schemas/output/plan.schema.json).")
@click.option("--sandbox", is_flag=True, help="Plan for the embedded emulator (as run --sandbox).")
@click.option("--base-url", metavar="URL",
              help="Read prices from this server (as `run --base-url` would send requests).")
@OUTPUT_DIR
@STORE
@click.option("--only", multiple=True, metavar="KEY=VALUE",
              help="Plan only requests whose matrix axis, parameter, job or id equals VALUE.")
@click.option("--force", is_flag=True, help="Show what `run --force` would regenerate.")
@click.option("--retry-failed", is_flag=True, help="Show what `run --retry-failed` would retry.")
@click.option("--resubmit-unknown", is_flag=True,
              help="Show what `run --resubmit-unknown` would resubmit.")
@click.option("--regenerate-lost", is_flag=True,
              help="Show what `run --regenerate-lost` would pay for again.")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), metavar="FILE",
              help="Save the plan (every decision, and what it depends on) for "
                   "`runner run --plan FILE`.")
@click.option("--detailed-exitcode", is_flag=True,
              help="Exit 0 when there is nothing to do, 2 when there is work, 1 on error.")
# Paused from reading the specs to printing the plan (runner.heap), and until the plan
# is freed: the collector comes back when the command's frame, the plan with it, is gone.
@collector_paused()
def plan(paths: tuple[Path, ...], as_json: bool, sandbox: bool, base_url: str | None,
         output_dir: Path, store: str | None, only: tuple[str, ...], force: bool,
         retry_failed: bool, resubmit_unknown: bool, regenerate_lost: bool,
         out: Path | None, detailed_exitcode: bool) -> None:
    """Show what a run would do, per request, why, and what it would cost (no API call
    but the price list, which needs no key).

    \b
    Statuses: new (a run pays for it), done, adopt (the video is here; recorded without
    an API call), restore (back from the store), stored (in the store; `runner pull`
    fetches it), recover (paid, file gone: fetched again from its generation, free),
    pending (polled, never resubmitted), unknown (looked up in the usage logs), failed,
    lost (paid, the provider no longer has it), orphaned (recorded, gone from the spec).

    Reads the manifest in <output-dir>/<spec name>/, the lock file beside each spec and
    the store's list. With --json, prints one object (schemas/output/plan.schema.json,
    `format: runner-plan`): `requests` (id, spec, job, status, action, paid,
    estimated_usd, reason, output, path, payload: the exact body a run would POST, local
    images as sha256: references), `counts`, `submissions`, `estimated_usd` and
    `video_seconds`. --out FILE saves the plan for `runner run --plan FILE`.

    \b
    Exit codes: 0, or 2 for an invalid spec or flag. With --detailed-exitcode
    (Terraform's): 0 nothing to do, 2 work to do (a run would submit, poll, download,
    restore or record something), 1 any error (an invalid spec too).
    """
    from runner.decide import Flags
    from runner.preflight import made_with, plan_made_with

    with _errors_to_exit(only_code=1 if detailed_exitcode else None):
        made = made_with(
            paths, sandbox=sandbox, output_dir=output_dir, store=store, base_url=base_url,
            only=only, flags=Flags(force, retry_failed, resubmit_unknown, regenerate_lost),
        )
        result = plan_made_with(made, out=out)
        if as_json:
            lines = result.iter_json()
            # A thousand lines per write: click.echo costs as much as encoding a line.
            while chunk := "".join(itertools.islice(lines, 1000)):
                click.echo(chunk, nl=False)
        else:
            for entry in result.entries:
                reason = "" if entry.reason == entry.status else f"  ({entry.reason})"
                cost = ""
                if entry.paid:
                    usd = entry.estimated_usd
                    cost = "  price unknown" if usd is None else f"  ${usd:,.2f}"
                click.echo(f"{entry.status:<8} {entry.id}  {entry.path or ''}{cost}{reason}")
            for line in plan_lines(result):
                click.echo(line)
            if out is not None:
                click.echo(f"saved the plan to {out} — apply exactly it with: "
                           f"runner run --plan {out}")
        _finish(2 if detailed_exitcode and result.work else 0)


@cli.group()
def sandbox() -> None:
    """The embedded API emulator (offline, renders real H.264 videos)."""


@sandbox.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, help="Port; 0 picks a free one.")
@click.option("--allow-remote", is_flag=True, help="Allow a non-loopback --host.")
@click.option("--latency", type=float, default=1.0, show_default=True,
              help="Seconds per generation.")
@click.option("--jitter", type=float, default=0.2, show_default=True, help="Latency varies ± this.")
@click.option("--concurrency", type=int, default=8, show_default=True, help="Server slots.")
@click.option("--scale", type=int, default=8, show_default=True, help="Divide output sizes by N.")
@click.option("--fps", type=int, default=8, show_default=True, help="Frames per second.")
@click.option("--render", "render_mode", type=click.Choice(["full", "cheap"]), default="full",
              show_default=True, help="cheap: one cached clip per size (benchmarks).")
@click.option("--url-ttl", type=float, default=3600.0, show_default=True,
              help="Lifetime of signed download URLs, seconds.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds jitter and faults.")
@click.option("--fault", "faults", multiple=True, metavar="KIND=RATE",
              help="Inject a fault: KIND=0.1 (probability) or KIND=first:N. Repeatable.")
@click.option("--state-dir", type=click.Path(path_type=Path, file_okay=False),
              help="Remember generations here across restarts.")
def sandbox_serve(host: str, port: int, allow_remote: bool, latency: float, jitter: float,
                  concurrency: int, scale: int, fps: int, render_mode: str, url_ttl: float,
                  seed: int, faults: tuple[str, ...], state_dir: Path | None) -> None:
    """Serve the API emulator over HTTP until interrupted.

    \b
    Fault kinds: rate_limit (429 + Retry-After), unavailable (503), poll_error (5xx on
    polls), failed_generation, drop_after_accept, truncated_download, short_url, slow.
    Knobs can change at runtime: POST /_sandbox/config; counters: GET /_sandbox/stats.
    """
    import asyncio

    from runner.sandbox import SandboxConfig, parse_fault, serve

    def ready(base_url: str) -> None:
        click.echo(f"serving on {base_url}")
        sys.stdout.flush()  # a parent process reads the port from this first line

    with _errors_to_exit():
        config = SandboxConfig(
            latency=latency, jitter=jitter, concurrency=concurrency, scale=scale, fps=fps,
            render="cheap" if render_mode == "cheap" else "full", url_ttl=url_ttl, seed=seed,
            faults=dict(parse_fault(f) for f in faults), state_dir=state_dir,
        )
        try:
            asyncio.run(serve(config, host, port, ready, allow_remote=allow_remote))
        except KeyboardInterrupt:
            click.echo("sandbox stopped", err=True)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path, exists=False))
@click.option("--sandbox", is_flag=True,
              help="Use the embedded emulator instead of the spec's provider (no key, no network).")
@click.option("--base-url", metavar="URL",
              help="Send API calls here, e.g. a running `runner sandbox serve` or a proxy.")
@click.option("--concurrency", type=click.IntRange(min=1), default=4, show_default=True,
              help="Generations in flight at once; each is paid, so stay within your plan's tier.")
@click.option("--only", multiple=True, metavar="KEY=VALUE",
              help="Run only requests whose matrix/variable KEY equals VALUE. Repeatable.")
@click.option("--force", is_flag=True, help="Regenerate the selection even if done (paid again).")
@click.option("--retry-failed", is_flag=True, help="Retry requests that failed in earlier runs.")
@click.option("--resubmit-unknown", is_flag=True,
              help="Resubmit requests whose earlier submission has an unknown outcome "
                   "(they may be billed twice).")
@click.option("--regenerate-lost", is_flag=True,
              help="Pay again for generations the provider no longer has (listed as lost).")
@OUTPUT_DIR
@STORE
@click.option("--max-cost", type=click.FloatRange(min=0, min_open=True, max=MAX_BUDGET),
              metavar="USD",
              help="Never let this run's submissions cost more than USD (estimated from the "
                   "price list before each one; the rest stay new) [default: `budget` in "
                   "runner.toml; a spec's `budget:` caps that spec too].")
@click.option("--allow-unpriced", is_flag=True,
              help="Under a budget, also submit requests whose price is unknown.")
@click.option("--yes", "-y", is_flag=True,
              help="Do not ask before paying (a run only asks on a terminal).")
@click.option("--plan", "plan_file", type=click.Path(path_type=Path, dir_okay=False),
              metavar="FILE",
              help="Run exactly the plan `runner plan --out FILE` saved (its specs and flags); "
                   "exit 2 if its specs, images, lock or manifest changed since.")
@click.option("--poll-min", type=click.FloatRange(min=0.01), metavar="SECONDS",
              help="Shortest wait between two polls of one generation [5; 0.2 on the sandbox].")
@click.option("--poll-max", type=click.FloatRange(min=0.01), metavar="SECONDS",
              help="Longest wait between two polls of one generation [60; 5 on the sandbox].")
@click.option("--timeout", type=click.FloatRange(min=1), default=1800.0, show_default=True,
              metavar="SECONDS",
              help="Stop waiting for a generation after this long; it stays pending and the "
                   "next run polls it again (never resubmits it).")
@click.option("--report", "reports", multiple=True, metavar="FILE",
              type=click.Path(path_type=Path, dir_okay=False),
              help="Also write a report: JSON (schemas/output/report.schema.json), or JUnit "
                   "XML when FILE ends in .xml. Repeatable.")
@click.pass_context
def run(ctx: click.Context, paths: tuple[Path, ...], sandbox: bool, base_url: str | None,
        concurrency: int, only: tuple[str, ...], force: bool, retry_failed: bool,
        resubmit_unknown: bool, regenerate_lost: bool, output_dir: Path, store: str | None,
        max_cost: float | None, allow_unpriced: bool, yes: bool, plan_file: Path | None,
        poll_min: float | None, poll_max: float | None, timeout: float,
        reports: tuple[Path, ...]) -> None:
    """Run specs: submit new requests, poll, download; resume whatever was left.

    A second run of a finished spec makes no API call. A submission whose outcome is
    unknown (the connection dropped after sending) is never resubmitted on its own.
    On a terminal, a run that would pay shows its plan and cost and asks first.

    \b
    Exit codes:
      0  every selected request has its video
      1  some failed, are unknown or still pending (or a runtime error; or not confirmed)
      2  invalid spec, flag, missing or rejected key, or a saved plan that is stale
      3  a budget stopped submitting: all that was sent is in, the rest stay new
    """
    from runner import engine
    from runner.clock import SystemClock
    from runner.decide import Flags
    from runner.preflight import made_with, made_with_saved, preflight, run_options
    from runner.progress import make_reporter
    from runner.saved_plan import read_plan
    from runner.summary import summary_lines, write_reports

    with _errors_to_exit():
        saved = read_plan(plan_file) if plan_file is not None else None
        if saved is not None:
            _refuse_plan_conflicts(ctx)
            made = made_with_saved(saved, store)
        elif not paths:
            raise UsageError("give spec files or folders to run (or --plan FILE)")
        else:
            made = made_with(
                paths, sandbox=sandbox, output_dir=output_dir, store=store, base_url=base_url,
                only=only, flags=Flags(force, retry_failed, resubmit_unknown, regenerate_lost),
            )
        # Sandbox runs never ask (they cost nothing); nor does an approved saved plan.
        asking = saved is None and not made.sandbox and not yes and _interactive()
        prepared = preflight(made, saved=saved, max_cost=max_cost, plan_first=asking)
        if asking and prepared.paying and prepared.plan is not None:
            _confirm(prepared.plan, len(prepared.paying))
        options = run_options(
            made, prepared, concurrency=concurrency, allow_unpriced=allow_unpriced,
            poll=engine.poll_settings(poll_min, poll_max, timeout, sandbox=made.sandbox),
            priors=True,
        )
        reporter = make_reporter(sys.stderr, SystemClock())
        summary = engine.run(
            [Path(p) for p in made.paths], options, sandbox=made.sandbox, only=made.only,
            reporter=reporter, loaded=prepared.specs, pricer=prepared.pricer,
            inventory=prepared.inventory,
        )
        write_reports(summary, reports, Path(made.output_dir))
        for line in summary_lines(summary):
            click.echo(line)
        _finish(summary.exit_code)  # every file is closed and every worker joined by now


@cli.command()
@PATHS
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object (schemas/output/status.schema.json).")
@click.option("--sandbox", is_flag=True,
              help="Show the state of `run --sandbox` runs.")
@OUTPUT_DIR
def status(paths: tuple[Path, ...], as_json: bool, sandbox: bool, output_dir: Path) -> None:
    """Show what the manifest says about each request of the specs (no API call)."""
    import json

    from runner.summary import spec_status

    with _errors_to_exit():
        result = spec_status(paths, output_dir, sandbox=sandbox)
        if as_json:
            click.echo(json.dumps(result, indent=2, ensure_ascii=False))
            return
        for row in result["requests"]:
            where = row["output"] or row["id"]
            note = " (orphaned: gone from the spec)" if row["orphaned"] else ""
            reason = f" — {row['reason']}" if row["reason"] and row["status"] != "done" else ""
            click.echo(f"{row['status']:<8} {row['spec']}: {where}{note}{reason}")
        for spec in result["specs"]:
            counts = ", ".join(f"{n} {status}" for status, n in spec["counts"].items())
            click.echo(f"{spec['spec']}: {spec['requests']} requests: {counts or 'none'} — "
                       f"${spec['spent_usd']:,.2f} spent on the recorded generations")
        if len(result["specs"]) > 1:
            counts = ", ".join(f"{n} {status}" for status, n in result["counts"].items())
            click.echo(f"{len(result['requests'])} requests: {counts} — "
                       f"${result['spent_usd']:,.2f} spent")


@cli.command()
@PATHS
@OUTPUT_DIR
@STORE
@click.option("--only", multiple=True, metavar="KEY=VALUE",
              help="Pull only requests whose matrix axis, parameter, job or id equals VALUE.")
def pull(paths: tuple[Path, ...], output_dir: Path, store: str | None,
         only: tuple[str, ...]) -> None:
    """Bring the specs' recorded videos from the store into the output tree (no API call).

    For review on a fresh clone: the lock file beside each spec names the videos, the
    store gives them back (checked against their sha256), and the gallery then works
    offline. Exit 1 when a recorded video cannot be had from the store (`runner run`
    fetches it again from its generation, or lists it as lost).
    """
    from runner import engine
    from runner.clock import SystemClock
    from runner.progress import make_reporter
    from runner.summary import summary_lines

    with _errors_to_exit():
        opened = _open_store(store, paths)
        if opened is None:
            msg = ("runner pull needs a store — give --store URL, set RUNNER_STORE, or put "
                   "store = \"…\" in runner.toml")
            raise UsageError(msg)
        options = engine.RunOptions(output_dir=output_dir, store=opened, pull=True)
        reporter = make_reporter(sys.stderr, SystemClock())
        summary = engine.run(paths, options, only=only, reporter=reporter)
        for line in summary_lines(summary):
            click.echo(line)
        _finish(summary.exit_code)  # every file is closed and every worker joined by now


@cli.command()
@PATHS
@click.option("--rows", metavar="AXIS",
              help="Matrix axis down the page (e.g. seed, ratio, model); `auto` for the default.")
@click.option("--cols", metavar="AXIS",
              help="Matrix axis across the page (wraps when it has many values); `auto` for "
                   "the default.")
@click.option("--sandbox", is_flag=True,
              help="The galleries of `run --sandbox` runs.")
@OUTPUT_DIR
def gallery(paths: tuple[Path, ...], rows: str | None, cols: str | None, sandbox: bool,
            output_dir: Path) -> None:
    """Rebuild the HTML gallery of each spec (outputs/<name>/index.html); no API call.

    Every run rebuilds it at its end; this command lays it out again. A --rows/--cols
    choice is remembered for that folder's later rebuilds until `auto` is given. On the
    page, rows and columns can be switched, items filtered, and 2-4 videos compared.

    \b
    Examples:
      runner gallery specs/sweep.yaml --rows seed --cols model
      runner gallery --sandbox specs/ --rows auto --cols auto
    """
    from runner.gallery import build_galleries

    with _errors_to_exit():
        builds = build_galleries(paths, output_dir, sandbox=sandbox, rows=rows, cols=cols)
        for build in builds:
            counts = ", ".join(f"{n} {status}" for status, n in build.counts.items())
            badges = "".join(f", {n} {badge}" for badge, n in build.badges.items())
            where = f"rows {build.rows or 'auto'}, columns {build.cols or 'auto'}"
            click.echo(f"wrote {build.path} ({counts or 'no requests yet'}{badges}; {where})")


@cli.command()
@click.argument("model", required=False)
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object (schemas/output/models.schema.json).")
@click.option("--capability", "capabilities", multiple=True, metavar="NAME",
              help="Only models with this capability (repeatable): image-to-video, "
                   "text-to-video, seed, last-frame, negative-prompt, audio, ...")
@click.option("--family", metavar="NAME", help="Only this family: Runway, Kling, Veo, ...")
def models(model: str | None, as_json: bool, capabilities: tuple[str, ...],
           family: str | None) -> None:
    """List the model catalog, or show one model's parameters.

    \b
    Examples:
      runner models                                  every model, one line each
      runner models --capability image-to-video --capability seed
      runner models --family Kling --json
      runner models runway/gen4_turbo                its routes and parameters
    """
    import json

    from runner.catalog import load_catalog
    from runner.catalog_view import choose, detail_json, detail_lines, find, list_json, list_lines

    with _errors_to_exit():
        catalog = load_catalog()
        if model is not None:
            found = find(catalog, model)
            if as_json:
                click.echo(json.dumps(detail_json(catalog, found), indent=2, ensure_ascii=False))
            else:
                click.echo("\n".join(detail_lines(catalog, found)))
            return
        chosen = choose(catalog, capabilities, family)
        if as_json:
            click.echo(json.dumps(list_json(catalog, chosen), indent=2, ensure_ascii=False))
        else:
            click.echo("\n".join(list_lines(chosen)))


@cli.command()
@click.argument("target", metavar="ID_OR_OUTPUT_FILE")
@click.option("--sandbox", is_flag=True,
              help="Reproduce on the embedded emulator instead of the recorded provider.")
@click.option("--base-url", metavar="URL",
              help="Send API calls here, e.g. a running `runner sandbox serve` or a proxy.")
@click.option("--provider", type=click.Choice(sorted(PROVIDERS)),
              help="Submit to this provider instead of the recorded one.")
@click.option("--resubmit-unknown", is_flag=True,
              help="Submit again although an earlier reproduce's outcome is unknown "
                   "(it may be billed twice).")
@click.option("--output-dir", type=click.Path(path_type=Path, file_okay=False),
              default=Path("outputs"), show_default=True,
              help="Root of the output tree (ids are looked up here and in its _sandbox/).")
def reproduce(target: str, sandbox: bool, base_url: str | None, provider: str | None,
              resubmit_unknown: bool, output_dir: Path) -> None:
    """Submit a recorded request again: same payload, same seed, same images.

    TARGET is a video (or its .json sidecar) from the output tree, or a request id (a
    unique prefix of 6+ characters will do). The images are read again and must hash to
    what was recorded. The new video is written beside the original, never over it
    (seed-1.mp4 -> seed-1.repro-1.mp4, then .repro-2 ...); the sidecars link the two.
    An interrupted reproduce is resumed, not paid again, by running it once more.
    """
    from runner.clock import SystemClock
    from runner.progress import make_reporter
    from runner.reproduce import run_reproduce

    with _errors_to_exit():
        result = run_reproduce(
            target, output_dir=output_dir, sandbox=sandbox, provider=provider,
            base_url=base_url, resubmit_unknown=resubmit_unknown,
            reporter=make_reporter(sys.stderr, SystemClock()),
        )
        verb = "collected the interrupted reproduction of" if result.resumed else "reproduced"
        click.echo(f"{verb} {result.original} -> {result.video}")
        if not result.seeded:
            click.echo("  this model takes no seed: the same request makes a new take each "
                       "time, so it cannot be reproduced exactly"
                       + (" (these bytes happen to match)" if result.identical else ""))
        elif result.identical:
            click.echo("  same bytes as the original")
        else:
            click.echo("  differs from the original (a provider need not repeat a seed exactly)")


@cli.command()
@PATHS
@click.option("--yes", is_flag=True, help="Really remove the files (without it: only list them).")
@click.option("--sandbox", is_flag=True,
              help="Judge against the specs as `run --sandbox` runs them.")
@OUTPUT_DIR
def prune(paths: tuple[Path, ...], yes: bool, sandbox: bool, output_dir: Path) -> None:
    """Remove the files of orphaned requests (in the manifest, gone from the spec).

    Without --yes, lists what would go: videos, sidecars, posters, reproductions. A
    file is only removed while it is still the orphan's own (same checksum, no newer
    request recorded at that path). Each removal is recorded in the manifest.
    """
    from runner.prune import find_orphans
    from runner.prune import prune as remove_orphans

    with _errors_to_exit():
        orphans = find_orphans(paths, output_dir, sandbox=sandbox)
        if not orphans:
            click.echo("no orphaned requests — nothing to prune")
            return
        for orphan in orphans:
            where = orphan.output or orphan.id
            click.echo(f"orphaned ({orphan.status}): {orphan.spec}: {where} [{orphan.id}]")
            for path in orphan.remove:
                click.echo(f"  {'remove' if yes else 'would remove'} {path}")
            for path, why in orphan.keep:
                click.echo(f"  keep {path}: {why}")
        files = sum(len(o.remove) for o in orphans)
        if not yes:
            click.echo(f"{files} files of {len(orphans)} orphaned requests would be removed — "
                       f"run again with --yes to remove them")
            return
        removed = remove_orphans(orphans)
        click.echo(f"removed {removed} files of {len(orphans)} orphaned requests")


# What a saved plan fixes: `run --plan` takes these from the plan, never from the command.
# (--store may be given: the plan holds only its digest, and the run checks it.)
PLAN_FIXES = ("paths", "sandbox", "base_url", "only", "force", "retry_failed",
              "resubmit_unknown", "regenerate_lost", "output_dir")


def _refuse_plan_conflicts(ctx: click.Context) -> None:
    """Refuse `run --plan` with an argument the plan already fixes."""
    from click.core import ParameterSource

    for name in PLAN_FIXES:
        given = ctx.params.get(name)
        if name == "paths" and given:
            msg = "--plan runs the specs the plan was made for — give no spec paths with it"
            raise UsageError(msg)
        if name != "paths" and ctx.get_parameter_source(name) is not ParameterSource.DEFAULT:
            flag = "--" + name.replace("_", "-")
            msg = f"--plan runs with the flags the plan was made with — drop {flag}"
            raise UsageError(msg)


def _interactive() -> bool:
    """Tell whether a person is at the keyboard (both stdin and stderr are a terminal)."""
    return sys.stdin.isatty() and sys.stderr.isatty()


def _confirm(plan: Plan, paying: int) -> None:
    """Show the plan's closing lines and ask before paying; refuse (exit 1) on no."""
    for line in plan_lines(plan):
        click.echo(line, err=True)
    cost = f"${plan.estimated_usd:,.2f}" + (" + unpriced" if plan.unpriced else "")
    question = f"Submit {paying} paid generation{'s' if paying != 1 else ''} (est. {cost})?"
    if not click.confirm(question, default=False, err=True):
        msg = "not confirmed — nothing was submitted (--yes skips the question)"
        raise RunnerError(msg)


def plan_lines(result: Plan) -> list[str]:
    """Render a plan's closing lines: counts, video seconds, and what it would cost."""
    counts = ", ".join(f"{n} {status}" for status, n in result.counts.items() if n)
    unknown = (f", and {result.unknown_length} of a length the docs do not state"
               if result.unknown_length else "")
    lines = [
        f"{len(result.entries)} requests: {counts or 'none'} — {result.submissions} to "
        f"submit (paid), {result.seconds_to_generate:g} s of video to generate{unknown} "
        f"(of {result.video_seconds:g} s in the specs)"
    ]
    if result.submissions:
        if result.unpriced == result.submissions:
            cost = f"unknown: no price for any of the {result.submissions} (not free)"
        else:
            cost = f"${result.estimated_usd:,.2f}"
            if result.unpriced:
                cost += f" + {result.unpriced} of unknown price (not free)"
        lines.append(f"estimated cost: {cost} — prices from {result.prices or 'no price list'}")
    return lines


_AS_PROCESS = False  # set by `main`: this process is the `runner` command itself


def _finish(code: int) -> None:
    """End `plan`, `run` or `pull`, whose files are all written and closed, with `code`.

    As the `runner` process itself, nothing is left to clean up once the output is out, so
    the process ends without tearing the interpreter down: freeing a 100,000-request plan
    object by object takes 0.4-0.5 s (benchmarks/plan_parts.py), and unloading what a run
    loaded (FFmpeg, numpy, the HTTP stack) 0.3 s after its last line, which the system
    does at once. The atexit handlers still run (a wrapper's, logging's), and with another
    thread alive it exits as usual. Called in-process (tests, the Python API), it exits as
    usual.
    """
    if _AS_PROCESS and threading.active_count() == 1:
        atexit._run_exitfuncs()  # what exit runs before tearing down, in the same order
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except OSError:
            pass  # a closed pipe: Python's own exit reports it, as before
        else:
            os._exit(code)
    if code:
        sys.exit(code)


def main() -> None:
    """Entry point of the `runner` console script."""
    global _AS_PROCESS
    _AS_PROCESS = True
    # httpx imports its own command-line client whenever rich is installed, and with it
    # rich and pygments: 0.1-0.2 s of every start, before a run's first request. This
    # process never runs that client, so its import is refused (a None in sys.modules)
    # and httpx does what it does without rich. The runner's progress bar imports rich
    # itself when it shows.
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
    try:
        cli(standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        # Under --detailed-exitcode 2 means "work to do", so a bad flag must say 1.
        sys.exit(1 if "--detailed-exitcode" in sys.argv[1:] else exc.exit_code)
    except click.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
