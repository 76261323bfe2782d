"""One row of the decision table per test, through `plan --json` and `run`, which agree.

Each test sets up a row's situation for a paid provider (`provider: aimlapi`, sent to a real
sandbox on loopback with `--base-url`), asks `runner plan --json` what a run would do, runs
it, and checks with the sandbox's own counters that the run did exactly that: paid for a
generation when and only when the plan said so, and called the API only when the plan's
action needs it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

from runner.cli import cli
from runner.sandbox import RunningSandbox, SandboxConfig, start_in_thread

from .conftest import make_image

KEY = "test_key_for_decisions"
SPEC = """\
version: 1
name: table
provider: aimlapi
model: runway/gen4_turbo
matrix:
  seed: [1, 2]
params:
  image_url: images/mountain.png
  prompt: a slow push over the ridge
  duration: 5
output: "seed-{{ seed }}.mp4"
"""
API_ACTIONS = {"submit", "collect", "reconcile"}


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    """A real sandbox on loopback with tiny latency and small clips."""
    with start_in_thread(SandboxConfig(latency=0.05, jitter=0.0, scale=8, fps=4)) as running:
        yield running


class Project:
    """A spec in a folder, run through the real CLI against one sandbox."""

    def __init__(self, root: Path, sandbox: RunningSandbox) -> None:
        self.root = root
        self.sandbox = sandbox
        make_image(root / "images")
        (root / "table.yaml").write_text(SPEC, encoding="utf-8")
        self.folder = root / "outputs" / "table"
        self.store = root / "store"

    def cli(self, *args: str, store: bool = False) -> Result:
        extra = ["--store", str(self.store)] if store else []
        env = {"AIMLAPI_API_KEY": KEY, "RUNNER_STORE": None}
        runner = CliRunner(env=env)
        with _cwd(self.root):
            return runner.invoke(cli, [*args, *extra], catch_exceptions=False)

    def plan(self, *flags: str, store: bool = False) -> dict[str, Any]:
        result = self.cli("plan", "--json", "table.yaml", *flags, store=store)
        assert result.exit_code == 0, result.output
        return dict(json.loads(result.stdout))

    def run(self, *flags: str, store: bool = False) -> Result:
        fast = ["--base-url", self.sandbox.base_url, "--poll-min", "0.02", "--poll-max", "0.1"]
        return self.cli("run", "table.yaml", *fast, *flags, store=store)

    def stats(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.sandbox.base_url}/_sandbox/stats").json())

    def reset_stats(self) -> None:
        httpx.delete(f"{self.sandbox.base_url}/_sandbox/stats")

    def videos(self) -> dict[str, str]:
        """sha256 of every video in the spec's folder, computed here (not by the runner)."""
        return {
            p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(self.folder.glob("*.mp4"))
        }


class _cwd:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> None:
        import os

        self.old = Path.cwd()
        os.chdir(self.path)

    def __exit__(self, *exc: object) -> None:
        import os

        os.chdir(self.old)


@pytest.fixture
def project(tmp_path: Path, sandbox: RunningSandbox) -> Project:
    return Project(tmp_path, sandbox)


def agree(project: Project, plan: dict[str, Any], *flags: str, store: bool = False) -> Result:
    """Run and check the run did what the plan said: submissions and API calls."""
    project.reset_stats()
    result = project.run(*flags, store=store)
    stats = project.stats()
    assert stats["submissions"] == plan["submissions"], (plan, result.output)
    assert stats["duplicate_submissions"] == 0
    calls_api = any(r["action"] in API_ACTIONS for r in plan["requests"])
    if not calls_api:
        assert stats["requests"] == 0, result.output
    return result


def statuses(plan: dict[str, Any]) -> list[tuple[str, str, bool]]:
    return [(r["status"], r["action"], r["paid"]) for r in plan["requests"]]


def finished(project: Project, *, store: bool = False) -> dict[str, str]:
    """Run the spec to the end once; return its videos' hashes."""
    result = project.run(store=store)
    assert result.exit_code == 0, result.output
    return project.videos()


def test_new_is_submitted_and_paid(project: Project) -> None:
    """new: the plan counts two paid submissions and the run makes exactly those."""
    plan = project.plan()
    assert statuses(plan) == [("new", "submit", True)] * 2 and plan["submissions"] == 2
    result = agree(project, plan)
    assert result.exit_code == 0, result.output
    assert (project.root / "table.yaml.lock").is_file()


def test_done_makes_no_call(project: Project) -> None:
    """done: a finished spec plans nothing and a run makes no API call at all."""
    finished(project)
    plan = project.plan()
    assert statuses(plan) == [("done", "skip", False)] * 2
    assert agree(project, plan).exit_code == 0


def test_adopt_from_the_lock_file(project: Project) -> None:
    """adopt: without the manifest, the lock file vouches for the videos; no call, no change."""
    before = finished(project)
    (project.folder / "manifest.jsonl").unlink()
    plan = project.plan()
    assert statuses(plan) == [("adopt", "adopt", False)] * 2
    assert agree(project, plan).exit_code == 0
    assert project.videos() == before
    assert statuses(project.plan()) == [("done", "skip", False)] * 2


