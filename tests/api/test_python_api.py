"""`runner.validate` / `plan` / `run` and their awaitable twins: the commands' behaviour,
options as keyword arguments, typed results, the commands' errors, any event loop."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import runner
from runner import python_api
from runner.cli import cli
from runner.manifest import read_state
from runner.sandbox import RunningSandbox
from runner.spec import load_specs

BAD_SPEC = "specs/typo.yaml"


def write_bad_spec() -> Path:
    """Write a copy of dragon.yaml with a duration gen4_turbo does not take."""
    text = Path("specs/dragon.yaml").read_text(encoding="utf-8")
    bad = Path(BAD_SPEC)
    bad.write_text(text.replace("name: dragon", "name: typo").replace("duration: 5",
                                                                      "duration: 7"),
                   encoding="utf-8")
    return bad


def cli_error_lines(*args: str) -> tuple[int, list[str]]:
    """Run the CLI in-process; return its exit code and its `error: ` lines, unprefixed."""
    result = CliRunner().invoke(cli, list(args))
    lines = [line.removeprefix("error: ") for line in result.stderr.splitlines()
             if line.startswith("error: ")]
    return result.exit_code, lines


def fast(sandbox: RunningSandbox) -> dict[str, Any]:
    """Keyword arguments sending a sandbox run to the test's server, polling briskly."""
    return {"sandbox": True, "base_url": sandbox.base_url, "poll_min": 0.01, "poll_max": 0.1}


# ------------------------------------------------------------------------ the package


def test_import_runner_loads_no_other_module_of_the_package() -> None:
    """`import runner` imports nothing but the package itself: cheap for every command."""
    code = ("import sys; before = set(sys.modules); import runner; "
            "print(' '.join(sorted(set(sys.modules) - before)))")
    added = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, timeout=60).stdout.split()
    assert added == ["runner"]


def test_the_packages_names_are_the_api() -> None:
    """Every name in runner.__all__ resolves lazily; the functions are python_api's."""
    assert set(runner.__all__) == {*runner._LAZY, "__version__"}
    for name in runner.__all__:
        assert getattr(runner, name) is not None
        assert name in dir(runner)
    assert runner.run is python_api.run and runner.arun is python_api.arun
    assert issubclass(runner.SpecError, runner.RunnerError)
    with pytest.raises(AttributeError, match="no attribute 'runn'"):
        runner.runn  # noqa: B018 - the look-up is the test


def test_the_package_ships_py_typed() -> None:
    """runner/py.typed is there, so type checkers read the package's annotations."""
    assert (Path(runner.__file__).parent / "py.typed").is_file()


# ------------------------------------------------------------------------ validate


def test_validate_returns_the_loaded_specs(in_specs: Path) -> None:
    """One path or several, str or Path: the same LoadedSpecs `load_specs` gives."""
    specs = runner.validate("specs/")
    assert [s.name for s in specs] == ["campaign", "compare", "dragon", "sweep"]
    assert specs == load_specs([Path("specs")])
    two = runner.validate([Path("specs/dragon.yaml"), "specs/sweep.yaml"])
    assert [s.name for s in two] == ["dragon", "sweep"]
    assert [len(s.requests) for s in two] == [2, len(specs[3].requests)]


def test_validate_raises_the_spec_error_the_cli_reports(in_specs: Path) -> None:
    """A bad spec: SpecError (exit code 2) with the CLI's very file:line:col problems."""
    write_bad_spec()
    with pytest.raises(runner.SpecError) as caught:
        runner.validate(["specs/"])
    assert caught.value.exit_code == 2
    problems = [str(p) for p in caught.value.problems]
    assert problems and all(p.startswith(f"{BAD_SPEC}:") for p in problems)
    assert cli_error_lines("validate", "specs/") == (2, problems)


def test_validate_reads_the_lock_files_as_the_cli_does(in_specs: Path) -> None:
    """A lock file with merge-conflict markers is the CLI's SpecError here too."""
    Path("specs/dragon.yaml.lock").write_text("<<<<<<< HEAD\n=======\n>>>>>>> other\n",
                                              encoding="utf-8")
    with pytest.raises(runner.SpecError) as caught:
        runner.validate("specs/dragon.yaml")
    (problem,) = caught.value.problems
    assert "merge conflict" in problem.message
    assert cli_error_lines("validate", "specs/dragon.yaml") == (2, [str(problem)])


# ------------------------------------------------------------------------ plan


