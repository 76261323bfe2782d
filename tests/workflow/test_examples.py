"""The docs' CI and pre-commit examples: well-formed, and every runner call really parses."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import yaml

from runner.cli import cli

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "docs" / "examples" / "nightly.yml"
PRE_COMMIT_CONFIG = ROOT / "docs" / "examples" / "pre-commit-config.yaml"
HOOKS = ROOT / ".pre-commit-hooks.yaml"


def steps() -> list[dict[str, Any]]:
    """Return the steps of the nightly workflow's only job."""
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    (job,) = workflow["jobs"].values()
    return list(job["steps"])


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
    """Cache restore → run with reports → cache save (always) → gallery artifact (always)."""
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


def test_every_runner_call_in_the_examples_parses() -> None:
    """Each `runner …` line in the workflow and the hook uses real commands and options."""
    lines = [s["run"] for s in steps() if s.get("run", "").startswith("runner ")]
    assert len(lines) >= 3
    hook = yaml.safe_load(HOOKS.read_text(encoding="utf-8"))[0]
    lines.append(f"{hook['entry']} specs/example.yaml")
    for line in lines:
        ctx = parse_runner_call(line)
        assert ctx.params.get("paths"), line
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
