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


def main() -> None:
    """Entry point of the `runner` console script."""
    cli()
