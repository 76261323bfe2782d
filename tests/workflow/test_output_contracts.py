"""Machine contracts: every JSON the CLI prints or writes names its format and version,
validates against its schema in schemas/output/, and means one thing per field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from jsonschema import Draft202012Validator

from runner.cli import cli
from runner.sandbox import RunningSandbox

from .conftest import write_png

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "output"

SPEC = """\
version: 1
name: contract
provider: sandbox
model: runway/gen4_turbo
matrix:
  seed: [1, 2, 3]
params:
  prompt: A lighthouse at dusk, waves below
  image_url: images/mountain.png
  ratio: "16:9"
  duration: 5
output: "seed-{{ seed }}.mp4"
"""


def validator(name: str) -> Draft202012Validator:
    """The validator of schemas/output/<name>.schema.json (itself checked first)."""
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def problems(name: str, document: Any) -> list[str]:
    """Every place `document` breaks schema `name`, as `path: message` lines."""
    errors = validator(name).iter_errors(document)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]


def cli_json(*args: str) -> Any:
    """Run the CLI in-process and parse what it printed on stdout."""
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


@pytest.fixture
def outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
            sandbox: RunningSandbox) -> dict[str, Any]:
    """A sandbox run with one done, one failed and one orphaned request (the seed axis
    shrunk afterwards), then every JSON output of it: plan, saved plan, status, report."""
    monkeypatch.chdir(tmp_path)
    write_png(tmp_path / "specs" / "images" / "mountain.png")
    spec = tmp_path / "specs" / "contract.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    sandbox.configure(faults={"failed_generation": {"first": 1, "rate": 0.0}})
    fast = ["--sandbox", "--base-url", sandbox.base_url, "--poll-min", "0.01",
            "--poll-max", "0.1"]
    ran = CliRunner().invoke(cli, ["run", "specs/contract.yaml", *fast, "--concurrency", "1",
                                   "--report", "report.json"])
    assert ran.exit_code == 1, ran.output  # one failed generation
    spec.write_text(SPEC.replace("[1, 2, 3]", "[1, 2, 3, 4]"), encoding="utf-8")
    CliRunner().invoke(cli, ["run", "specs/contract.yaml", *fast, "--only", "seed=4"])
    spec.write_text(SPEC.replace("[1, 2, 3]", "[1, 2, 3, 5]"), encoding="utf-8")
    saved = CliRunner().invoke(cli, ["plan", "specs/contract.yaml", "--sandbox",
                                     "--out", "plan.json"])
    assert saved.exit_code == 0, saved.output
    return {
        "plan": cli_json("plan", "specs/contract.yaml", "--sandbox", "--json"),
        "saved": json.loads(Path("plan.json").read_text(encoding="utf-8")),
        "status": cli_json("status", "specs/contract.yaml", "--sandbox", "--json"),
        "report": json.loads(Path("report.json").read_text(encoding="utf-8")),
    }


def test_plan_saved_plan_status_and_report_validate_against_their_schemas(
    outputs: dict[str, Any]
) -> None:
    """Real output of each command, with new, done, failed and orphaned rows, is valid."""
    for key, schema in (("plan", "plan"), ("saved", "plan"), ("status", "status"),
                        ("report", "report")):
        assert problems(schema, outputs[key]) == [], key
    statuses = {r["status"] for r in outputs["plan"]["requests"]}
    assert {"new", "done", "failed", "orphaned"} <= statuses  # every kind of row was checked


def test_each_output_names_its_format_and_version(outputs: dict[str, Any]) -> None:
    """`format` and `format_version` head every object; a saved plan is a plan."""
    heads = {key: (doc["format"], doc["format_version"]) for key, doc in outputs.items()}
    assert heads == {"plan": ("runner-plan", 1), "saved": ("runner-plan", 1),
                     "status": ("runner-status", 1), "report": ("runner-report", 2)}
    for doc in outputs.values():
        assert list(doc)[:2] == ["format", "format_version"]


def test_the_schemas_refuse_what_breaks_the_contract(outputs: dict[str, Any]) -> None:
    """A missing version, an unknown status or a path where null belongs is refused."""
    plan = json.loads(json.dumps(outputs["plan"]))
    del plan["format_version"]
    plan["requests"][0]["status"] = "finished"
    plan["requests"][0]["orphaned"] = "no"
    found = problems("plan", plan)
    assert len(found) == 3, found
    status = json.loads(json.dumps(outputs["status"]))
    status["format"] = "runner-plan"
    assert problems("status", status) != []


def test_one_meaning_per_field_across_plan_status_and_report(outputs: dict[str, Any]) -> None:
    """The same request has the same spec, output (relative to the spec's folder), path
    (where the file is), seed and reason in plan, status and the report; `reason` is null
    when the status says it all; `orphaned` is a boolean in plan and status alike."""
    shared = ("spec", "spec_name", "output", "path", "seed")
    plan = {r["id"]: r for r in outputs["plan"]["requests"]}
    status = {r["id"]: r for r in outputs["status"]["requests"]}
    report = {r["id"]: r for r in outputs["report"]["requests"]}
    assert set(status) == set(plan)  # the orphans too
    for rid, row in status.items():
        assert {k: plan[rid][k] for k in (*shared, "orphaned")} == {
            k: row[k] for k in (*shared, "orphaned")}, rid
    for rid, row in report.items():
        if rid in plan and not plan[rid]["orphaned"]:
            assert {k: plan[rid][k] for k in shared} == {k: row[k] for k in shared}, rid
    done = [r for doc in (plan, status, report) for r in doc.values() if r["status"] == "done"]
    assert done and all(r["reason"] is None for r in done)
    for row in plan.values():
        if row["output"] is not None:
            assert not Path(row["output"]).is_absolute() and "outputs" not in row["output"]
            assert row["path"] == f"outputs/_sandbox/contract/{row['output']}"
    failed = [r for r in status.values() if r["status"] == "failed"]
    assert failed and all(r["reason"] for r in failed)  # a reason where it says something
    assert {r["orphaned"] for r in plan.values()} == {True, False}


def test_models_json_validates_and_names_its_format() -> None:
    """`runner models --json` and `runner models NAME --json` against models.schema.json."""
    listing = cli_json("models", "--json")
    detail = cli_json("models", "runway/gen4_turbo", "--json")
    assert problems("models", listing) == [] and problems("models", detail) == []
    assert (listing["format"], detail["format"]) == ("runner-models", "runner-model")
    assert listing["format_version"] == detail["format_version"] == 1


def test_every_output_schema_is_exercised() -> None:
    """No schema in schemas/output/ goes untested by this file."""
    names = {p.name.removesuffix(".schema.json") for p in SCHEMAS.glob("*.schema.json")}
    assert names == {"plan", "status", "report", "models"}
