"""The `runner` command line: parse, call one core function, render.

This is the only module that imports click, prints for the user, or exits. The core
raises `runner.errors.RunnerError`s; `_errors_to_exit()` turns them into one clear line
each and the documented exit code (0 done, 1 failures or runtime error, 2 bad input).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from runner import __version__
from runner.errors import RunnerError, SpecError


@contextlib.contextmanager
def _errors_to_exit() -> Iterator[None]:
    """Turn the core's errors into one line each on stderr and an exit code."""
    try:
        yield
    except SpecError as exc:
        for problem in exc.problems:
            click.echo(f"error: {problem}", err=True)
        sys.exit(exc.exit_code)
    except RunnerError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted — state is saved; run the same command again to resume", err=True)
        sys.exit(130)


PATHS = click.argument(
    "paths", nargs=-1, required=True, type=click.Path(path_type=Path, exists=False)
)


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


def main() -> None:
    """Entry point of the `runner` console script."""
    cli()
