"""Every catalog model end to end: validate, plan bodies that match its schema, run to a video.

One spec holds a job per model (portable names only: prompt, image, last_image and what
the model's schema requires), `runner plan --json` must give each job a body its route's
schema accepts with the values in the model's own wire fields, and a real run against
the sandbox must leave a complete H.264 MP4 for every model. Then the families the issue
names are checked field by field.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner, Result
from PIL import Image

from runner.catalog import Model, Route, load_catalog
from runner.cli import cli
from runner.sandbox import RunningSandbox, SandboxConfig, start_in_thread
from tests.oracles import mp4_problem

PROMPT = "A slow push over a misty ridge at dawn"
STANDIN = "data:image/png;base64,iVBORw0KGgo="


def _params(model: Model, route: Route) -> dict[str, Any]:
    """Return the fewest params that make a valid request to `route`, portable where it can."""
    schema = route.schema()
    required = set(schema.get("required", [])) - {"model"}
    params: dict[str, Any] = {}
    if "prompt" in route.fields:
        params["prompt"] = PROMPT
    first, last = route.images.first, route.images.last
    wants_image = "image-to-video" in model.capabilities
    if first is not None and (first.split(".")[0] in required or wants_image):
        params["image"] = "images/frame.png"
    if last is not None and last.split(".")[0] in required:
        params["last_image"] = "images/frame.png"
    taken = {route.wire_name(p) or p for p in params}
    taken = {t.split(".")[0] for t in taken}
    for name in sorted(required - taken):
        prop = schema["properties"][name]
        if any(p.split(".")[0] == name for p in route.images.other):
            params[name] = ["images/frame.png"] * max(1, int(prop.get("minItems", 1)))
        elif "enum" in prop:
            params[name] = prop["enum"][0]
        elif prop.get("type") == "string":
            params[name] = PROMPT
        else:
            pytest.fail(f"{model.name}: cannot fill required {name!r}: {prop}")
    return params


def _spec(folder: Path) -> Path:
    Image.new("RGB", (64, 36), (90, 120, 160)).save(_mkdir(folder / "images") / "frame.png")
    jobs = {}
    models = sorted(load_catalog().models.values(), key=lambda m: m.name)
    for number, model in enumerate(models):
        params = _params(model, model.default_route)
        jobs[f"m{number:03d}"] = {"model": model.name, "params": params}
    spec = {"version": 1, "name": "catalog", "provider": "aimlapi", "jobs": jobs,
            "max_requests": 1000}
    path = folder / "catalog.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _cli(folder: Path, *args: str) -> Result:
    old = Path.cwd()
    os.chdir(folder)
    try:
        return CliRunner(env={"AIMLAPI_API_KEY": "test_key_catalog"}).invoke(
            cli, list(args), catch_exceptions=False
        )
    finally:
        os.chdir(old)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with start_in_thread(SandboxConfig(latency=0.0, jitter=0.0, render="cheap",
                                       concurrency=32)) as running:
        yield running


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("catalog-run")
    spec = _spec(folder)
    done = _cli(folder, "plan", "--json", str(spec.name))
    assert done.exit_code == 0, done.output
    return folder, json.loads(done.stdout)


def _standin(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("sha256:"):
        return STANDIN
    if isinstance(value, list):
        return [_standin(v) for v in value]
    if isinstance(value, dict):
        return {k: _standin(v) for k, v in value.items()}
    return value


def test_every_model_plans_a_body_its_schema_accepts(planned: tuple[Path, dict[str, Any]]) -> None:
    """For each of the catalog's models the planned body passes its route's JSON Schema."""
    _, plan = planned
    models = load_catalog().models
    assert len(plan["requests"]) == len(models)
    for row in plan["requests"]:
        model = models[row["model"]]
        route = model.route_at(row["endpoint"])
        assert route is not None and route is model.default_route
        schema = dict(route.schema())
        schema.pop("$schema", None)
        errors = list(jsonschema.Draft202012Validator(schema).iter_errors(_standin(row["payload"])))
        assert not errors, (row["model"], [e.message for e in errors])
        assert row["seed_derived"] == (route.seed is not None)
        assert ("seed" in row["payload"]) == (route.seed is not None)


def test_every_model_runs_to_a_verified_video(
    planned: tuple[Path, dict[str, Any]], sandbox: RunningSandbox
) -> None:
    """A run against the sandbox ends with one complete H.264 MP4 per catalog model."""
    folder, plan = planned
    done = _cli(folder, "run", "catalog.yaml", "--base-url", sandbox.base_url,
                "--concurrency", "16", "--poll-min", "0.02", "--poll-max", "0.1")
    assert done.exit_code == 0, done.output
    videos = sorted((folder / "outputs" / "catalog").rglob("*.mp4"))
    assert len(videos) == len(plan["requests"])
    assert [str(v) for v in videos if mp4_problem(v) is not None] == []
    assert sandbox.stats()["duplicate_submissions"] == 0


# Per family: the model, the portable params written, and the wire fields they must reach.
FAMILIES = [
    ("Runway legacy", "runway/gen4_turbo", None, {"image": "images/frame.png", "ratio": "9:16"},
     {"image_url": "sha256:", "ratio": "9:16", "seed": int}),
    ("Runway unified", "runway/gen4_turbo", "unified",
     {"image": "images/frame.png", "last_image": "images/frame.png", "ratio": "9:16"},
     {"image_url": "sha256:", "tail_image_url": "sha256:", "aspect_ratio": "9:16", "seed": int}),
    ("Kling i2v", "klingai/v2.1-master-image-to-video", None,
     {"image": "images/frame.png", "negative_prompt": "blur", "duration": 10},
     {"image_url": "sha256:", "negative_prompt": "blur", "duration": 10, "seed": None}),
    ("Kling t2v", "klingai/v2.1-master-text-to-video", None, {"ratio": "1:1"},
     {"aspect_ratio": "1:1", "seed": None}),
    ("Veo", "google/veo3", None, {"ratio": "9:16"}, {"aspect_ratio": "9:16", "seed": int}),
    ("Wan", "alibaba/wan2.2-i2v-plus", None, {"image": "images/frame.png"},
     {"image_url": "sha256:", "seed": int}),
    ("MiniMax", "minimax/hailuo-02", None,
     {"image": "images/frame.png", "last_image": "images/frame.png"},
     {"image_url": "sha256:", "last_image_url": "sha256:", "seed": None}),
    ("Luma", "luma/ray-2", None, {"image": "images/frame.png", "last_image": "images/frame.png"},
     {"keyframes": {"frame0": {"type": "image", "url": "sha256:"},
                    "frame1": {"type": "image", "url": "sha256:"}}, "seed": None}),
    ("PixVerse", "pixverse/v5/image-to-video", None, {"image": "images/frame.png"},
     {"image_url": "sha256:", "seed": int}),
    ("Seedance", "bytedance/seedance-1-0-pro-i2v", None,
     {"image": "images/frame.png", "last_image": "images/frame.png"},
     {"image_url": "sha256:", "last_image_url": "sha256:", "seed": int}),
    ("Sora", "openai/sora-2-i2v", None, {"image": "images/frame.png"},
     {"image_url": "sha256:", "seed": None}),
]


def _matches(expected: Any, actual: Any) -> bool:
    if expected is int:
        return isinstance(actual, int)
    if isinstance(expected, str) and expected == "sha256:":
        return isinstance(actual, str) and actual.startswith("sha256:")
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            _matches(v, actual.get(k)) for k, v in expected.items()
        )
    return bool(expected == actual)


@pytest.mark.parametrize(("family", "model", "endpoint", "params", "wire"), FAMILIES,
                         ids=[f[0] for f in FAMILIES])
def test_portable_params_reach_each_family_s_wire_fields(
    family: str, model: str, endpoint: str | None, params: dict[str, Any],
    wire: dict[str, Any], tmp_path: Path, sandbox: RunningSandbox,
) -> None:
    """Portable names land in the model's own fields; no seed where the model has none;
    the sandbox accepts the body and renders it."""
    Image.new("RGB", (64, 36), (200, 80, 40)).save(_mkdir(tmp_path / "images") / "frame.png")
    found = load_catalog().get(model)
    assert found is not None, model
    spec: dict[str, Any] = {"version": 1, "name": "family", "provider": "aimlapi",
                            "model": model, "params": {"prompt": PROMPT, **params}}
    if endpoint is not None:
        spec["endpoint"] = endpoint
    (tmp_path / "family.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    done = _cli(tmp_path, "plan", "--json", "family.yaml")
    assert done.exit_code == 0, done.output
    (row,) = json.loads(done.stdout)["requests"]
    payload = row["payload"]
    for key, expected in wire.items():
        if expected is None:
            assert key not in payload, (family, payload)
        else:
            assert _matches(expected, payload.get(key)), (family, key, payload)
    run = _cli(tmp_path, "run", "family.yaml", "--base-url", sandbox.base_url,
               "--poll-min", "0.02", "--poll-max", "0.1")
    assert run.exit_code == 0, run.output
    (video,) = (tmp_path / "outputs" / "family").rglob("*.mp4")
    assert mp4_problem(video) is None


def test_reproducing_a_seedless_model_says_it_is_another_take(
    tmp_path: Path, sandbox: RunningSandbox
) -> None:
    """A model without a seed: no seed is sent, and reproduce says the result is a new take."""
    spec = {"version": 1, "name": "takes", "provider": "aimlapi",
            "model": "klingai/v2.1-master-text-to-video", "params": {"prompt": PROMPT}}
    (tmp_path / "takes.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    fast = ["--base-url", sandbox.base_url, "--poll-min", "0.02", "--poll-max", "0.1"]
    assert _cli(tmp_path, "run", "takes.yaml", *fast).exit_code == 0
    (video,) = (tmp_path / "outputs" / "takes").glob("*.mp4")
    again = _cli(tmp_path, "reproduce", str(video.relative_to(tmp_path)), *fast[:2])
    assert again.exit_code == 0, again.output
    assert "takes no seed" in again.output and "new take" in again.output
    sidecar = json.loads(video.with_suffix(".json").read_text(encoding="utf-8"))
    assert "seed" not in sidecar["payload"] and sidecar["seed"] is None
