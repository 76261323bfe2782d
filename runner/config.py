"""Project settings: `runner.toml`, found by walking up from the specs to the repository root.

    # runner.toml — beside the specs or at the top of the repository
    store = "s3://team-videos/runner"      # where verified videos are kept (runner.store)
    budget = 50                            # USD any one run may spend (runner.budget)

A flag wins over the environment, which wins over the file: `--store URL`, then
`RUNNER_STORE`, then `store` here. Credentials never belong in this file (the store's
library takes them from its standard chain); a URL that carries any is refused.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from runner.durable import read_regular
from runner.errors import UsageError

CONFIG_FILE = "runner.toml"
STORE_ENV = "RUNNER_STORE"
KNOWN_KEYS = frozenset({"store", "budget"})
MAX_CONFIG = 1 << 16  # bytes: a few settings
MAX_BUDGET = 1_000_000  # USD; also refuses inf, which would read as "no ceiling"


@dataclass(frozen=True, slots=True)
class Settings:
    """What the project config file says (every key optional)."""

    path: Path | None = None  # the file it came from
    store: str | None = None
    budget: float | None = None  # USD: the ceiling of every run of these specs


def find_config(paths: Sequence[Path]) -> Path | None:
    """Return the nearest `runner.toml` above the first spec path, up to the git root."""
    start = (paths[0] if paths else Path.cwd()).resolve()
    folder = start if start.is_dir() else start.parent
    for candidate in (folder, *folder.parents):
        found = candidate / CONFIG_FILE
        if found.is_file():
            return found
        if (candidate / ".git").exists():
            return None
    return None


def load_settings(paths: Sequence[Path]) -> Settings:
    """Read the project config file for these spec paths (empty settings without one)."""
    path = find_config(paths)
    if path is None:
        return Settings()
    try:
        data: dict[str, Any] = tomllib.loads(read_regular(path, MAX_CONFIG).decode("utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        msg = f"{path}: cannot read the project config ({exc}) — fix or remove it"
        raise UsageError(msg) from None
    except tomllib.TOMLDecodeError as exc:
        msg = f"{path}: not valid TOML ({exc}) — fix it"
        raise UsageError(msg) from None
    unknown = sorted(set(data) - KNOWN_KEYS)
    if unknown:
        msg = f"{path}: unknown setting {unknown[0]!r} — known: {', '.join(sorted(KNOWN_KEYS))}"
        raise UsageError(msg)
    store = data.get("store")
    if store is not None and not isinstance(store, str):
        msg = f"{path}: store must be a URL string, e.g. store = \"s3://bucket/prefix\""
        raise UsageError(msg)
    budget = data.get("budget")
    if budget is not None and (
        isinstance(budget, bool)
        or not isinstance(budget, int | float)
        or not 0 < budget <= MAX_BUDGET
    ):
        msg = (f"{path}: budget must be a positive amount in US dollars up to "
               f"{MAX_BUDGET:,}, e.g. budget = 50")
        raise UsageError(msg)
    return Settings(path=path, store=store, budget=None if budget is None else float(budget))


def store_url(
    flag: str | None, paths: Sequence[Path], environ: Mapping[str, str] | None = None
) -> str | None:
    """Return the store URL to use: `--store`, else `RUNNER_STORE`, else `runner.toml`."""
    env = os.environ if environ is None else environ
    url = flag or env.get(STORE_ENV, "").strip() or load_settings(paths).store
    if not url:
        return None
    parts = urlsplit(url)
    if parts.password or parts.username:
        msg = (
            "the store URL carries credentials — remove them; the store takes them from its "
            "standard chain (AWS_ACCESS_KEY_ID, AWS_PROFILE, …), never from a URL"
        )
        raise UsageError(msg)
    return url
