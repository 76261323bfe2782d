"""`runner plan` and `runner validate`: statuses from a real manifest, --only, JSON shape."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from runner.decide import Flags
from runner.errors import UsageError
from runner.manifest import Manifest
from runner.planning import build_plan, select
from runner.spec import load_specs
from tests.spec.conftest import BASE, EXAMPLES, SpecWriter

SWEEP = (
    BASE
    + """
name: sweep
matrix:
  seed: [1, 2, 3, 4, 5]
  ratio: ["16:9", "1:1"]
params:
  image_url: images/frame.png
  prompt: a quiet harbour
  duration: 5
output: "{{ ratio | replace(':', 'x') }}/seed-{{ seed }}.mp4"
"""
)


def record(folder: Path, spec_path: Path, outcomes: dict[int, str]) -> None:
    """Write real manifest events for the sweep's requests (index -> outcome)."""
    (spec,) = load_specs([spec_path])
    with Manifest.open(folder) as manifest:
        for index, outcome in outcomes.items():
            request = spec.requests[index]
            manifest.record_submitting(request)
            if outcome == "unknown":
                manifest.record_unknown(request.id, "read timeout after sending")
                continue
            manifest.record_submitted(request.id, f"gen-{index}")
            if outcome == "failed":
                manifest.record_failed(
                    request.id, "content moderation", stage="generate", retryable=False
                )
            elif outcome == "done":
                video = folder / request.output
                video.parent.mkdir(parents=True, exist_ok=True)
                video.write_bytes(b"\x00" * 16)
                manifest.record_downloaded(
                    request.id,
                    output=request.output,
                    size=16,
                    sha256="0" * 64,
                    mtime_ns=video.stat().st_mtime_ns,
                    video={"duration": 5.0, "width": 1280, "height": 720, "codec": "h264"},
                    download_seconds=0.1,
                )


def test_plan_without_manifest_is_all_new(write_spec: SpecWriter, workdir: Path) -> None:
    """With no manifest, every request is new, with paths under <root>/<name>/."""
    plan = build_plan(load_specs([write_spec(SWEEP)]), workdir / "outputs")
    assert plan.counts["new"] == 10 and plan.video_seconds == 50
    assert plan.entries[0].path == str(workdir / "outputs/sweep/16x9/seed-1.mp4")


def test_plan_reads_every_status_from_the_manifest(write_spec: SpecWriter, workdir: Path) -> None:
    """done, pending, failed, unknown and orphaned come from the manifest; the rest are new."""
    spec_path = write_spec(SWEEP)
    folder = workdir / "outputs" / "sweep"
    record(folder, spec_path, {0: "done", 1: "pending", 2: "failed", 3: "unknown", 9: "done"})
    # Dropping seed 5 from the spec orphans request 9 (seed 5, 1:1) and request 8.
    spec_path.write_text(SWEEP.replace("[1, 2, 3, 4, 5]", "[1, 2, 3, 4]"))
    plan = build_plan(load_specs([spec_path]), workdir / "outputs")
    by_output = {(e.status, e.output) for e in plan.entries}
    assert all(e.path == f"{folder}/{e.output}" for e in plan.entries)
    assert ("done", "16x9/seed-1.mp4") in by_output
    assert ("pending", "1x1/seed-1.mp4") in by_output
    assert ("failed", "16x9/seed-2.mp4") in by_output
    assert ("unknown", "1x1/seed-2.mp4") in by_output
    assert ("orphaned", "1x1/seed-5.mp4") in by_output
    assert {status: n for status, n in plan.counts.items() if n} == {
        "new": 4,
        "done": 1,
        "pending": 1,
        "failed": 1,
        "unknown": 1,
        "orphaned": 1,
    }
    assert plan.seconds_to_generate == 20
    failed = next(e for e in plan.entries if e.status == "failed")
    assert "content moderation" in failed.reason and "--retry-failed" in failed.reason


def test_changed_input_and_missing_file_reasons(write_spec: SpecWriter, workdir: Path) -> None:
    """A new request at a recorded output says 'changed input'; a lost file is re-downloaded."""
    spec_path = write_spec(SWEEP)
    folder = workdir / "outputs" / "sweep"
    record(folder, spec_path, {0: "done", 1: "done"})
    (folder / "1x1/seed-1.mp4").unlink()
    spec_path.write_text(SWEEP.replace("a quiet harbour", "a stormy harbour"))
    plan = build_plan(load_specs([spec_path]), workdir / "outputs")
    first = plan.entries[0]
    assert first.status == "new" and first.reason.startswith("changed input")
    spec_path.write_text(SWEEP)
    plan = build_plan(load_specs([spec_path]), workdir / "outputs")
    gone = next(e for e in plan.entries if (e.path or "").endswith("1x1/seed-1.mp4"))
    assert gone.status == "recover" and "downloads it again" in gone.reason and not gone.paid


