"""The provider registry is the one source of provider names, URLs, keys and extras."""

from __future__ import annotations

import click
import pytest

from runner.cli import reproduce
from runner.errors import UsageError
from runner.providers import PROVIDERS, SANDBOX_KEY, api_key, describe, get_provider, key_env_vars
from runner.spec import KEY_ENV_VARS


def test_three_providers_with_their_urls_and_keys() -> None:
    """aimlapi and apilaplas have a base URL and key variable; the sandbox has neither."""
    assert sorted(PROVIDERS) == ["aimlapi", "apilaplas", "sandbox"]
    assert PROVIDERS["aimlapi"].base_url == "https://api.aimlapi.com"
    assert PROVIDERS["apilaplas"].base_url == "https://api.apilaplas.com"
    assert PROVIDERS["sandbox"].base_url is None and PROVIDERS["sandbox"].key_env is None
    assert key_env_vars() == ("AIMLAPI_API_KEY", "APILAPLAS_API_KEY")


def test_extras_are_only_claimed_where_documented() -> None:
    """Usage logs, price catalog and metrics are the AI/ML API's, and the sandbox emulates
    them (so the tests exercise them offline); Apilaplas documents none of them."""
    aimlapi, apilaplas, sandbox = (PROVIDERS[n] for n in ("aimlapi", "apilaplas", "sandbox"))
    assert aimlapi.usage_logs and aimlapi.price_catalog and aimlapi.metrics
    assert aimlapi.cost_headers and aimlapi.client_request_id and aimlapi.unified_endpoint
    assert apilaplas.unified_endpoint
    assert not (apilaplas.usage_logs or apilaplas.price_catalog or apilaplas.metrics)
    assert sandbox.usage_logs and sandbox.price_catalog and sandbox.metrics


def test_reproduce_provider_choices_come_from_the_registry() -> None:
    """`runner reproduce --provider` offers exactly the registry's providers."""
    option = next(p for p in reproduce.params if p.name == "provider")
    assert isinstance(option.type, click.Choice)
    assert list(option.type.choices) == sorted(PROVIDERS)


def test_the_spec_secret_check_watches_every_key_variable() -> None:
    """runner.spec's key scan covers each provider's key variable (it keeps its own tuple)."""
    assert set(KEY_ENV_VARS) == set(key_env_vars())


def test_keys_come_from_the_environment_only() -> None:
    """api_key reads the provider's variable, fails clearly without it, never for the sandbox."""
    aimlapi = get_provider("aimlapi")
    assert api_key(aimlapi, {"AIMLAPI_API_KEY": " k3y \n"}) == "k3y"
    with pytest.raises(UsageError, match="set AIMLAPI_API_KEY in the environment"):
        api_key(aimlapi, {})
    assert api_key(get_provider("sandbox"), {}) == SANDBOX_KEY
    with pytest.raises(UsageError, match="use one of: aimlapi, apilaplas, sandbox"):
        get_provider("openai")


def test_describe_names_every_provider_and_its_key() -> None:
    """The schema's provider description is built from the registry."""
    text = describe()
    for provider in PROVIDERS.values():
        assert provider.name in text
        assert (provider.key_env or "no key") in text
