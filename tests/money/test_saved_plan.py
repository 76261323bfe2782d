"""Saved plans: `plan --out`, then `run --plan` does exactly that or refuses (exit 2)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from runner.layout import MANIFEST
from runner.sandbox import RunningSandbox

from .conftest import fast, invoke

SPEC = """\
version: 1
name: shots
provider: aimlapi
model: runway/gen4_turbo
matrix:
  seed: [1, 2, 3]
params:
  image_url: images/mountain.png
  prompt: A slow push toward the mountain
  ratio: "16:9"
  duration: 5
output: "seed-{{ seed }}.mp4"
"""


@pytest.fixture
def spec(write_spec: Callable[..., Path], workdir: Path) -> Path:
    (workdir / "images").mkdir()
    Image.new("RGB", (64, 36), (30, 60, 90)).save(workdir / "images/mountain.png")
    return write_spec(SPEC, "shots.yaml")


def _plan(sandbox: RunningSandbox, spec: Path, *extra: str) -> dict:
    made = invoke("plan", "--out", "plan.json", "--base-url", sandbox.base_url, *extra, spec)
    assert made.exit_code == 0, made.output
    assert "runner run --plan plan.json" in made.stdout
    return dict(json.loads(Path("plan.json").read_text()))


def test_a_saved_plan_is_applied_exactly(sandbox: RunningSandbox, spec: Path) -> None:
    """The plan file holds every decision and its inputs; applying it submits exactly
    the planned requests with the plan's own flags, and a finished plan then refuses."""
    saved = _plan(sandbox, spec, "--only", "seed=2")
    assert saved["format"] == "runner-plan" and saved["format_version"] == 1
    assert saved["submissions"] == 1 and len(saved["requests"]) == 1
    assert saved["made_with"]["only"] == ["seed=2"]
    (item,) = saved["inputs"]
    assert item["spec"] == "shots.yaml" and item["manifest"] is None
    assert list(item["images"]) == ["images/mountain.png"]

    result = invoke("run", "--plan", "plan.json", "--poll-min", "0.02", "--poll-max", "0.1")
    assert result.exit_code == 0, result.output
    stats = sandbox.stats()
    assert stats["submissions"] == 1  # only seed 2, as planned
    assert Path("outputs/shots/seed-2.mp4").is_file()
    assert not Path("outputs/shots/seed-1.mp4").exists()

    again = invoke("run", "--plan", "plan.json")
    assert again.exit_code == 2  # the run changed the manifest: that plan is spent
    assert "of shots.yaml changed since plan.json was made" in again.stderr
    assert sandbox.stats()["submissions"] == 1


@pytest.mark.parametrize("edit", ["spec", "image", "manifest", "lock", "video"])
def test_a_saved_plan_is_refused_after_an_edit(
    sandbox: RunningSandbox, spec: Path, workdir: Path, edit: str
) -> None:
    """An edit to the spec, to an image, to the manifest, to the lock file, or a video
    deleted since the plan: `run --plan` exits 2 with one line and sends nothing."""
    first = invoke("run", spec, *fast(sandbox), "--only", "seed=1")
    assert first.exit_code == 0, first.output
    _plan(sandbox, spec)
    before = sandbox.stats()["submissions"]
    if edit == "spec":
        spec.write_text(SPEC.replace("slow push", "fast push"))
        expected = "shots.yaml changed since plan.json was made"
    elif edit == "image":
        Image.new("RGB", (64, 36), (90, 60, 30)).save(workdir / "images/mountain.png")
        expected = "image images/mountain.png of shots.yaml changed"
    elif edit == "manifest":
        with (workdir / "outputs/shots" / MANIFEST).open("a") as manifest:
            manifest.write("\n")
        expected = "the manifest of shots.yaml changed"
    elif edit == "lock":
        lock = Path("shots.yaml.lock")
        lock.write_text(lock.read_text() + "\n")
        expected = "the lock file of shots.yaml changed"
    else:
        (workdir / "outputs/shots/seed-1.mp4").unlink()
        expected = "seed-1.mp4: the plan says skip, a run would now collect"
    result = invoke("run", "--plan", "plan.json")
    assert result.exit_code == 2, result.output
    assert expected in result.stderr
    assert "make the plan again" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert sandbox.stats()["submissions"] == before


def test_run_plan_takes_nothing_the_plan_fixes(sandbox: RunningSandbox, spec: Path) -> None:
    """Spec paths or selection flags beside --plan are refused; a missing or foreign
    file is one clear error."""
    _plan(sandbox, spec)
    paths = invoke("run", "--plan", "plan.json", spec)
    assert paths.exit_code == 2 and "give no spec paths" in paths.stderr
    flag = invoke("run", "--plan", "plan.json", "--force")
    assert flag.exit_code == 2 and "drop --force" in flag.stderr
    missing = invoke("run", "--plan", "nope.json")
    assert missing.exit_code == 2 and "no such plan file: nope.json" in missing.stderr
    Path("other.json").write_text('{"requests": []}')
    foreign = invoke("run", "--plan", "other.json")
    assert foreign.exit_code == 2 and "is not a runner plan" in foreign.stderr
    assert sandbox.stats()["submissions"] == 0


def test_detailed_exitcode(sandbox: RunningSandbox, spec: Path, workdir: Path) -> None:
    """Terraform's meaning: 2 while there is work, 0 once there is none, 1 for any error
    (an invalid spec too, which is 2 without the flag)."""
    work = invoke("plan", "--detailed-exitcode", "--base-url", sandbox.base_url, spec)
    assert work.exit_code == 2, work.output
    assert invoke("run", spec, *fast(sandbox)).exit_code == 0
    assert invoke("plan", "--detailed-exitcode", spec).exit_code == 0
    spec.write_text(SPEC.replace("seed: [1, 2, 3]", "seed: [1, 2, 3]\n  bogus: "))
    broken = invoke("plan", "--detailed-exitcode", spec)
    assert broken.exit_code == 1 and "shots.yaml:" in broken.stderr
    assert invoke("plan", spec).exit_code == 2


def test_a_plan_names_its_store_by_digest_and_refuses_another(
    sandbox: RunningSandbox, spec: Path, workdir: Path
) -> None:
    """The store URL may be a CI secret: the plan file keeps only its sha256, the run
    names the store again (--store, RUNNER_STORE or runner.toml) and must match it."""
    store = workdir / "team-store"
    store.mkdir()
    _plan(sandbox, spec, "--store", str(store))
    text = Path("plan.json").read_text()
    assert str(store) not in text and "team-store" not in text
    assert json.loads(text)["made_with"]["store"].startswith("sha256:")
    other = workdir / "other-store"
    other.mkdir()
    wrong = invoke("run", "--plan", "plan.json", "--store", str(other))
    assert wrong.exit_code == 2 and "this run has another store" in wrong.stderr
    none = invoke("run", "--plan", "plan.json")
    assert none.exit_code == 2 and "this run has none" in none.stderr
    right = invoke("run", "--plan", "plan.json", "--store", str(store),
                   "--poll-min", "0.02", "--poll-max", "0.1")
    assert right.exit_code == 0, right.output
    assert sandbox.stats()["submissions"] == 3
    assert len(list(store.rglob("*.mp4"))) == 3  # the run used the plan's store