def test_force_and_retry_failed_preview(write_spec: SpecWriter, workdir: Path) -> None:
    """--force turns done into new ('forced'); --retry-failed turns failed into new."""
    spec_path = write_spec(SWEEP)
    record(workdir / "outputs" / "sweep", spec_path, {0: "done", 2: "failed"})
    specs = load_specs([spec_path])
    forced = build_plan(specs, workdir / "outputs", flags=Flags(force=True))
    assert forced.entries[0].status == "new" and "forced" in forced.entries[0].reason
    retried = build_plan(specs, workdir / "outputs", flags=Flags(retry_failed=True))
    assert retried.entries[2].status == "new" and retried.counts["done"] == 1


def test_select_only_by_axis_param_job_and_id(write_spec: SpecWriter) -> None:
    """--only matches axes, body params, job and id as strings; AND across keys, OR within."""
    (spec,) = load_specs([write_spec(SWEEP)])
    requests = spec.requests
    assert [r.body["seed"] for r in select(requests, [("seed", "2")])] == [2, 2]
    assert len(select(requests, ["seed=2", "ratio=1:1"])) == 1
    assert len(select(requests, [("seed", "2"), ("seed", "3")])) == 4
    assert len(select(requests, [("prompt", "a quiet harbour"), ("job", "default")])) == 10
    assert select(requests, [("id", requests[4].id)]) == [requests[4]]
    assert len(select(requests, [("duration", "5")])) == 10
    with pytest.raises(UsageError, match="did you mean 'seed'"):
        select(requests, [("sed", "1")])
    with pytest.raises(UsageError, match="KEY=VALUE"):
        select(requests, ["seed"])


def test_validate_command_ok_and_exit_codes(
    write_spec: SpecWriter, run_cli: Callable[..., Result]
) -> None:
    """validate prints one ok line per spec and exits 0; a broken spec exits 2."""
    good = write_spec(SWEEP)
    result = run_cli("validate", good)
    assert result.exit_code == 0 and result.stdout == f"ok: {good} (sweep: 10 requests)\n"
    bad = write_spec(SWEEP.replace("duration: 5", "duration: 7"), "bad.yaml")
    result = run_cli("validate", good, bad)
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {bad}:12:13: params.duration: 7 is not allowed — runway/gen4_turbo takes "
        "duration: 5, 10\n"
    )


def test_plan_json_shape(
    write_spec: SpecWriter, workdir: Path, run_cli: Callable[..., Result]
) -> None:
    """plan --json prints one object: requests with id/spec/job/status/output/path/payload."""
    spec_path = write_spec(SWEEP)
    result = run_cli("plan", "--json", "--output-dir", workdir / "out", spec_path)
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["counts"]["new"] == 10 and data["total"] == 10 and data["video_seconds"] == 50
    item = data["requests"][0]
    assert {"id", "spec", "job", "status", "output", "path", "payload"} <= set(item)
    assert item["payload"]["image_url"].startswith("sha256:")
    assert item["payload"]["seed"] == 1 and item["output"] == "16x9/seed-1.mp4"
    assert item["path"] == str(workdir / "out/sweep/16x9/seed-1.mp4")
    assert not (workdir / "out").exists()  # planning writes nothing


def test_plan_sandbox_and_only_flags(
    write_spec: SpecWriter, workdir: Path, run_cli: Callable[..., Result]
) -> None:
    """--sandbox plans sandbox ids (different from real ones); --only narrows the list."""
    spec_path = write_spec(SWEEP)
    real = json.loads(run_cli("plan", "--json", spec_path).stdout)
    fake = json.loads(run_cli("plan", "--json", "--sandbox", "--only", "seed=1", spec_path).stdout)
    assert len(fake["requests"]) == 2
    assert {r["id"] for r in fake["requests"]}.isdisjoint({r["id"] for r in real["requests"]})
    text = run_cli("plan", "--only", "ratio=1:1", spec_path).stdout.splitlines()
    assert len(text) == 7 and text[-2].startswith(
        "5 requests: 5 new — 5 to submit (paid), 25 s of video to generate"
    )
    assert text[-1].startswith("estimated cost: unknown: no price for any of the 5 (not free)")
    assert "RUNNER_PRICES=offline" in text[-1]  # says which list, and why not the live one
    result = run_cli("plan", "--only", "colour=red", spec_path)
    assert result.exit_code == 2 and "no request has 'colour'" in result.stderr


def test_examples_validate_and_stay_small(run_cli: Callable[..., Result]) -> None:
    """The shipped example specs are valid, carry the schema modeline and stay small."""
    result = run_cli("validate", EXAMPLES)
    assert result.exit_code == 0, result.stderr
    counts = {
        line.split()[1]: int(line.split("(")[1].split(":")[1].split()[0])
        for line in result.stdout.splitlines()
    }
    assert counts[str(EXAMPLES / "dragon.yaml")] <= 3
    assert counts[str(EXAMPLES / "sweep.yaml")] <= 12
    for name in ("dragon.yaml", "sweep.yaml", "campaign.yaml"):
        first = (EXAMPLES / name).read_text().splitlines()[0]
        assert first == "# yaml-language-server: $schema=../schemas/spec.schema.json"