@pytest.mark.parametrize(
    ("kwargs", "flags"),
    [
        ({}, []),
        ({"only": "seed=1"}, ["--only", "seed=1"]),
        ({"only": ["seed=2", "job=default"]}, ["--only", "seed=2", "--only", "job=default"]),
        ({"force": True}, ["--force"]),
        ({"retry_failed": True, "resubmit_unknown": True, "regenerate_lost": True},
         ["--retry-failed", "--resubmit-unknown", "--regenerate-lost"]),
    ],
)
def test_plan_is_what_plan_json_prints(
    in_specs: Path, sandbox: RunningSandbox, kwargs: dict[str, Any], flags: list[str]
) -> None:
    """After a run of one spec, every flag as a keyword gives the CLI's decisions."""
    runner.run("specs/dragon.yaml", output_dir="out", **fast(sandbox))
    plan = runner.plan(["specs/"], sandbox=True, output_dir="out", **kwargs)
    assert isinstance(plan, runner.Plan)
    printed = CliRunner().invoke(
        cli, ["plan", "specs/", "--sandbox", "--output-dir", "out", "--json", *flags])
    assert printed.exit_code == 0, printed.output
    assert plan.to_json() == json.loads(printed.stdout)
    statuses = {e.status for e in plan.entries if e.spec == "specs/dragon.yaml"}
    assert statuses == ({"new"} if kwargs.get("force") else {"done"})


# ------------------------------------------------------------------------ run


