"""The published spec schema checks params per model, for editors, check-jsonschema and us."""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from runner.cli import cli
from runner.providers import PROVIDERS
from runner.schemas import RunnerValidator, load_schema, schemas_dir
from tests.catalog.conftest import FIXTURES, ROOT, load_script

SPEC_SCHEMA = ROOT / "schemas" / "spec.schema.json"
FOUR_ERRORS = FIXTURES / "four_errors.yaml"


def check_jsonschema(*files: Path) -> subprocess.CompletedProcess[str]:
    """Run check-jsonschema (the PyPI tool editors' CI uses) on spec files."""
    tool = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    assert tool is not None, "check-jsonschema is missing: pip install -e '.[test]'"
    return subprocess.run(
        [tool, "--schemafile", str(SPEC_SCHEMA), *map(str, files)],
        capture_output=True, text=True, timeout=120, check=False,
    )


@functools.cache
def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SPEC_SCHEMA.read_text(encoding="utf-8"))
    return loaded


@functools.cache
def validator() -> Any:
    return RunnerValidator(schema())


def errors(spec: dict[str, Any]) -> list[tuple[str, str]]:
    """Return (path, keyword) of every schema error in a spec (given as data)."""
    return sorted(
        (".".join(map(str, e.absolute_path)), str(e.validator))
        for e in validator().iter_errors(spec)
    )


def test_committed_spec_schema_is_the_generated_one() -> None:
    """schemas/spec.schema.json equals what scripts/build_spec_schema.py makes of it."""
    builder = load_script("build_spec_schema")
    current = SPEC_SCHEMA.read_text(encoding="utf-8")
    assert builder.render(builder.build(json.loads(current))) == current, (
        "stale: run python scripts/build_spec_schema.py"
    )


