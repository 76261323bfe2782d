"""Mutation-test the modules where a bug costs money or data (mutmut 3), one at a time.

    python scripts/mutation.py [TARGET ...] [--out build/mutation/results.json] [--children 2]
        [--again | --collect-only | --compare BEFORE_JSON]

Each target is one source file (large ones limited to the functions that decide money or
data, named below with why) and the test files that exercise it. For each target the
repository is copied to build/mutation/TARGET/, mutmut mutates only that file there, runs
the target's tests once to learn which tests reach which function, and then runs each
mutant against only those tests. A mutant is `killed` (a test failed), `survived` (every
test passed), `timeout`, or `no tests` (no selected test reaches its function).
mutmut 3 leaves decorated functions alone (properties, context managers, cached
functions): the copy applies their decorators by assignment first
(scripts/mutation_decorated.py), so they are mutated like the rest.
scripts/mutation_equivalents.toml lists the lines whose surviving mutants change nothing a
user could notice, each with its function, the original line and the reason; a survivor
counts as equivalent only while its function and original line still match an entry, so
an edited line's mutants are judged afresh.

It prints one table row per target and writes the figures and every survivor's diff to
`--out` (JSON). The survivors' diffs are also in build/mutation/TARGET/survivors.txt.

How long: on this 2-core machine, shared with other work (load average 5-6), the twelve
targets first run took 43 min before the tests of issue 16 and 76 min after them
(per-target seconds are in the JSON); with `--children 1`, two or three targets at once,
templates took 4 min, lockfile 3.5 and manifest 32 (its tests fsync thousands of
records); store_base and store_local 3-15 min; store_s3, the whole file, about an hour
(one moto server serves the run, but a survivor there runs every S3 test: 1-3 min each).
Far too slow for every CI run, so CI does not run it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mutation_decorated import undecorate_file  # beside this script

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "build" / "mutation"
EQUIVALENTS = ROOT / "scripts" / "mutation_equivalents.toml"
sys.path.insert(0, str(ROOT))  # the store tests' moto server, shared by a store target's run
from tests.store.moto_server import MotoServer  # noqa: E402


@dataclass(frozen=True)
class Target:
    """One file to mutate, the tests that exercise it, and optionally its functions."""

    name: str
    path: str
    tests: tuple[str, ...]
    functions: tuple[str, ...] = ()  # mangled names (x_func, xǁClassǁmethod); () = all
    why: str = ""  # why only these functions, when limited
    moto: bool = False  # its tests reach S3: one moto server for the whole run

    @property
    def module(self) -> str:
        return self.path.removesuffix(".py").replace("/", ".")

    def patterns(self) -> list[str]:
        """Return mutmut's mutant-name globs for the chosen functions (none: all)."""
        return [f"{self.module}.{f}__mutmut_*" for f in self.functions]


