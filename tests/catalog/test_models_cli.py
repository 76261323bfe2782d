"""`runner models`: the catalog listing, one model's parameters, JSON that matches its schema."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import Result

from runner.catalog import load_catalog
from runner.schemas import validator_for

OUTPUT_SCHEMA = "output/models.schema.json"


def as_json(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    errors = [e.message for e in validator_for(OUTPUT_SCHEMA).iter_errors(data)]
    assert errors == [], errors
    return data


def test_listing_has_one_line_per_model(run_cli: Callable[..., Result]) -> None:
    """The table has a header, every catalog model once, and a closing count."""
    result = run_cli("models")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["MODEL", "FAMILY", "SEED"]
    names = [line.split()[0] for line in lines[1:-1]]
    assert names == sorted(load_catalog().models)
    assert lines[-1].startswith(f"{len(names)} models")
    gen4 = next(line for line in lines if line.startswith("runway/gen4_turbo "))
    assert "Runway" in gen4 and "runway,unified" in gen4 and "5,10" in gen4


def test_filters_combine(run_cli: Callable[..., Result]) -> None:
    """--capability (repeatable) and --family narrow the list together."""
    data = as_json(run_cli("models", "--json", "--capability", "image-to-video",
                           "--capability", "seed", "--family", "kling"))
    assert data["models"] == []  # no Kling model takes a seed
    data = as_json(run_cli("models", "--json", "--capability", "text-to-video",
                           "--family", "Sora"))
    assert [m["name"] for m in data["models"]] == ["openai/sora-2-pro-t2v", "openai/sora-2-t2v"]
    assert all(not m["seed"] for m in data["models"])


def test_json_listing_matches_its_schema_and_names_the_docs(
    run_cli: Callable[..., Result],
) -> None:
    """`runner models --json` validates against schemas/output/models.schema.json."""
    data = as_json(run_cli("models", "--json"))
    catalog = load_catalog()
    assert data["format_version"] == 1
    assert data["docs"] == {"repository": "aimlapi/api-docs", "commit": catalog.docs_commit}
    assert len(data["models"]) == len(catalog.models)
    assert {e["name"] for e in data["excluded"]} == set(catalog.excluded)
    gen4 = next(m for m in data["models"] if m["name"] == "runway/gen4_turbo")
    assert gen4["routes"][0] == {
        "name": "runway", "endpoint": "/v2/generate/video/runway/generation", "default": True,
    }


@pytest.mark.parametrize(
    "name", ["runway/gen4_turbo", "luma/ray-2", "klingai/video-v3-pro-image-to-video", "veo2"]
)
def test_json_detail_matches_its_schema(name: str, run_cli: Callable[..., Result]) -> None:
    """`runner models NAME --json` validates and lists each route's parameters."""
    data = as_json(run_cli("models", name, "--json"))
    model = data["model"]
    assert model["name"] == name
    assert model["routes"][0]["default"] is True
    for route in model["routes"]:
        assert route["parameters"] and all(p["name"] != "model" for p in route["parameters"])


def test_detail_shows_types_enums_defaults_and_portable_names(
    run_cli: Callable[..., Result],
) -> None:
    """gen4_turbo's page shows both routes, the unified field names and their portable names."""
    result = run_cli("models", "runway/gen4_turbo")
    assert result.exit_code == 0
    text = result.stdout
    assert text.startswith("runway/gen4_turbo — Gen 4 Turbo (Runway)\n")
    assert "route runway (default): POST /v2/generate/video/runway/generation" in text
    assert "route unified (spec: endpoint: unified): POST /v2/video/generations" in text
    assert "portable names: image -> image_url, last_image -> tail_image_url, " \
           "ratio -> aspect_ratio" in text
    assert ("  aspect_ratio: one of 16:9, 9:16, 4:3, 3:4, 1:1, 21:9; default \"16:9\"; "
            "portable: ratio") in text
    assert "  seed: integer 0..4294967295" in text
    assert "  image_url: string; required; portable: image" in text


def test_unknown_model_is_one_line_with_did_you_mean(run_cli: Callable[..., Result]) -> None:
    """A misspelt model exits 2 with a suggestion; a left-out one says why."""
    result = run_cli("models", "runway/gen4_trbo")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == "error: unknown model 'runway/gen4_trbo' — did you mean " \
                            "'runway/gen4_turbo'?\n"
    result = run_cli("models", "pixverse/lip-sync")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: model 'pixverse/lip-sync' is left out of the catalog")
    assert "needs an input video" in result.stderr and len(result.stderr.splitlines()) == 1


def test_unknown_filter_values_are_one_line(run_cli: Callable[..., Result]) -> None:
    """A misspelt capability or family exits 2 with a suggestion."""
    result = run_cli("models", "--capability", "sed")
    assert result.exit_code == 2
    assert result.stderr == "error: unknown capability 'sed' — did you mean 'seed'?\n"
    result = run_cli("models", "--family", "Klingg")
    assert result.exit_code == 2
    assert result.stderr == "error: unknown family 'Klingg' — did you mean 'Kling'?\n"
