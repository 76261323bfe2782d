"""The providers the runner can talk to: one registry of what each one is and offers.

Every fact about a provider lives here: its base URL, the environment variable holding
its key, and which of the API's extras it has. The spec schema's `provider` enum
(scripts/build_spec_schema.py), the CLI's `--provider` choices and the key checks are
all built from `PROVIDERS`. Also here: the output root (`outputs/`, `outputs/_sandbox/`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from runner.errors import UsageError


@dataclass(frozen=True, slots=True)
class Provider:
    """One API provider and the extras it offers beyond submit, poll and download."""

    name: str
    title: str  # how help texts name it
    base_url: str | None  # None: the embedded sandbox, started in-process
    key_env: str | None  # environment variable holding the key; None needs no key
    # Every video model on POST/GET /v2/video/generations (besides the legacy vendor paths).
    unified_endpoint: bool = False
    usage_logs: bool = False  # GET /v2/logs: one row per request, with its cost
    price_catalog: bool = False  # GET /v1/models?include=pricing
    metrics: bool = False  # GET /models/metrics: latency percentiles per model
    cost_headers: bool = False  # x-aimlapi-credits-used / -usd-spent on every response
    client_request_id: bool = False  # X-Client-Request-Id echoed and kept in the logs


# Apilaplas is the AI/ML API's white-label twin: the same video endpoints are documented
# for it, its extras are not, so none are assumed.
PROVIDERS: dict[str, Provider] = {
    "aimlapi": Provider(
        "aimlapi", "the AI/ML API", "https://api.aimlapi.com", "AIMLAPI_API_KEY",
        unified_endpoint=True, usage_logs=True, price_catalog=True, metrics=True,
        cost_headers=True, client_request_id=True,
    ),
    "apilaplas": Provider(
        "apilaplas", "Apilaplas", "https://api.apilaplas.com", "APILAPLAS_API_KEY",
        unified_endpoint=True,
    ),
    # The sandbox emulates every extra, so the tests exercise what aimlapi offers.
    "sandbox": Provider(
        "sandbox", "the embedded sandbox emulator", None, None,
        unified_endpoint=True, usage_logs=True, price_catalog=True, metrics=True,
        cost_headers=True, client_request_id=True,
    ),
}

SANDBOX_KEY = "sandbox-key"  # the embedded sandbox accepts any bearer key; this one is ours


def key_env_vars() -> tuple[str, ...]:
    """Return every environment variable that holds a provider's key."""
    return tuple(p.key_env for p in PROVIDERS.values() if p.key_env is not None)


def describe() -> str:
    """Return one sentence naming every provider and where its key comes from."""
    parts = []
    for provider in PROVIDERS.values():
        where = f"key from {provider.key_env}" if provider.key_env else "no key, no network"
        parts.append(f"{provider.name} ({provider.title}; {where})")
    return "Who runs the generations: " + ", ".join(parts) + "."


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
