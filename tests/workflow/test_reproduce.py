"""`runner reproduce`: same request again, beside the original, never over it, linked."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from runner.cli import cli
from runner.manifest import Manifest, read_state
from runner.repro_names import REPRO_DIR
from runner.request import Request, materialize
from runner.sandbox import RunningSandbox

from .conftest import SWEEP, hand_spec, run_on_sandbox


def reproduce(sandbox: RunningSandbox, *args: str) -> Result:
    """Invoke `runner reproduce ARGS --base-url <sandbox>` in-process."""
    return CliRunner().invoke(cli, ["reproduce", *args, "--base-url", sandbox.base_url])


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def done(in_tmp: Path, sandbox: RunningSandbox) -> Path:
    """A finished sandbox sweep in ./outputs/_sandbox/sweep (4 videos + 1 more)."""
    summary = run_on_sandbox(hand_spec(in_tmp, SWEEP), Path("outputs"), sandbox)
    assert {r.outcome for r in summary.reports} == {"done"}
    return Path("outputs/_sandbox/sweep")


def submissions(sandbox: RunningSandbox) -> int:
    return int(sandbox.stats()["submissions"])


def test_reproduces_same_bytes_beside_original_with_linked_sidecars(
    done: Path, sandbox: RunningSandbox
) -> None:
    """One POST of the recorded body; seed-1.repro-1.mp4 equals the original; sidecars link."""
    original = done / "16x9" / "seed-1.mp4"
    before = submissions(sandbox)
    result = reproduce(sandbox, str(original))
    assert result.exit_code == 0, result.output
    assert "same bytes as the original" in result.output
    repro = done / "16x9" / "seed-1.repro-1.mp4"
    assert digest(repro) == digest(original)
    assert submissions(sandbox) == before + 1
    by_body = sandbox.stats()["submissions_by_body"]
    assert sorted(by_body.values()) == [1] * 4 + [2]  # only that body was sent again
    new = json.loads(repro.with_suffix(".json").read_text(encoding="utf-8"))
    old = json.loads(original.with_suffix(".json").read_text(encoding="utf-8"))
    assert new["reproduction_of"] == "16x9/seed-1.mp4"
    assert new["output"] == "16x9/seed-1.repro-1.mp4"
    assert new["id"] == old["id"] and new["payload"] == old["payload"] and new["seed"] == 1
    assert new["sha256"] == old["sha256"] and new["generation_id"] != old["generation_id"]
    assert old["reproductions"] == ["16x9/seed-1.repro-1.mp4"]
    assert set(read_state(done)) == {json.loads(p.read_text())["id"] for p in
                                     done.glob("*/seed-?.json")}  # spec manifest untouched


def test_never_overwrites_and_numbers_onwards(done: Path, sandbox: RunningSandbox) -> None:
    """Reproducing twice (by id prefix, then from the repro) makes repro-1 then repro-2."""
    original = done / "9x16" / "seed-2.mp4"
    rid = json.loads(original.with_suffix(".json").read_text(encoding="utf-8"))["id"]
    assert reproduce(sandbox, rid[:8]).exit_code == 0
    first = done / "9x16" / "seed-2.repro-1.mp4"
    kept = {p: digest(p) for p in (original, first)}
    mtimes = {p: p.stat().st_mtime_ns for p in kept}
    result = reproduce(sandbox, str(first))  # a reproduction of the reproduction
    assert result.exit_code == 0, result.output
    assert (done / "9x16" / "seed-2.repro-2.mp4").is_file()
    assert {p: digest(p) for p in kept} == kept
    assert {p: p.stat().st_mtime_ns for p in kept} == mtimes
    listed = json.loads(original.with_suffix(".json").read_text(encoding="utf-8"))
    assert listed["reproductions"] == ["9x16/seed-2.repro-1.mp4", "9x16/seed-2.repro-2.mp4"]
    gallery = (done / "index.html").read_text(encoding="utf-8")
    assert "seed-2.repro-2.mp4" in gallery  # the spec's gallery was refreshed


def test_changed_image_is_a_clear_error_and_nothing_is_sent(
    done: Path, sandbox: RunningSandbox
) -> None:
    """An input image edited since the run: exit 2, one line saying so, no POST, no file."""
    image = Path("images/mountain.png")
    image.write_bytes(image.read_bytes() + b"\0")
    before = submissions(sandbox)
    result = reproduce(sandbox, str(done / "16x9" / "seed-1.mp4"))
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: images/mountain.png: the image_url image changed")
    assert submissions(sandbox) == before
    assert not list(done.glob("*/*.repro-*"))


def test_missing_image_and_unknown_targets_are_usage_errors(
    done: Path, sandbox: RunningSandbox
) -> None:
    """A deleted image, an unknown id, a missing file: exit 2, one line each, no POST."""
    Path("images/mountain.png").rename("images/mountain.png.bak")
    before = submissions(sandbox)
    cases = {
        str(done / "16x9" / "seed-1.mp4"): "the image_url image this video was made from",
        "0123456789abcdef": "no request with id",
        "outputs/_sandbox/sweep/16x9/seed-9.mp4": "no such file",
        "xyz": "neither a file nor a request id",
        "images/mountain.png.bak": "no sidecar beside the video",
    }
    for target, message in cases.items():
        result = reproduce(sandbox, target)
        assert result.exit_code == 2, target
        assert message in result.output and "Traceback" not in result.output
    assert submissions(sandbox) == before


def test_interrupted_reproduction_is_collected_not_paid_again(
    done: Path, sandbox: RunningSandbox
) -> None:
    """A repro whose POST was recorded before a crash is polled on rerun, never resubmitted."""
    sidecar = json.loads((done / "16x9" / "seed-2.json").read_text(encoding="utf-8"))
    spec = hand_spec(Path("."), [{"seed": 2, "ratio": "16:9"}])
    (request,) = spec.requests
    repro = Request(**{**_fields(request), "id": f"{sidecar['id']}.repro-1",
                       "spec_name": f"sweep/{REPRO_DIR}", "output": "../16x9/seed-2.repro-1.mp4"})
    generation_id = asyncio.run(_post(sandbox, materialize(request.body, spec.images)))
    with Manifest.open(done / REPRO_DIR) as manifest:  # what a killed reproduce leaves
        manifest.record_submitting(repro)
        manifest.record_submitted(repro.id, generation_id)
    before = submissions(sandbox)
    result = reproduce(sandbox, str(done / "16x9" / "seed-2.mp4"))
    assert result.exit_code == 0, result.output
    assert "collected the interrupted reproduction" in result.output
    assert submissions(sandbox) == before
    assert digest(done / "16x9" / "seed-2.repro-1.mp4") == digest(done / "16x9" / "seed-2.mp4")


def test_unknown_outcome_blocks_until_the_user_says_so(
    done: Path, sandbox: RunningSandbox
) -> None:
    """A repro whose POST outcome is unknown is not resent without --resubmit-unknown."""
    sidecar = json.loads((done / "16x9" / "seed-1.json").read_text(encoding="utf-8"))
    (request,) = hand_spec(Path("."), [{"seed": 1, "ratio": "16:9"}]).requests
    repro = Request(**{**_fields(request), "id": f"{sidecar['id']}.repro-1",
                       "spec_name": f"sweep/{REPRO_DIR}", "output": "../16x9/seed-1.repro-1.mp4"})
    with Manifest.open(done / REPRO_DIR) as manifest:
        manifest.record_submitting(repro)  # killed before the generation id was recorded
    before = submissions(sandbox)
    blocked = reproduce(sandbox, str(done / "16x9" / "seed-1.mp4"))
    assert blocked.exit_code == 2 and "--resubmit-unknown" in blocked.output
    assert submissions(sandbox) == before
    allowed = reproduce(sandbox, str(done / "16x9" / "seed-1.mp4"), "--resubmit-unknown")
    assert allowed.exit_code == 0, allowed.output
    assert (done / "16x9" / "seed-1.repro-2.mp4").is_file()  # repro-1 stays the unknown one
    assert submissions(sandbox) == before + 1


def _fields(request: Request) -> dict[str, object]:
    return {name: getattr(request, name) for name in Request.__dataclass_fields__}


async def _post(sandbox: RunningSandbox, body: dict[str, object]) -> str:
    """Submit `body` to the sandbox as the engine would and return the generation id."""
    async with httpx.AsyncClient(base_url=sandbox.base_url) as client:
        answer = await client.post("/v2/generate/video/runway/generation", json=body,
                                   headers={"Authorization": "Bearer test"})
        answer.raise_for_status()
        return str(answer.json()["id"])
