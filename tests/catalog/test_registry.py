"""The model registry: per-family facts read from schemas/models/, and the routes' rules."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from runner.catalog import Model, PortableConflict, load_catalog
from runner.schemas import RunnerValidator, load_schema, schemas_dir
from runner.spec import load_specs

DOCS_COMMIT = "f14fa72fbcea53f909372ad0975b079f4587c70b"
UNIFIED = "/v2/video/generations"
LEGACY = "/v2/generate/video/runway/generation"


def model(name: str) -> Model:
    found = load_catalog().get(name)
    assert found is not None, f"{name} is not in the catalog"
    return found


def wire(found: Model, route: str | None = None) -> dict[str, str]:
    chosen = found.route(route)
    assert chosen is not None
    return {name: target.wire for name, target in chosen.fields.items()}


# ---------------------------------------------------------------------------- families


def test_runway_gen4_turbo_keeps_the_legacy_route_first_and_adds_unified() -> None:
    """gen4_turbo: legacy path (ratio, image_url) by default; unified (aspect_ratio, tail)."""
    found = model("runway/gen4_turbo")
    assert found.family == "Runway"
    assert [r.name for r in found.routes] == ["runway", "unified"]
    legacy, unified = found.routes
    assert legacy.endpoint == LEGACY
    assert legacy.schema_file == "models/runway-gen4_turbo.schema.json"
    assert wire(found) == {
        "prompt": "prompt", "image": "image_url", "ratio": "ratio", "duration": "duration",
        "seed": "seed",
    }
    assert unified.endpoint == UNIFIED
    assert wire(found, "unified")["ratio"] == "aspect_ratio"
    assert wire(found, "unified")["last_image"] == "tail_image_url"
    assert found.ratios == ("16:9", "9:16", "4:3", "3:4", "1:1", "21:9")
    assert found.durations == (5, 10) and found.default_duration == 5
    assert found.image_required and found.takes_seed
    assert legacy.seed is not None and (legacy.seed.minimum, legacy.seed.maximum) == (0, 2**32 - 1)
    assert found.size("21:9") == (1584, 672) and found.size("16:9") == (1280, 720)


def test_gen3a_turbo_legacy_route_has_last_image_url() -> None:
    """gen3a_turbo: last frame is last_image_url on the legacy path, tail_image_url unified."""
    found = model("gen3a_turbo")
    assert found.default_route.endpoint == LEGACY
    assert wire(found)["last_image"] == "last_image_url"
    assert wire(found, "unified")["last_image"] == "tail_image_url"
    assert found.ratios == ("16:9", "9:16")
    assert found.size("16:9") == (1280, 768)


def test_kling_image_and_text_to_video() -> None:
    """Kling: no seed; i2v needs image_url and has no ratio; t2v has three ratios."""
    i2v = model("klingai/v2.1-master-image-to-video")
    t2v = model("klingai/v2.1-master-text-to-video")
    assert i2v.family == t2v.family == "Kling"
    assert i2v.default_route.endpoint == t2v.default_route.endpoint == UNIFIED
    assert not i2v.takes_seed and not t2v.takes_seed
    assert i2v.image_required and i2v.default_route.images.first == "image_url"
    assert i2v.ratios is None and i2v.durations == (5, 10)
    assert "image-to-video" in i2v.capabilities and "text-to-video" not in i2v.capabilities
    assert t2v.ratios == ("16:9", "9:16", "1:1") and wire(t2v)["ratio"] == "aspect_ratio"
    assert "text-to-video" in t2v.capabilities and t2v.default_route.images.first is None
    assert "negative-prompt" in t2v.capabilities


def test_kling_v1_models_keep_the_legacy_kling_path_as_a_second_route() -> None:
    """kling-video/v1.6 pro i2v: unified first, the documented Kling vendor path second."""
    found = model("kling-video/v1.6/pro/image-to-video")
    assert [(r.name, r.endpoint) for r in found.routes] == [
        ("unified", UNIFIED), ("kling", "/v2/generate/video/kling/generation"),
    ]
    assert wire(found)["last_image"] == "tail_image_url"
    assert "static_mask" in found.default_route.images.other
    assert "reference-images" not in found.capabilities  # masks are not references


def test_veo() -> None:
    """Veo 3 takes a seed and 4/6/8 s; Veo 3.1 image-to-video takes no seed."""
    veo3 = model("google/veo3")
    assert veo3.family == "Veo" and veo3.takes_seed
    assert veo3.durations == (4, 6, 8) and veo3.default_duration == 8
    assert veo3.ratios == ("16:9", "9:16")
    veo31 = model("google/veo-3.1-i2v")
    assert not veo31.takes_seed and veo31.image_required
    assert "provider-routing" in veo31.capabilities
    veo2 = model("veo2")
    assert [r.name for r in veo2.routes] == ["unified", "google"]


def test_wan() -> None:
    """Wan 2.6 i2v: seed, 5/10/15 s, 720p/1080p, negative_prompt."""
    found = model("alibaba/wan-2-6-i2v")
    assert found.family == "Wan" and found.takes_seed
    assert found.durations == (5, 10, 15) and found.default_duration == 10
    assert found.resolutions == ("720p", "1080p")
    assert wire(found)["negative_prompt"] == "negative_prompt"
    t2v = model("alibaba/wan-2-6-t2v")
    assert t2v.size("16:9", "720p") == (1280, 720) and t2v.sizes_source == "derived"


def test_minimax_hailuo() -> None:
    """Hailuo 02: no seed, optional first and last frame, 6/10 s."""
    found = model("minimax/hailuo-02")
    assert found.family == "MiniMax" and not found.takes_seed
    assert not found.image_required
    assert wire(found)["image"] == "image_url" and wire(found)["last_image"] == "last_image_url"
    assert found.durations == (6, 10)
    assert {"image-to-video", "text-to-video", "last-frame"} <= set(found.capabilities)


def test_luma_keyframes() -> None:
    """Luma ray-2: images go into keyframes.frame0/frame1 as {type: image, url}."""
    found = model("luma/ray-2")
    assert found.family == "Luma" and not found.takes_seed
    route = found.default_route
    assert route.wire_name("image") == "keyframes.frame0"
    assert route.wire_name("last_image") == "keyframes.frame1"
    assert route.images.first == "keyframes.frame0.url"
    assert "9:21" in (found.ratios or ()) and found.durations == (5, 9)
    params = {"image": "a.png", "last_image": "https://example.com/b.png", "ratio": "9:21"}
    body = route.to_wire(params)
    assert body == {
        "keyframes": {
            "frame0": {"type": "image", "url": "a.png"},
            "frame1": {"type": "image", "url": "https://example.com/b.png"},
        },
        "aspect_ratio": "9:21",
    }
    assert params == {"image": "a.png", "last_image": "https://example.com/b.png", "ratio": "9:21"}
    assert list(route.image_values(body)) == [
        (("keyframes", "frame0", "url"), "a.png"),
        (("keyframes", "frame1", "url"), "https://example.com/b.png"),
    ]


def test_pixverse() -> None:
    """PixVerse v5: seed, 5/8 s; the t2v model has five ratios; transition has a tail image."""
    i2v = model("pixverse/v5/image-to-video")
    assert i2v.family == "PixVerse" and i2v.takes_seed and i2v.durations == (5, 8)
    t2v = model("pixverse/v5/text-to-video")
    assert t2v.ratios is not None and len(t2v.ratios) == 5
    assert wire(model("pixverse/v5/transition"))["last_image"] == "tail_image_url"


def test_seedance() -> None:
    """Seedance: seed, last_image_url, 2.0 takes 4-15 s and reference images."""
    pro = model("bytedance/seedance-1-0-pro-i2v")
    assert pro.family == "Seedance" and pro.takes_seed
    assert wire(pro)["last_image"] == "last_image_url"
    two = model("bytedance/seedance-2-0")
    assert two.durations == tuple(range(4, 16)) and two.default_duration == 5
    assert "reference-images" in two.capabilities
    assert two.default_route.images.other == ("image_urls.*",)


def test_sora() -> None:
    """Sora 2: no seed, 4/8/12 s, 16:9 and 9:16; sizes the docs state for 720p."""
    found = model("openai/sora-2-i2v")
    assert found.family == "Sora" and not found.takes_seed
    assert found.durations == (4, 8, 12) and found.ratios == ("16:9", "9:16")
    assert found.size("9:16", "720p") == (720, 1280) and found.sizes_source == "docs"
    assert found.size("16:9", "1080p") is None  # described, but this model offers only 720p
    assert "image-to-video" in found.capabilities


# ------------------------------------------------------------------------------ routes


def test_to_wire_maps_portable_names_and_passes_wire_fields() -> None:
    """Portable names move to the route's fields; raw wire fields stay; input is not changed."""
    route = model("klingai/v2.1-master-text-to-video").default_route
    params = {"ratio": "9:16", "prompt": "p", "cfg_scale": 0.5}
    assert route.to_wire(params) == {"aspect_ratio": "9:16", "prompt": "p", "cfg_scale": 0.5}
    assert route.to_wire({"aspect_ratio": "1:1"}) == {"aspect_ratio": "1:1"}
    legacy = model("runway/gen4_turbo").default_route
    assert legacy.to_wire({"ratio": "1:1", "image": "x"}) == {"ratio": "1:1", "image_url": "x"}