TARGETS = (
    Target("decide", "runner/decide.py",
           ("tests/engine/test_resume.py", "tests/engine/test_decide_actions.py")),
    Target(
        "lifecycle", "runner/lifecycle.py",
        ("tests/engine/test_engine_mocked.py", "tests/engine/test_submit_decisions.py",
         "tests/engine/test_submit_settlement.py", "tests/engine/test_retry.py",
         "tests/engine/test_reconcile.py", "tests/engine/test_lifecycle_steps.py",
         "tests/engine/test_durable_order.py"),
        functions=("x_submit", "x__submit", "x__post", "x_reconcile", "x_replace_paid",
                   "x_cost_of", "xǁSharedǁcannot_connect", "xǁSharedǁstop_provider"),
        why="submission and retry decisions (where a payment is made, doubled or lost); "
            "polling, download and restore are covered by their own modules' targets",
    ),
    Target("retry", "runner/retry.py", ("tests/engine/test_retry.py",)),
    Target("identity", "runner/identity.py",
           ("tests/identity/test_reference_vectors.py", "tests/spec/test_units.py",
            "tests/identity/test_identities_cache.py")),
    Target("lockfile", "runner/lockfile.py",
           ("tests/storage/test_lockfile.py", "tests/engine/test_resume.py")),
    Target("manifest", "runner/manifest.py",
           ("tests/storage/test_manifest.py", "tests/storage/test_probe_sidecar_verify.py",
            "tests/storage/test_manifest_facts.py", "tests/storage/test_manifest_off_loop.py",
            "tests/engine/test_durable_order.py")),
    Target("budget", "runner/budget.py", ("tests/money/test_pricing_units.py",)),
    Target("download", "runner/download.py", ("tests/storage/test_download.py",)),
    Target("durable", "runner/durable.py",
           ("tests/storage/test_durable.py", "tests/storage/test_download.py",
            "tests/storage/test_manifest.py")),
    Target("matrix", "runner/matrix.py", ("tests/spec/test_matrix.py",)),
    Target(
        "expand", "runner/expand.py",
        ("tests/spec/test_output_clashes.py", "tests/spec/test_spec.py", "tests/spec/test_plan.py",
         "tests/spec/test_hostile.py", "tests/spec/test_expand_outputs.py"),
        functions=("xǁ_JobExpanderǁ_output", "xǁ_JobExpanderǁ_unique",
                   "xǁExpanderǁ_refuse_clashes", "x__output_problem"),
        why="the output-path checks: an escaping, clashing or runner-owned path",
    ),
    Target(
        "engine", "runner/engine.py", ("tests/engine/test_output_root.py",),
        functions=("x_refuse_escaping_outputs", "x__blocking_path"),
        why="the output-path checks before anything is written or paid",
    ),
    Target(
        "quick_checks", "runner/schema_errors.py", ("tests/spec/test_quick_checks.py",),
        functions=("x__quick_check",),
        why="the plain tests that pass a parameter value without jsonschema",
    ),
    Target("layout", "runner/layout.py",
           ("tests/spec/test_output_clashes.py", "tests/engine/test_output_root.py",
            "tests/spec/test_spec.py")),
    Target("store_base", "runner/store/base.py",
           ("tests/store/test_store.py", "tests/store/test_local_store.py"), moto=True),
    Target("store_local", "runner/store/local.py",
           ("tests/store/test_store.py", "tests/store/test_open.py",
            "tests/store/test_local_store.py"), moto=True),
    Target("store_s3", "runner/store/s3.py",
           ("tests/store/test_store.py", "tests/store/test_open.py",
            "tests/store/test_s3_faults.py", "tests/store/test_credentials.py",
            "tests/store/test_s3_store.py"), moto=True),
    Target(
        "templates", "runner/templates.py",
        ("tests/spec/test_units.py", "tests/spec/test_template_limits.py"),
        functions=("xǁ_Budgetǁtick", "xǁ_Budgetǁspend", "xǁ_Budgetǁcharge", "xǁ_Budgetǁ_late",
                   "x__size", "xǁSpecEnvironmentǁcall_binop",
                   "xǁSpecEnvironmentǁbounded_concat", "xǁSpecEnvironmentǁ_join",
                   "xǁSpecEnvironmentǁ_replace", "xǁSpecEnvironmentǁ_format",
                   "xǁSpecEnvironmentǁ_check_format", "xǁSpecEnvironmentǁ_check_bits",
                   "xǁSpecEnvironmentǁis_safe_attribute", "xǁSpecEnvironmentǁwrap_str_format",
                   "xǁSpecEnvironmentǁ_counted",
                   "x__nesting", "xǁRendererǁ_guard"),
        why="the sandbox: what a template may touch and how much work it may do",
    ),
    Target(
        "api", "runner/api.py", ("tests/engine/test_api.py", "tests/engine/test_api_mapping.py"),
        functions=("xǁApiClientǁcreate", "xǁApiClientǁ_created", "xǁApiClientǁ_created_id",
                   "xǁApiClientǁ_raise_for_auth", "xǁApiClientǁfetch", "x_map_status",
                   "x_parse_generation", "x_video_url"),
        why="the error mapping that decides whether a failed create may be retried "
            "(provably not created) or must be reconciled; logs and messages are not money",
    ),
)

STATUSES = ("killed", "survived", "timeout", "no tests", "suspicious", "skipped")