def _subschemas(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _subschemas(value)
    elif isinstance(node, list):
        for value in node:
            yield from _subschemas(value)


@pytest.mark.parametrize("relative", sorted(
    str(path.relative_to(schemas_dir())) for path in schemas_dir().rglob("*.schema.json")
))
def test_every_shipped_schema_is_valid_json_schema(relative: str) -> None:
    """Each schema file runner loads is valid 2020-12 with our keyword (`validator_for`
    no longer checks at run time what this checks once)."""
    RunnerValidator.check_schema(load_schema(relative))


def test_generated_rules_are_valid_json_schema() -> None:
    """Every rule and params check under x-catalog is valid 2020-12 on its own.

    The metaschema check does not descend into x-catalog (that keeps check-jsonschema and
    editors fast), so this is where those subschemas are checked.
    """
    whole = schema()
    catalog = whole["x-catalog"]
    for part in ("rules", "params"):
        for name, sub in catalog[part].items():
            RunnerValidator.check_schema(sub)
            for ref in (s["$ref"] for s in _subschemas(sub) if "$ref" in s):
                target: Any = whole
                for piece in ref.removeprefix("#/").split("/"):
                    target = target[piece.replace("~1", "/").replace("~0", "~")]
                assert isinstance(target, dict), f"{name}: {ref} resolves to nothing"


def test_provider_and_model_enums_come_from_the_registries() -> None:
    """The provider enum is PROVIDERS; the model enum is every catalog model."""
    from runner.catalog import load_catalog

    defs = schema()["$defs"]
    assert defs["provider"]["enum"] == sorted(PROVIDERS)
    assert defs["model"]["enum"] == sorted(load_catalog().models)
    assert set(defs["endpoint"]["enum"]) == {"unified", "runway", "kling", "google", "alibaba"}


def test_check_jsonschema_rejects_the_four_error_spec() -> None:
    """gen4_trbo, promt, ratio 17:9 and duration 7 are each reported by check-jsonschema."""
    done = check_jsonschema(FOUR_ERRORS)
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    assert "$.model: 'runway/gen4_trbo' is not one of" in out
    assert "'promt' was unexpected" in out
    ratios = "['16:9', '9:16', '4:3', '3:4', '1:1', '21:9']"
    assert f"$.params.ratio: '17:9' is not one of {ratios}" in out
    assert "$.params.duration: 7 is not one of [5, 10]" in out


def test_check_jsonschema_accepts_every_example_spec() -> None:
    """Every spec in specs/ passes check-jsonschema."""
    specs = sorted((ROOT / "specs").glob("*.yaml"))
    assert specs
    done = check_jsonschema(*specs)
    assert done.returncode == 0, done.stdout + done.stderr


def test_runner_validate_reports_the_four_errors_in_words(
    run_cli: Callable[..., Result],
) -> None:
    """`runner validate` gives one positioned line per error, each saying how to fix it."""
    result = run_cli("validate", FOUR_ERRORS)
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    prefix = f"error: {FOUR_ERRORS}"
    assert lines == [
        f"{prefix}:5:8: model: 'runway/gen4_trbo' is not allowed — did you mean "
        "'runway/gen4_turbo'? (`runner models` lists them)",
        f"{prefix}:8:3: unknown key 'promt' in params — did you mean 'prompt'?",
        f"{prefix}:9:10: params.ratio: '17:9' is not allowed — models named runway/... take "
        "ratio: 16:9, 9:16, 4:3, 3:4, 1:1, 21:9",
        f"{prefix}:10:13: params.duration: 7 is not allowed — models named runway/... take "
        "duration: 5, 10",
    ]


BASE = {"version": 1, "provider": "aimlapi"}


def test_a_known_model_gets_its_own_enums_and_keys() -> None:
    """gen3a_turbo refuses 4:3 and aspect_ratio on its legacy route, and names the field."""
    spec = {**BASE, "model": "gen3a_turbo",
            "params": {"image_url": "a.png", "ratio": "4:3", "aspect_ratio": "16:9"}}
    assert errors(spec) == [("params", "additionalProperties"), ("params.ratio", "enum")]


def test_templates_pass_every_value_check() -> None:
    """A Jinja value passes type and enum checks; the runner checks it after rendering."""
    spec = {**BASE, "model": "runway/gen4_turbo", "params": {
        "image_url": "{{ image }}", "ratio": "{{ r }}", "duration": "{{ d }}",
        "seed": "{% if x %}1{% endif %}"}}
    assert errors(spec) == []
    assert errors({**spec, "params": {"image_url": "a.png", "seed": "one"}}) == [
        ("params.seed", "type"),
    ]


def test_endpoint_picks_a_route_and_its_field_names() -> None:
    """endpoint: unified allows aspect_ratio and last_image for gen4_turbo; the default does not."""
    unified = {**BASE, "model": "runway/gen4_turbo", "endpoint": "unified",
               "params": {"image": "a.png", "last_image": "b.png", "aspect_ratio": "21:9"}}
    assert errors(unified) == []
    assert errors({**unified, "endpoint": "runway"}) == [("params", "additionalProperties")]
    assert errors({**unified, "endpoint": "kling"}) == [("endpoint", "enum")]
    assert errors({**BASE, "endpoint": "unified", "jobs": {"a": {"model": "gen3a_turbo"}}}) == [
        ("", "required"),
    ]


def test_portable_and_wire_name_together_are_refused() -> None:
    """ratio and aspect_ratio for one Kling model is one error, on the wire name."""
    spec = {**BASE, "model": "klingai/v2.1-master-text-to-video",
            "params": {"prompt": "p", "ratio": "16:9", "aspect_ratio": "9:16"}}
    assert errors(spec) == [("params.aspect_ratio", "not")]


def test_jobs_are_checked_with_their_own_or_the_inherited_model() -> None:
    """A job with its own model uses it; a job without one uses the top level's."""
    spec = {**BASE, "model": "runway/gen4_turbo", "jobs": {
        "inherits": {"params": {"image_url": "a.png", "ratio": "17:9"}},
        "own": {"model": "gen3a_turbo", "params": {"image_url": "a.png", "ratio": "4:3"}},
        "fine": {"model": "gen3a_turbo", "params": {"image_url": "a.png", "ratio": "9:16"}},
    }}
    assert errors(spec) == [("jobs.inherits.params.ratio", "enum"),
                            ("jobs.own.params.ratio", "enum")]


def test_a_model_is_required_where_no_level_names_one() -> None:
    """No model anywhere: the spec (or each job without one) is told to add model: or a
    matrix axis model: (which names the models itself)."""
    assert errors({**BASE, "params": {"image_url": "a.png"}}) == [("", "anyOf")]
    jobs = {**BASE, "jobs": {"a": {"model": "gen3a_turbo"}, "b": {}}}
    assert errors(jobs) == [("jobs.b", "anyOf")]
    axis = {**BASE, "matrix": {"model": ["gen3a_turbo", "runway/gen4_turbo"]}}
    assert errors(axis) == []
    included = {**BASE, "matrix": {"include": [{"model": "gen3a_turbo"}]}}
    assert errors(included) == []


def test_the_schema_stays_cheap_to_load() -> None:
    """The part a metaschema check walks (check-jsonschema, editors) stays small
    (x-catalog is reached by $ref only)."""
    walked = {k: v for k, v in schema().items() if k != "x-catalog"}
    nodes = sum(1 for _ in _subschemas(walked))
    assert nodes < 400, f"{nodes} subschemas outside x-catalog: loading gets slow"


@pytest.mark.parametrize("name", ["dragon.yaml", "sweep.yaml", "campaign.yaml"])
def test_runner_schema_prints_the_generated_schema(name: str) -> None:
    """`runner schema` prints the file, and the example specs point editors at it."""
    from click.testing import CliRunner

    result = CliRunner().invoke(cli, ["schema"])
    assert result.output == (schemas_dir() / "spec.schema.json").read_text(encoding="utf-8")
    first = (ROOT / "specs" / name).read_text(encoding="utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=../schemas/spec.schema.json"