def test_adopt_from_the_sidecars(project: Project) -> None:
    """adopt: without manifest and lock file, each sidecar vouches for its video."""
    before = finished(project)
    (project.folder / "manifest.jsonl").unlink()
    (project.root / "table.yaml.lock").unlink()
    plan = project.plan()
    assert statuses(plan) == [("adopt", "adopt", False)] * 2
    assert agree(project, plan).exit_code == 0
    assert project.videos() == before


def test_restore_from_the_store(project: Project) -> None:
    """restore: a deleted video comes back from the store, byte-identical, no API call."""
    before = finished(project, store=True)
    (project.folder / "seed-1.mp4").unlink()
    plan = project.plan(store=True)
    assert statuses(plan) == [("restore", "restore", False), ("done", "skip", False)]
    assert agree(project, plan, store=True).exit_code == 0
    assert project.videos() == before


def test_stored_on_a_fresh_machine_then_pull(project: Project) -> None:
    """stored: with outputs/ gone, the store answers: no call; `pull` brings the same bytes."""
    before = finished(project, store=True)
    shutil.rmtree(project.root / "outputs")
    plan = project.plan(store=True)
    assert statuses(plan) == [("stored", "skip", False)] * 2
    assert agree(project, plan, store=True).exit_code == 0
    project.reset_stats()
    pulled = project.cli("pull", "table.yaml", store=True)
    assert pulled.exit_code == 0, pulled.output
    assert project.stats()["requests"] == 0
    assert project.videos() == before


def test_recover_from_the_generation(project: Project) -> None:
    """recover: no store, the video is gone: it is fetched again from its generation, free."""
    before = finished(project)
    shutil.rmtree(project.root / "outputs")
    plan = project.plan()
    assert statuses(plan) == [("recover", "collect", False)] * 2
    result = agree(project, plan)
    assert result.exit_code == 0, result.output
    assert project.videos() == before  # the sandbox gives a generation's bytes again
    assert "0 new" in result.output and "2 fetched again" in result.output


def test_lost_when_the_provider_forgot(project: Project, tmp_path: Path) -> None:
    """lost: the generation is gone too: listed, exit 1, nothing paid until asked."""
    finished(project)
    shutil.rmtree(project.root / "outputs")
    with start_in_thread(SandboxConfig(latency=0.05, jitter=0.0, scale=8, fps=4)) as other:
        project.sandbox = other  # a sandbox that never heard of these generations
        plan = project.plan()
        assert statuses(plan) == [("recover", "collect", False)] * 2
        result = agree(project, plan)
        assert result.exit_code == 1 and "lost" in result.output
        plan = project.plan()
        assert statuses(plan) == [("lost", "report", False)] * 2
        assert agree(project, plan).exit_code == 1
        again = project.plan("--regenerate-lost")
        assert statuses(again) == [("new", "submit", True)] * 2
        assert agree(project, again, "--regenerate-lost").exit_code == 0


def test_pending_is_polled_not_resubmitted(project: Project) -> None:
    """pending: a generation left running is polled by the next run, never bought again."""
    project.sandbox.configure(**{"latency": 2.0})
    first = project.run("--timeout", "1")
    assert first.exit_code == 1 and "still pending" in first.output, first.output
    plan = project.plan()
    assert statuses(plan) == [("pending", "collect", False)] * 2
    assert agree(project, plan).exit_code == 0


def test_failed_is_reported_then_retried_when_asked(project: Project) -> None:
    """failed: reported without a call; --retry-failed pays again (plan and run agree)."""
    project.sandbox.configure(**{"faults": {"failed_generation": {"first": 1}}})
    assert project.run().exit_code == 1
    plan = project.plan()
    assert sorted(statuses(plan)) == [("done", "skip", False), ("failed", "report", False)]
    assert agree(project, plan).exit_code == 1
    retry = project.plan("--retry-failed")
    assert sorted(statuses(retry)) == [("done", "skip", False), ("new", "submit", True)]
    assert agree(project, retry, "--retry-failed").exit_code == 0


def test_force_pays_again(project: Project) -> None:
    """--force: every done request becomes a paid submission, in the plan and in the run."""
    finished(project)
    plan = project.plan("--force")
    assert statuses(plan) == [("new", "submit", True)] * 2
    assert agree(project, plan, "--force").exit_code == 0


def test_unknown_is_settled_from_the_usage_logs(project: Project) -> None:
    """unknown: an accepted POST whose answer was lost is found in the logs, not paid twice."""
    project.sandbox.configure(**{"faults": {"drop_after_accept": {"first": 1}}})
    result = project.run()
    assert result.exit_code == 0, result.output
    stats = project.stats()
    assert stats["submissions"] == 2 and stats["duplicate_submissions"] == 0
    plan = project.plan()
    assert statuses(plan) == [("done", "skip", False)] * 2


def test_unknown_without_usage_logs_is_reported(project: Project) -> None:
    """unknown: a provider without usage logs keeps the old rule: reported, not resent."""
    project.sandbox.configure(**{"logs": False, "faults": {"drop_after_accept": {"first": 1}}})
    first = project.run()
    assert first.exit_code == 1 and "unknown" in first.output