def copy_repository(dest: Path, *, fresh: bool = True) -> None:
    """Copy the working tree's files (tracked and new, not ignored) into `dest`; fresh: into
    an empty `dest` (else over it, keeping mutmut's mutants and results)."""
    if fresh:
        shutil.rmtree(dest, ignore_errors=True)
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


def configure(dest: Path, target: Target) -> None:
    """Append mutmut's settings for `target` to the copy's pyproject.toml."""
    settings = {
        "source_paths": ["runner"],
        "only_mutate": [target.path],
        "pytest_add_cli_args_test_selection": list(target.tests),
        # The run's own pytest options: quiet, and no cache writes into the copy.
        "pytest_add_cli_args": ["-p", "no:cacheprovider", "-q"],
        "use_git_change_detection": False,
        # Beside the package, as in the repository: the schemas runner loads, the specs and
        # benchmarks some tests run.
        "also_copy": ["schemas", "specs", "benchmarks", "scripts", "docs", "README.md"],
    }
    lines = ["", "[tool.mutmut]"] + [f"{k} = {json.dumps(v)}" for k, v in settings.items()]
    with (dest / "pyproject.toml").open("a", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")


class MutmutFailed(Exception):
    """mutmut stopped without results (its tests failed unmutated, or reach nothing)."""


def mutmut(dest: Path, *args: str, log: Path | None = None,
           env: dict[str, str] | None = None) -> str:
    """Run `python -m mutmut ARGS` in `dest`, `env` added; return its output (also in `log`)."""
    done = subprocess.run(
        [sys.executable, "-m", "mutmut", *args], cwd=dest,
        capture_output=True, text=True, check=False, env={**os.environ, **(env or {})},
    )
    if log is not None:
        log.write_text(done.stdout + done.stderr, encoding="utf-8")
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-3000:]
        raise MutmutFailed(f"mutmut {' '.join(args[:1])} failed in {dest}:\n{tail}")
    return done.stdout


@contextlib.contextmanager
def shared_moto(dest: Path, target: Target) -> Iterator[dict[str, str]]:
    """Yield what the mutants' test runs add to their environment: for a target whose tests
    reach S3, the name of one moto server that every run attaches to (tests/store/conftest.py).

    Each mutant's run would otherwise start its own server, 5-10 s of the 10-20 s it takes.
    """
    if not target.moto:
        yield {}
        return
    with MotoServer(log=dest / "moto.log") as server:
        yield server.shared_env()
        if not server.running:  # every mutant run after it stopped failed for that alone
            raise MutmutFailed(f"the shared moto server stopped during the run; see {server.log}")


def statuses(dest: Path, target: Target) -> dict[str, str]:
    """Return each mutant's status, only for the target's chosen functions."""
    found: dict[str, str] = {}
    for line in mutmut(dest, "results", "--all", "true").splitlines():
        name, _, status = line.strip().rpartition(": ")
        if name.startswith(target.module + "."):
            found[name] = status
    if target.functions:
        wanted = tuple(f"{target.module}.{f}__mutmut_" for f in target.functions)
        found = {k: v for k, v in found.items() if k.startswith(wanted)}
    return found


# One process for every diff: `mutmut show` per survivor costs a second of start-up each.
DIFFS = """
import json, sys
from mutmut.mutation.diff_apply import get_diff_for_mutant
path, names = sys.argv[1], json.load(sys.stdin)
print(json.dumps({name: get_diff_for_mutant(name, path=path) for name in names}))
"""


def diffs(dest: Path, target: Target, names: list[str]) -> dict[str, str]:
    """Return each named mutant's diff against the original function."""
    done = subprocess.run(
        [sys.executable, "-c", DIFFS, target.path], cwd=dest, input=json.dumps(names),
        capture_output=True, text=True, check=True,
    )
    found: dict[str, str] = json.loads(done.stdout)
    return found


def first_line(diff: str, sign: str) -> str:
    """Return the first removed ("-") or added ("+") line of a diff, stripped."""
    for line in diff.splitlines():
        if line.startswith(sign) and not line.startswith(sign * 3):
            return line[1:].strip()
    return ""