def test_to_wire_refuses_both_names_for_one_field() -> None:
    """ratio and aspect_ratio together is one line saying to write one of them."""
    route = model("klingai/v2.1-master-text-to-video").default_route
    with pytest.raises(PortableConflict, match="ratio and aspect_ratio set the same thing"):
        route.to_wire({"ratio": "9:16", "aspect_ratio": "1:1"})
    luma = model("luma/ray-2").default_route
    with pytest.raises(PortableConflict, match="keyframes.frame0"):
        luma.to_wire({"image": "a.png", "keyframes": {"frame0": {"type": "image", "url": "b"}}})


def test_parameters_describe_each_wire_field_with_its_portable_name() -> None:
    """Route.parameters() gives type, enum, default, required and the portable name."""
    route = model("runway/gen4_turbo").route("unified")
    assert route is not None
    by_name = {p.name: p for p in route.parameters()}
    assert "model" not in by_name
    ratio = by_name["aspect_ratio"]
    assert ratio.portable == ("ratio",) and ratio.default == "16:9" and ratio.enum is not None
    assert by_name["image_url"].required and by_name["image_url"].portable == ("image",)
    assert by_name["duration"].type == "integer" and by_name["duration"].default == 5
    assert by_name["seed"].maximum == 4294967295


# ---------------------------------------------------------------------- schema files