def test_run_takes_the_clis_options_and_returns_the_summary(
    in_specs: Path, sandbox: RunningSandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    """only/concurrency/output_dir/reports/progress as keywords; a rerun sends nothing."""
    summary = runner.run(["specs/dragon.yaml"], concurrency=1, only="seed=2", output_dir="out",
                         reports=["ci/run.json", "ci/junit.xml"], progress=True,
                         **fast(sandbox))
    assert isinstance(summary, runner.RunSummary) and summary.exit_code == 0
    assert [(r.outcome, r.output, r.paid) for r in summary.reports] == [
        ("done", "16x9/seed-2.mp4", True)]
    assert Path("out/_sandbox/dragon/16x9/seed-2.mp4").is_file()
    assert not Path("out/_sandbox/dragon/16x9/seed-1.mp4").exists()
    assert json.loads(Path("ci/run.json").read_text(encoding="utf-8"))["counts"]["done"] == 1
    assert "<testcase " in Path("ci/junit.xml").read_text(encoding="utf-8")
    assert "run: 1 requests" in capsys.readouterr().err  # the command's progress lines
    again = runner.run("specs/dragon.yaml", only="seed=2", output_dir="out", **fast(sandbox))
    assert [r.outcome for r in again.reports] == ["already_done"]
    assert sandbox.stats()["submissions"] == 1


def test_failed_requests_are_in_the_summary_not_an_exception(
    in_specs: Path, sandbox: RunningSandbox
) -> None:
    """A generation the API fails: the call returns, the summary's exit code is 1."""
    sandbox.configure(faults={"failed_generation": {"first": 1, "rate": 0.0}})
    summary = runner.run("specs/dragon.yaml", output_dir="out", **fast(sandbox))
    assert sorted(r.outcome for r in summary.reports) == ["done", "failed"]
    assert summary.exit_code == 1


def test_a_missing_key_is_the_clis_usage_error(
    in_specs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No AIMLAPI_API_KEY for a real provider: UsageError (exit code 2), as the CLI says."""
    monkeypatch.delenv("AIMLAPI_API_KEY", raising=False)
    with pytest.raises(runner.UsageError) as caught:
        runner.run(["specs/dragon.yaml"], output_dir="out")
    assert caught.value.exit_code == 2 and "AIMLAPI_API_KEY" in str(caught.value)
    code, lines = cli_error_lines("run", "specs/dragon.yaml", "--output-dir", "out")
    assert (code, lines) == (2, [str(caught.value)])
    assert not Path("out").exists()  # refused before anything was written


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"concurrency": 0}, "--concurrency must be at least 1"),
        ({"poll_min": 0.0}, "poll_min=0.0 is below 0.01"),
        ({"poll_max": float("nan")}, "poll_max=nan is below 0.01"),
        ({"timeout": 0.5}, "timeout=0.5 is below 1"),
        ({"poll_min": 5.0, "poll_max": 1.0}, "--poll-max (1 s) is below --poll-min (5 s)"),
        ({"only": "sed=1"}, "did you mean 'seed'"),
        ({"only": "seed"}, "is not KEY=VALUE"),
    ],
)
def test_bad_options_are_usage_errors(in_specs: Path, kwargs: dict[str, Any], says: str) -> None:
    """Each out-of-range or malformed option: one UsageError line (exit code 2), no run."""
    with pytest.raises(runner.UsageError) as caught:
        runner.run("specs/dragon.yaml", sandbox=True, output_dir="out", **kwargs)
    assert says in str(caught.value) and caught.value.exit_code == 2
    assert "\n" not in str(caught.value)
    assert not Path("out").exists()


def test_no_paths_is_a_usage_error() -> None:
    """An empty list of spec paths is refused with a hint, as the CLI refuses none."""
    for call in (runner.validate, runner.plan, runner.run):
        with pytest.raises(runner.UsageError, match="no spec paths given"):
            call([])


# ------------------------------------------------------------------------ event loops


def test_sync_calls_inside_a_running_loop_raise_the_same_errors(
    in_specs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From a coroutine: SpecError and UsageError cross the worker thread unchanged."""
    write_bad_spec()
    monkeypatch.delenv("AIMLAPI_API_KEY", raising=False)
    caught: list[BaseException] = []

    async def main() -> None:
        for call in (lambda: runner.validate(BAD_SPEC), lambda: runner.run("specs/dragon.yaml")):
            try:
                call()
            except runner.RunnerError as exc:
                caught.append(exc)

    asyncio.run(main())
    assert [type(e) for e in caught] == [runner.SpecError, runner.UsageError]


def test_awaitables_run_side_by_side_in_the_callers_loop(
    in_specs: Path, sandbox: RunningSandbox
) -> None:
    """avalidate, aplan, then two aruns of different specs gathered in one loop."""

    async def main() -> tuple[Any, ...]:
        specs = await runner.avalidate("specs/")
        plan = await runner.aplan("specs/dragon.yaml", sandbox=True, output_dir="out")
        runs = await asyncio.gather(
            runner.arun("specs/dragon.yaml", output_dir="out", **fast(sandbox)),
            runner.arun("specs/sweep.yaml", output_dir="out", only="seed=11", **fast(sandbox)),
        )
        return specs, plan, *runs

    specs, plan, dragon, sweep = asyncio.run(main())
    assert len(specs) == 4 and plan.counts["new"] == 2
    assert [r.outcome for r in dragon.reports] == ["done", "done"]
    assert sweep.reports and {r.outcome for r in sweep.reports} == {"done"}
    assert sandbox.stats()["submissions"] == 2 + len(sweep.reports)


def test_interrupting_a_sync_run_in_a_running_loop_saves_its_state(
    in_specs: Path, sandbox: RunningSandbox
) -> None:
    """Ctrl-C while `runner.run` waits in a notebook-like loop: KeyboardInterrupt once the
    run has wound down; both submissions are recorded, so the next run only collects."""
    sandbox.configure(latency=4.0)  # the generations are still running when Ctrl-C comes
    main_thread = threading.main_thread().ident
    assert main_thread is not None and threading.get_ident() == main_thread

    def interrupt_after_the_posts() -> None:
        # Once both answers are in the manifest: a POST still in flight would rightly end
        # `unknown` (sent, answer never heard), which is not what this test is about.
        for _ in range(2000):  # bounded: at most ~20 s
            states = read_state(Path("out/_sandbox/dragon")).values()
            if len(states) == 2 and all(s.generation_id for s in states):
                signal.pthread_kill(main_thread, signal.SIGINT)
                return
            time.sleep(0.01)

    async def cell() -> None:
        runner.run("specs/dragon.yaml", output_dir="out", **fast(sandbox))

    # Like Jupyter's (and unlike asyncio.run's), this loop leaves SIGINT to Python, which
    # raises KeyboardInterrupt in whatever the main thread is doing.
    loop = asyncio.new_event_loop()
    helper = threading.Thread(target=interrupt_after_the_posts)
    helper.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(cell())
    finally:
        helper.join()
        loop.close()
    states = read_state(Path("out/_sandbox/dragon"))
    assert sorted(s.status for s in states.values()) == ["pending", "pending"]
    assert all(s.generation_id for s in states.values())
    resumed = runner.run("specs/dragon.yaml", output_dir="out", **fast(sandbox))
    assert [r.outcome for r in resumed.reports] == ["done", "done"]
    assert sandbox.stats()["submissions"] == 2  # collected, never submitted again