Judgements = dict[tuple[str, str], list[dict[str, str]]]


def load_equivalents() -> Judgements:
    """Return the judged-equivalent lines: (function, original line) -> their entries."""
    if not EQUIVALENTS.exists():
        return {}
    found: Judgements = {}
    for entry in tomllib.loads(EQUIVALENTS.read_text(encoding="utf-8"))["equivalent"]:
        found.setdefault((entry["function"], entry["line"].strip()), []).append(entry)
    return found


def judged_equivalent(name: str, diff: str, equivalents: Judgements) -> str | None:
    """Return the reason `name` is equivalent, or None when no entry matches it.

    An entry names the function and the original line; with `mutated` it covers only
    that one mutation of the line, without it every mutation of the line.
    """
    key = (name.partition("__mutmut_")[0], first_line(diff, "-"))
    for entry in equivalents.get(key, []):
        mutated = entry.get("mutated")
        if mutated is None or mutated.strip() == first_line(diff, "+"):
            return entry["reason"]
    return None


def run_target(target: Target, children: int, equivalents: Judgements,
               *, collect_only: bool = False, again: bool = False) -> dict[str, Any]:
    """Mutation-test one target; return its figures and its survivors' diffs."""
    dest = WORK / target.name
    started = time.monotonic()
    if again:
        run_again(dest, target, children)
    elif not collect_only:
        copy_repository(dest)
        configure(dest, target)
        undecorate_file(dest / target.path)  # mutmut skips decorated functions otherwise
        with shared_moto(dest, target) as env:
            mutmut(dest, "run", "--max-children", str(children), *target.patterns(),
                   log=dest / "run.log", env=env)
    found = statuses(dest, target)
    counts = {status: 0 for status in STATUSES}
    survivors: list[dict[str, str]] = []
    judged: list[dict[str, str]] = []
    shown = diffs(dest, target, [n for n, s in found.items() if s not in ("killed", "timeout")])
    for name, status in sorted(found.items(), key=lambda kv: _order(kv[0])):
        counts[status] = counts.get(status, 0) + 1
        if status in ("killed", "timeout"):
            continue
        diff = shown[name]
        reason = judged_equivalent(name, diff, equivalents)
        if status == "survived" and reason is not None:
            judged.append({"name": name, "reason": reason, "diff": diff})
            continue
        survivors.append({"name": name, "status": status, "diff": diff})
    (dest / "survivors.txt").write_text(
        "".join(f"# {s['name']}: {s['status']}\n{s['diff']}\n" for s in survivors),
        encoding="utf-8",
    )
    return {
        "path": target.path,
        "functions": [f.replace("x_", "", 1).replace("xǁ", "").replace("ǁ", ".")
                      for f in target.functions],
        "why_limited": target.why,
        "tests": list(target.tests),
        "mutants": len(found),
        "killed": counts["killed"],
        "timeout": counts["timeout"],
        "survived": counts["survived"] - len(judged),
        "no_tests": counts["no tests"],
        "equivalent": len(judged),
        "other": sum(counts[s] for s in ("suspicious", "skipped")),
        "seconds": round(time.monotonic() - started),
        "survivors": survivors,
        "equivalents": judged,
    }


def run_again(dest: Path, target: Target, children: int) -> None:
    """Re-test the last run's copy with the working tree's code and tests: mutmut makes new
    mutants of each changed function and tests those (and, new tests found, maps them to
    functions first), then every earlier survivor is run again; a killed mutant stays
    killed, as tests were only added. A target limited to some functions runs them whole."""
    if not (dest / "mutants").is_dir():
        raise MutmutFailed(f"no earlier run in {dest} to run again")
    copy_repository(dest, fresh=False)
    configure(dest, target)
    undecorate_file(dest / target.path)
    with shared_moto(dest, target) as env:
        mutmut(dest, "run", "--max-children", str(children), *target.patterns(),
               log=dest / "again.log", env=env)
        left = [n for n, s in statuses(dest, target).items() if s in ("survived", "no tests")]
        if left and not target.functions:
            mutmut(dest, "run", "--max-children", str(children), *left,
                   log=dest / "again-survivors.log", env=env)