def all_routes() -> list[tuple[str, str, str]]:
    return [
        (m.name, r.name, r.schema_file) for m in load_catalog().models.values() for r in m.routes
    ]


def _leaves(schema: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = [(path, schema)] if isinstance(schema, dict) else []
    if isinstance(schema, dict):
        for name, sub in schema.get("properties", {}).items():
            found += _leaves(sub, f"{path}.{name}" if path else name)
        if isinstance(schema.get("items"), dict):
            found += _leaves(schema["items"], f"{path}.*")
        for branch in schema.get("anyOf", []) + schema.get("oneOf", []):
            found += _leaves(branch, path)
    return found


@pytest.mark.parametrize(("name", "route", "schema_file"), all_routes())
def test_every_body_schema_is_strict_json_schema(name: str, route: str, schema_file: str) -> None:
    """Each body schema is valid 2020-12, refuses unknown fields and pins its model."""
    schema = load_schema(schema_file)
    RunnerValidator.check_schema(schema)
    assert schema["additionalProperties"] is False
    assert schema["properties"]["model"] == {"const": name}
    assert "model" in schema["required"]
    for path, sub in _leaves(schema):
        default = sub.get("default")
        if sub.get("type") in ("integer", "number"):
            assert not isinstance(default, str), f"{path}: text default {default!r}"
        if path.split(".")[-1] in ("prompt", "negative_prompt"):
            assert "maxLength" not in sub, f"{path}: prompt lengths count UTF-16 units"


@pytest.mark.parametrize(("name", "route", "schema_file"), all_routes())
def test_image_fields_take_https_urls_and_data_uris(
    name: str, route: str, schema_file: str
) -> None:
    """Every first/last-frame field accepts https:// and data:image/ and refuses http://."""
    found = model(name).route(route)
    assert found is not None
    validator = RunnerValidator(load_schema(schema_file))
    leaves: dict[str, dict[str, Any]] = {}
    for path, sub in _leaves(load_schema(schema_file)):
        leaves.setdefault(path, sub)  # the field itself, before its anyOf branches
    for field in filter(None, (found.images.first, found.images.last)):
        leaf = leaves[field]
        sub = validator.evolve(schema=leaf)
        assert sub.is_valid("https://example.com/a.png"), field
        assert sub.is_valid("data:image/png;base64,iVBORw0KGgo="), field
        assert not sub.is_valid("http://example.com/a.png"), field


def test_legacy_runway_schemas_are_byte_for_byte_unchanged() -> None:
    """The two legacy schemas request ids depend on have their original bytes."""
    folder = schemas_dir() / "models"
    digests = {
        name: hashlib.sha256((folder / name).read_bytes()).hexdigest()
        for name in ("gen3a_turbo.schema.json", "runway-gen4_turbo.schema.json")
    }
    assert digests == {
        "gen3a_turbo.schema.json":
            "040fc8f5b2862a07e19bcc267e6d71825768f8295e0a69ac8eda70b5842d1098",
        "runway-gen4_turbo.schema.json":
            "a3cc2e1b66a967909d4ce9b13c75a021230d386f9768b207b56810d7d5e07b3f",
    }


def test_example_specs_keep_their_request_ids() -> None:
    """specs/*.yaml expand to the ids the release before the catalog gave them (the
    model-comparison example is new with the catalog)."""
    root = Path(__file__).resolve().parents[2]
    ids = {s.name: sorted(r.id for r in s.requests) for s in load_specs([root / "specs"])}
    ids.pop("compare")
    assert ids == {
        "campaign": ["3722a5300c2a9e65", "3e268e41b68e1ced", "7857781b47d6235a",
                     "a583b983c965a41d", "cd3f7329c0226e33", "e43f06f2347b539c"],
        "dragon": ["2d1a7a121aeb6dda", "c6189c791217ded5"],
        "sweep": ["11e38fbab9c06c76", "143e3abd459fd9dd", "15cb86975d388519",
                  "2e20d5980b10867b", "49c03124b0ce651d", "54ba9a4b5c87d51e",
                  "6089cdff6724c497", "6db44ec3db88de04", "75049f75148cae58",
                  "e7c9ff3033247a75", "fc3361d55005f78a", "fcc6781e60ae7668"],
    }


# ---------------------------------------------------------------- catalog and adapter


def test_catalog_records_the_docs_commit_and_what_it_left_out() -> None:
    """catalog.json names the docs commit; excluded models carry a reason and are not models."""
    data = json.loads((schemas_dir() / "models" / "catalog.json").read_text(encoding="utf-8"))
    assert data["docs"] == {
        "repository": "aimlapi/api-docs", "commit": DOCS_COMMIT,
        "folder": "docs/api-references/video-models",
    }
    found = load_catalog()
    assert found.docs_commit == DOCS_COMMIT
    assert len(found.models) >= 100
    assert {"pixverse/lip-sync", "runway/gen4_aleph", "klingai/avatar-pro"} <= set(found.excluded)
    for left_out in found.excluded.values():
        assert "needs" in left_out.reason and left_out.name not in found.models
    kinds = {n.kind for m in found.models.values() for n in m.notes}
    assert {"string-default", "example", "duplicate"} <= kinds


def test_every_model_is_image_or_text_to_video() -> None:
    """Each catalog model runs from text and images: i2v, t2v or reference images."""
    wanted = {"image-to-video", "text-to-video", "reference-images"}
    for found in load_catalog().models.values():
        assert wanted & set(found.capabilities), found.name
        assert found.routes and found.routes[0].endpoint.startswith("/v2/")


def test_the_legacy_runway_routes_are_what_the_runner_always_posted() -> None:
    """The two Runway models' default routes keep the endpoint, schema, sizes and image
    fields the runner used before the catalog (request ids hash these bodies)."""
    gen3a = load_catalog().get("gen3a_turbo")
    gen4 = load_catalog().get("runway/gen4_turbo")
    assert gen3a is not None and gen4 is not None
    assert (gen3a.default_route.endpoint, gen3a.default_route.schema_file) == (
        LEGACY, "models/gen3a_turbo.schema.json")
    assert (gen4.default_route.endpoint, gen4.default_route.schema_file) == (
        LEGACY, "models/runway-gen4_turbo.schema.json")
    assert gen3a.default_route.images.all() == ("image_url", "last_image_url")
    assert gen4.default_route.images.all() == ("image_url",)
    assert gen3a.default_ratio == gen4.default_ratio == "16:9"
    assert {r: gen4.size(r) for r in ("16:9", "9:16", "4:3", "3:4", "1:1", "21:9")} == {
        "16:9": (1280, 720), "9:16": (720, 1280), "4:3": (1104, 832),
        "3:4": (832, 1104), "1:1": (960, 960), "21:9": (1584, 672)}
    assert {r: gen3a.size(r) for r in ("16:9", "9:16")} == {
        "16:9": (1280, 768), "9:16": (768, 1280)}
    assert gen4.default_route.params == (
        "model", "image_url", "prompt", "ratio", "duration", "seed")


def test_select_filters_by_capability_and_family() -> None:
    """select() keeps models having every capability, of the family (any case)."""
    found = load_catalog()
    chosen = found.select(["image-to-video", "seed"], "runway")
    assert [m.name for m in chosen] == [
        "gen3a_turbo", "runway-gen3/turbo/image-to-video", "runway/gen4_turbo",
    ]
    assert all("seed" in m.capabilities for m in found.select(["seed"]))
    assert found.suggest("runway/gen4_trbo") == "runway/gen4_turbo"


def test_models_md_lists_what_was_left_out_and_the_docs_commit() -> None:
    """docs/MODELS.md names the docs commit and every excluded model with its reason."""
    root = Path(__file__).resolve().parents[2]
    text = (root / "docs" / "MODELS.md").read_text(encoding="utf-8")
    found = load_catalog()
    assert found.docs_commit in text
    for left_out in found.excluded.values():
        row = f"| `{left_out.name}` | {left_out.family} | {left_out.reason.split(';')[0]} |"
        assert row in text, f"docs/MODELS.md lacks {row}"
