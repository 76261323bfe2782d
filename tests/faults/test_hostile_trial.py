"""What a hostile trial of 0.1.0 found: paid work lost or stuck, inputs past the promise.

Each test sets up one finding the way a user would hit it (real `runner` processes, a
real `runner sandbox serve` behind `--base-url`, files on disk) and checks the fixed
behaviour: nothing paid that could never finish, nothing paid twice, nothing deleted
that another spec paid for, one clear line for bad input.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.faults.harness import SandboxProcess, run_command, run_runner, write_spec

pytestmark = pytest.mark.slow


def runner(*args: str | Path, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `runner ARGS` in `cwd` with the test key, to its end."""
    return run_runner([sys.executable, "-m", "runner", *map(str, args)], cwd, timeout=timeout)


def plan(spec: Path, cwd: Path, *flags: str) -> dict[str, Any]:
    done = runner("plan", "--json", spec, *flags, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------ paid work lost or stuck


def test_two_specs_with_one_name_cannot_share_a_folder(
    fresh: SandboxProcess, workdir: Path
) -> None:
    """A second spec claiming another's output folder is refused by run, plan and prune;
    the first spec's paid videos stay."""
    first = write_spec(workdir, "shared", [1, 2], "the first spec's shot")
    done = run_runner(run_command(first, fresh.base_url, workdir / "outputs"), workdir)
    assert done.returncode == 0, done.stdout + done.stderr
    folder = workdir / "outputs" / "shared"
    videos = {p.name: sha(p) for p in folder.glob("*.mp4")}
    other = workdir / "other"
    other.mkdir()
    second = write_spec(other, "shared", [7], "another spec, the same name")
    fresh.reset_stats()
    for command in (
        run_command(second, fresh.base_url, workdir / "outputs"),
        [sys.executable, "-m", "runner", "plan", str(second), "--output-dir", "outputs"],
        [sys.executable, "-m", "runner", "prune", str(second), "--output-dir", "outputs",
         "--yes"],
    ):
        refused = run_runner(command, workdir)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        (line,) = refused.stderr.splitlines()
        assert "belongs to" in line and "shared.yaml" in line and "name:" in line
    assert fresh.stats()["submissions"] == 0
    assert {p.name: sha(p) for p in folder.glob("*.mp4")} == videos
    # Renamed to its own folder, the second spec runs.
    second.write_text(second.read_text().replace("name: shared", "name: mine"))
    assert run_runner(run_command(second, fresh.base_url, workdir / "outputs"), workdir
                      ).returncode == 0


def test_sandbox_results_never_land_in_the_paid_tree(fresh: SandboxProcess, workdir: Path) -> None:
    """`run --sandbox --output-dir outputs` and `provider: sandbox` both write under
    outputs/_sandbox/; a paid run pointed into the sandbox tree is refused."""
    spec = write_spec(workdir, "tree", [1], "the same shot")
    paid = workdir / "outputs" / "tree"
    done = run_runner(run_command(spec, fresh.base_url, workdir / "outputs"), workdir)
    assert done.returncode == 0
    before = {p.name: sha(p) for p in paid.glob("*") if p.is_file()}
    tried = run_runner([*run_command(spec, fresh.base_url, workdir / "outputs"), "--sandbox"],
                       workdir)
    assert tried.returncode == 0, tried.stderr
    assert (workdir / "outputs" / "_sandbox" / "tree" / "seed-1.mp4").is_file()
    declared = workdir / "declared.yaml"
    declared.write_text(spec.read_text().replace("provider: aimlapi", "provider: sandbox")
                        .replace("name: tree", "name: declared"))
    assert run_runner(run_command(declared, fresh.base_url, workdir / "outputs"), workdir
                      ).returncode == 0
    assert (workdir / "outputs" / "_sandbox" / "declared" / "seed-1.mp4").is_file()
    assert not (workdir / "outputs" / "declared").exists()
    into = run_runner(run_command(spec, fresh.base_url, workdir / "outputs" / "_sandbox"), workdir)
    assert into.returncode == 2 and "sandbox tree" in into.stderr
    assert {p.name: sha(p) for p in paid.glob("*") if p.is_file()} == before


def test_a_to_b_to_a_puts_back_the_video_of_the_request(
    fresh: SandboxProcess, workdir: Path
) -> None:
    """Edit a prompt, run, revert: the file at the path is B's, so A is not done: its own
    video is fetched again from its generation (free), never taken for done."""
    spec = write_spec(workdir, "aba", [1], "shot A")
    command = run_command(spec, fresh.base_url, workdir / "outputs")
    assert run_runner(command, workdir).returncode == 0
    video = workdir / "outputs" / "aba" / "seed-1.mp4"
    made_by_a = sha(video)
    spec.write_text(spec.read_text().replace("shot A", "shot B"))
    assert run_runner(command, workdir).returncode == 0
    assert sha(video) != made_by_a
    spec.write_text(spec.read_text().replace("shot B", "shot A"))
    (row,) = [r for r in plan(spec, workdir)["requests"] if r["status"] != "orphaned"]
    assert row["status"] == "recover" and not row["paid"], row
    fresh.reset_stats()
    assert run_runner(command, workdir).returncode == 0
    assert fresh.stats()["submissions"] == 0
    assert sha(video) == made_by_a


def test_a_generation_the_provider_forgot_is_lost_not_failed(
    fresh: SandboxProcess, workdir: Path
) -> None:
    """Polls answering 404 make a paid request `lost`: --retry-failed does not pay for it;
    only --regenerate-lost does, and the plan says so first."""
    spec = write_spec(workdir, "forgot", [1], "a shot")
    command = run_command(spec, fresh.base_url, workdir / "outputs")
    assert run_runner(command, workdir).returncode == 0
    shutil.rmtree(workdir / "outputs")
    other = SandboxProcess("--latency", "0.3", log=workdir / "other.log")
    other.start()  # a server that never made these generations (as if it forgot them)
    try:
        command = run_command(spec, other.base_url, workdir / "outputs")
        lost = run_runner(command, workdir)
        assert lost.returncode == 1 and "no longer knows generation" in lost.stdout
        assert "regenerate-lost" in lost.stdout
        retried = run_runner([*command, "--retry-failed"], workdir)
        assert retried.returncode == 1 and other.stats()["submissions"] == 0
        (row,) = plan(spec, workdir, "--regenerate-lost")["requests"]
        assert row["status"] == "new" and row["paid"] and "lost" in row["reason"]
        assert run_runner([*command, "--regenerate-lost"], workdir).returncode == 0
        assert other.stats()["submissions"] == 1
    finally:
        other.stop()


def test_an_unreachable_api_stops_the_run_at_once(workdir: Path) -> None:
    """--base-url to a closed port: one line, exit 1, a few seconds, nothing recorded."""
    spec = write_spec(workdir, "nowhere", list(range(1, 41)), "a shot")
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    done = run_runner(run_command(spec, f"http://127.0.0.1:{port}", workdir / "outputs"),
                      workdir, timeout=60)
    assert done.returncode == 1
    assert done.stdout.count("cannot be reached") == 1, done.stdout
    assert "40 not submitted" in done.stdout
    rows = plan(spec, workdir)["requests"]
    assert {r["status"] for r in rows} == {"new"}  # left as they were: nothing unknown


# ----------------------------------------------------------- inputs that escape the promise


def test_a_fifo_and_a_link_to_dev_zero_are_refused_not_read(workdir: Path) -> None:
    """`validate specs/` over a FIFO and a symlink to /dev/zero: one line each, no hang."""
    specs = workdir / "specs"
    specs.mkdir()
    os.mkfifo(specs / "pipe.yaml")
    os.symlink("/dev/zero", specs / "zero.yaml")
    done = runner("validate", "specs/", cwd=workdir, timeout=30)
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 2 and all("not a regular file" in line for line in lines), lines
    assert "Traceback" not in done.stderr


def test_float_seeds_are_the_integers_they_equal(workdir: Path) -> None:
    """`seed: [1.0, 1e3]` names files seed-1 and seed-1000, like the bodies it sends."""
    spec = write_spec(workdir, "floats", [1], "a shot")
    spec.write_text(spec.read_text().replace("seed: [1]", "seed: [1.0, 1.0e+3]"))
    rows = plan(spec, workdir)["requests"]
    assert sorted(r["payload"]["seed"] for r in rows) == [1, 1000]
    assert sorted(Path(r["path"]).name for r in rows) == ["seed-1.mp4", "seed-1000.mp4"]
    assert all(type(r["matrix"]["seed"]) is int for r in rows)


def test_a_huge_image_is_named_by_its_size(workdir: Path) -> None:
    """A valid 12000x8000 PNG is refused with its size, not as an unreadable image."""
    spec = write_spec(workdir, "huge", [1], "a shot")
    Image.new("1", (12000, 8000)).save(workdir / "images" / "frame.png")
    done = runner("validate", spec, cwd=workdir)
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert "12000x8000" in line and "megapixels" in line and "Pillow" not in line


def test_the_sandbox_renders_a_9000_pixel_image_in_bounded_memory(
    fresh: SandboxProcess, workdir: Path
) -> None:
    """A 9000x9000 input is accepted and rendered without the sandbox taking a gigabyte."""
    spec = write_spec(workdir, "large", [1], "a shot")
    spec.write_text(spec.read_text().replace('ratio: "16:9"', 'ratio: "1:1"'))
    Image.new("RGB", (9000, 9000), (30, 90, 160)).save(workdir / "images" / "frame.png")
    done = run_runner(run_command(spec, fresh.base_url, workdir / "outputs"), workdir)
    assert done.returncode == 0, done.stdout + done.stderr
    peak_kb = fresh.peak_rss_kb()
    assert peak_kb < 700 * 1024, f"the sandbox peaked at {peak_kb // 1024} MB"


def test_only_with_no_match_is_a_usage_error(workdir: Path) -> None:
    """`--only ratio=16x9` (no such value) says which values exist, exit 2, runs nothing."""
    spec = write_spec(workdir, "only", [1, 2], "a shot")
    for command in ("plan", "run"):
        done = runner(command, spec, "--sandbox", "--only", "ratio=16x9", cwd=workdir)
        assert done.returncode == 2, done.stdout + done.stderr
        (line,) = done.stderr.splitlines()
        assert "matches no request" in line and "16:9" in line


def test_a_sandbox_try_out_sends_the_real_run_s_derived_seeds(workdir: Path) -> None:
    """Derived seeds do not depend on where a request is sent: --sandbox previews them."""
    spec = write_spec(workdir, "seeds", [1], "a shot, take {{ take }}")
    spec.write_text(spec.read_text().replace("seed: [1]", "take: [1, 2]"))
    real = plan(spec, workdir)["requests"]
    sandbox = plan(spec, workdir, "--sandbox")["requests"]
    assert [r["seed"] for r in real] == [r["seed"] for r in sandbox]
    assert all(r["seed_derived"] for r in real)
    assert {r["id"] for r in real}.isdisjoint(r["id"] for r in sandbox)  # results stay apart


def test_vars_are_rendered_never_sent_as_braces(workdir: Path) -> None:
    """A var holding `{{ }}` is rendered (after the vars it reads) before any body is built."""
    spec = write_spec(workdir, "vars", [1, 2], "{{ shot }}")
    spec.write_text(spec.read_text().replace(
        "params:\n", 'vars:\n  subject: "a {{ creature }}"\n  creature: heron\n'
        '  shot: "{{ subject }} at dawn, take {{ seed }}"\nparams:\n'))
    rows = plan(spec, workdir)["requests"]
    assert [r["payload"]["prompt"] for r in rows] == [
        "a heron at dawn, take 1", "a heron at dawn, take 2"]


def test_outputs_blocked_on_disk_are_refused_before_paying(
    fresh: SandboxProcess, workdir: Path
) -> None:
    """A folder sitting where a video must go: one line before any POST, not paid then stuck."""
    spec = write_spec(workdir, "blocked", [1], "a shot")
    (workdir / "outputs" / "blocked" / "seed-1.mp4").mkdir(parents=True)
    done = run_runner(run_command(spec, fresh.base_url, workdir / "outputs"), workdir)
    assert done.returncode == 2 and "is a folder" in done.stderr
    assert fresh.stats()["submissions"] == 0

