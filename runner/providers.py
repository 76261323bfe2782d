"""The providers the runner can talk to: base URL and where the key comes from."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from runner.errors import UsageError


@dataclass(frozen=True, slots=True)
class Provider:
    """One API provider."""

    name: str
    base_url: str | None  # None: the embedded sandbox, started in-process
    key_env: str | None  # environment variable holding the key; None needs no key
    usage_logs: bool = False  # GET /v2/logs lists each request with its client request id


PROVIDERS: dict[str, Provider] = {
    "aimlapi": Provider("aimlapi", "https://api.aimlapi.com", "AIMLAPI_API_KEY", True),
    "apilaplas": Provider("apilaplas", "https://api.apilaplas.com", "APILAPLAS_API_KEY", True),
    "sandbox": Provider("sandbox", None, None, True),
}

SANDBOX_KEY = "sandbox-key"  # the embedded sandbox accepts any bearer key; this one is ours


def get_provider(name: str) -> Provider:
    """Return the provider called `name`."""
    try:
        return PROVIDERS[name]
    except KeyError:
        known = ", ".join(sorted(PROVIDERS))
        msg = f"unknown provider {name!r} — use one of: {known}"
        raise UsageError(msg) from None


def has_usage_logs(name: str) -> bool:
    """Return whether provider `name` lists requests in usage logs (runner.reconcile)."""
    return get_provider(name).usage_logs


def api_key(provider: Provider, environ: dict[str, str] | None = None) -> str:
    """Return the provider's API key from the environment, or fail before any request."""
    if provider.key_env is None:
        return SANDBOX_KEY
    env = os.environ if environ is None else environ
    key = env.get(provider.key_env, "").strip()
    if not key:
        msg = (
            f"no API key for provider {provider.name!r} — set {provider.key_env} in the "
            f"environment (or run with --sandbox to use the embedded emulator)"
        )
        raise UsageError(msg)
    return key


SANDBOX_OUTPUTS = "_sandbox"  # spec names start with a letter or digit, so this never clashes


def output_root(output_dir: Path | None, *, sandbox: bool) -> Path:
    """Return the output root: the one given, else outputs/ (outputs/_sandbox/ for --sandbox).

    Emulator runs get their own tree so a `--sandbox` try-out can never replace a video
    that a real (paid) run made at the same output path.
    """
    if output_dir is not None:
        return output_dir
    root = Path("outputs")
    return root / SANDBOX_OUTPUTS if sandbox else root