def _order(name: str) -> tuple[str, int]:
    """Sort mutant names by function, then by number (so 10 follows 9)."""
    stem, _, number = name.rpartition("__mutmut_")
    return stem, int(number) if number.isdigit() else 0


def print_table(results: dict[str, dict[str, Any]]) -> None:
    """Print one row per target: mutants, killed, timeout, survived, no tests, equivalent."""
    head = ("target", "mutants", "killed", "timeout", "survived", "no tests", "equiv", "secs")
    print(" | ".join(head))
    for name, r in results.items():
        row = (name, r["mutants"], r["killed"], r["timeout"], r["survived"], r["no_tests"],
               r["equivalent"], r["seconds"])
        print(" | ".join(str(cell) for cell in row))


def compare(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> None:
    """Print a Markdown table of each target's figures before and after (docs/MUTATION.md)."""
    print("| target | mutants | killed | timeout | survived | no tests | equivalent | secs |")
    print("|---|---|---|---|---|---|---|---|")
    for t in TARGETS:
        rows = [(label, r[t.name]) for label, r in (("before", before), ("after", after))
                if t.name in r]
        for label, r in rows:
            cells = (f"{t.name} ({label})", r["mutants"], r["killed"], r["timeout"],
                     r["survived"], r["no_tests"], r["equivalent"], r["seconds"])
            print("| " + " | ".join(str(c) for c in cells) + " |")


def main() -> None:
    """Run the chosen targets (default: all, in order), print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", help="target names (default: all)")
    parser.add_argument("--out", type=Path, default=WORK / "results.json")
    parser.add_argument("--children", type=int, default=2, help="mutants run at once")
    parser.add_argument("--collect-only", action="store_true",
                        help="re-read an earlier run's results in build/mutation/TARGET "
                             "(after editing the equivalents) without running mutants")
    parser.add_argument("--again", action="store_true",
                        help="re-test the last run's survivors in build/mutation/TARGET (and "
                             "the mutants of changed functions) with the working tree's tests")
    parser.add_argument("--compare", type=Path, metavar="BEFORE_JSON",
                        help="print the Markdown table of BEFORE_JSON against --out, run nothing")
    args = parser.parse_args()
    if args.compare is not None:
        compare(*(json.loads(p.read_text(encoding="utf-8"))["targets"]
                  for p in (args.compare, args.out)))
        return
    by_name = {t.name: t for t in TARGETS}
    unknown = [n for n in args.targets if n not in by_name]
    if unknown:
        raise SystemExit(f"unknown target(s) {', '.join(unknown)}; known: {', '.join(by_name)}")
    chosen = [by_name[n] for n in args.targets] if args.targets else list(TARGETS)
    equivalents = load_equivalents()
    results: dict[str, dict[str, Any]] = {}
    if args.out.exists():  # keep other targets' figures when re-running a few
        results = json.loads(args.out.read_text(encoding="utf-8")).get("targets", {})
    for target in chosen:
        print(f"mutating {target.path} ...", flush=True)
        seconds = results.get(target.name, {}).get("seconds")
        try:
            results[target.name] = run_target(target, args.children, equivalents,
                                              collect_only=args.collect_only, again=args.again)
        except MutmutFailed as exc:  # one target's trouble must not lose the others' hours
            print(str(exc)[-600:], file=sys.stderr)
            continue
        if args.collect_only and seconds is not None:
            results[target.name]["seconds"] = seconds  # the run's time, not the re-read's
        args.out.parent.mkdir(parents=True, exist_ok=True)
        ordered = {t.name: results[t.name] for t in TARGETS if t.name in results}
        args.out.write_text(json.dumps({"tool": _mutmut_version(), "targets": ordered},
                                       indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print_table({t.name: results[t.name] for t in TARGETS if t.name in results})


def _mutmut_version() -> str:
    """Return "mutmut X.Y.Z" as installed."""
    from importlib.metadata import version

    return f"mutmut {version('mutmut')}"


if __name__ == "__main__":
    main()