def test_schema_command_prints_a_valid_2020_12_schema(run_cli: Callable[..., Result]) -> None:
    """`runner schema` prints the spec schema, itself valid JSON Schema 2020-12."""
    from jsonschema import Draft202012Validator

    schema = json.loads(run_cli("schema").stdout)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"].endswith("2020-12/schema")
    for example in schema["examples"]:
        assert not list(Draft202012Validator(schema).iter_errors(example))


def test_plan_totals_count_each_entry_by_its_own_rule() -> None:
    """The totals, counted in one pass: orphans describe no video, only paid entries count
    towards what a run generates and costs, and an unpriced one is never counted as free."""
    from runner.decide import Action
    from runner.planning import Plan, PlanEntry

    def entry(status: str, action: str, payload: dict[str, object], *, paid: bool = False,
              usd: float | None = None) -> PlanEntry:
        return PlanEntry(
            id=status, spec="s.yaml", spec_name="s", job="default", status=status,
            reason=status, output=None, path=None, payload=payload, matrix={}, request=None,
            action=action, paid=paid, estimated_usd=usd,
        )

    plan = Plan((
        entry("new", Action.SUBMIT, {"duration": 5}, paid=True, usd=0.25),
        entry("new", Action.SUBMIT, {}, paid=True),  # no price, no length
        entry("new", Action.SUBMIT, {"duration": 4}, paid=True, usd=0.125),
        entry("done", Action.SKIP, {"duration": 10}),
        entry("pending", Action.COLLECT, {"duration": 5}),
        entry("orphaned", Action.REPORT, {"duration": 7}),
    ))
    assert {k: n for k, n in plan.counts.items() if n} == {
        "new": 3, "done": 1, "pending": 1, "orphaned": 1,
    }
    assert (plan.submissions, plan.unpriced, plan.unknown_length, plan.work) == (3, 1, 1, 4)
    assert plan.estimated_usd == 0.375
    assert (plan.video_seconds, plan.seconds_to_generate) == (24.0, 9.0)
    plan.counts["new"] = 0  # a caller's copy: the plan's own totals stay
    assert plan.counts["new"] == 3
    summary = plan.summary()
    assert summary["total"] == 6 and summary["video_seconds_to_generate"] == 9.0


def test_the_runner_process_ends_at_once_with_its_whole_output_and_exit_code(
    write_spec: SpecWriter, workdir: Path, run_cli: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As its own process, `runner plan` exits without freeing the plan (runner.cli._finish):
    its JSON (far more than a pipe holds) still arrives whole, --detailed-exitcode still
    says 2, exactly as in-process, and atexit handlers (a wrapper's) still run."""
    spec_path = write_spec(SWEEP.replace("seed: [1, 2, 3, 4, 5]", "seed: {range: [1, 1500]}")
                           .replace("name: sweep", "name: sweep\nmax_requests: 3000"))
    args = ["plan", "--json", "--detailed-exitcode", "--output-dir", str(workdir / "out"),
            str(spec_path)]
    marker = workdir / "atexit-ran"
    wrapper = (
        "import atexit, pathlib, sys\n"
        "from runner.cli import main\n"
        f"atexit.register(pathlib.Path({str(marker)!r}).write_text, 'yes')\n"
        f"sys.argv = ['runner', *{args!r}]\n"
        "main()\n"
    )
    proc = subprocess.run([sys.executable, "-c", wrapper], capture_output=True,
                          text=True, timeout=120, check=False, cwd=workdir)
    assert proc.returncode == 2, proc.stderr
    assert marker.read_text() == "yes"
    assert len(proc.stdout) > 1_000_000  # many pipe buffers: what was not flushed is lost
    monkeypatch.chdir(workdir)  # the spec's path is shown as typed, from the same folder
    in_process = run_cli(*args)
    assert in_process.exit_code == 2
    assert json.loads(proc.stdout) == json.loads(in_process.stdout)
    assert json.loads(proc.stdout)["total"] == 3000


def test_the_runner_process_imports_httpx_without_its_command_line_client(
    tmp_path: Path,
) -> None:
    """`runner.cli.main` refuses httpx's own CLI module (it pulls in rich and pygments at
    every start); httpx still imports and works, and rich loads only when asked for."""
    probe = tmp_path / "modules.json"
    wrapper = (
        "import atexit, json, pathlib, sys\n"
        "from runner.cli import main\n"
        "def report():\n"
        "    import httpx\n"
        "    before = 'rich' in sys.modules\n"
        "    httpx.Request('GET', 'http://127.0.0.1/')\n"
        "    import rich.console\n"
        f"    pathlib.Path({str(probe)!r}).write_text(json.dumps(\n"
        "        [before, sys.modules.get('httpx._main', 0) is None]))\n"
        "atexit.register(report)\n"
        "sys.argv = ['runner', '--version']\n"
        "main()\n"
    )
    done = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(probe.read_text()) == [False, True]
