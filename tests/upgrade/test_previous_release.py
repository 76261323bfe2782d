"""Upgrades never cost users money: what release 0.1.0 finished stays finished.

`fixtures/v0.1.0/` is the output tree 0.1.0 wrote for the example specs (see its
README). The current code must see every request there as `done` under the same id,
and a run must pay for nothing, download nothing and leave every video as it was.
Judged from outside only: the CLI's documented outputs (`plan --json`, exit codes), the
sandbox's counters and the files, hashed here with hashlib, so the test keeps holding
whatever later releases do inside.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.oracles import read_log, read_manifest

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).parent / "fixtures"
RELEASES = sorted(p.name for p in FIXTURES.iterdir() if (p / "expected.json").is_file())
DUMMY_KEY = "sk-upgrade-test-dummy"


def expected_of(release: str) -> dict[str, Any]:
    """Return the fixture's expected.json (ids, outputs, video hashes)."""
    data: dict[str, Any] = json.loads((FIXTURES / release / "expected.json").read_text())
    return data


def video_hashes(root: Path) -> dict[str, str]:
    """Return relative path -> sha256 of every .mp4 under `root`."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*.mp4"))
    }


def cli(cwd: Path, *args: str, base_url: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run `runner ARGS` as a user would, in `cwd`, with a dummy aimlapi key."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(AIMLAPI_API_KEY=DUMMY_KEY, NO_COLOR="1")
    extra = ["--base-url", base_url] if base_url else []
    return subprocess.run(
        [sys.executable, "-m", "runner", *args, *extra], cwd=cwd, env=env,
        capture_output=True, text=True, timeout=120, check=False,
    )


def plan(cwd: Path, specs: list[str]) -> list[dict[str, Any]]:
    """Return the `requests` list of `runner plan --json SPECS`."""
    done = cli(cwd, "plan", "--json", *specs)
    assert done.returncode == 0, done.stderr
    requests: list[dict[str, Any]] = json.loads(done.stdout)["requests"]
    return requests


@pytest.fixture
def sandbox_url(tmp_path: Path) -> Iterator[str]:
    """A `runner sandbox serve` subprocess on loopback; yields its base URL."""
    with (tmp_path / "serve.log").open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "runner", "sandbox", "serve", "--port", "0",
             "--latency", "0.05", "--jitter", "0"],
            stdout=subprocess.PIPE, stderr=log, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        assert process.stdout is not None
        first = process.stdout.readline().strip()
        assert first.startswith("serving on http://127.0.0.1:"), first
        yield first.removeprefix("serving on ")
    finally:
        process.terminate()
        process.wait(timeout=10)


def stats(base_url: str) -> dict[str, Any]:
    """Return the sandbox's `GET /_sandbox/stats` counters."""
    with urllib.request.urlopen(f"{base_url}/_sandbox/stats", timeout=10) as response:
        data: dict[str, Any] = json.loads(response.read())
    return data


def copy_release(release: str, tmp_path: Path, *, touch: bool) -> Path:
    """Copy a fixture into `tmp_path`; `touch` gives every file a new mtime, as a git
    checkout does (the manifest's recorded mtimes no longer match)."""
    work = tmp_path / release
    shutil.copytree(FIXTURES / release, work)
    if touch:
        for path in work.rglob("*"):
            if path.is_file():
                os.utime(path, ns=(1_900_000_000_000_000_000, 1_900_000_000_000_000_000))
    return work


@pytest.mark.parametrize("release", RELEASES)
def test_fixture_is_what_its_readme_says(release: str) -> None:
    """The fixture's manifests, files and expected.json agree (read without runner code)."""
    expected = expected_of(release)
    root = FIXTURES / release
    recorded = {}
    for folder in sorted((root / "outputs").iterdir()):
        log = read_log(folder)
        assert log.torn == b"", folder
        for rid, entry in read_manifest(folder).items():
            assert entry.status == "done", (rid, entry)
            assert entry.output is not None
            recorded[rid] = (folder / entry.output).relative_to(root).as_posix(), entry.sha256
    table = {r["id"]: (r["output"], r["sha256"]) for r in expected["requests"]}
    assert table == recorded
    hashes = video_hashes(root)
    assert {out: digest for out, digest in table.values()} == hashes
    assert {r["spec"] for r in expected["requests"]} == set(expected["specs"])
    assert not list(root.rglob(".lock")) and not list(root.rglob("index.html"))


@pytest.mark.parametrize("touch", [False, True], ids=["mtimes-kept", "fresh-checkout"])
@pytest.mark.parametrize("release", RELEASES)
def test_previous_release_outputs_stay_done_and_cost_nothing(
    release: str, touch: bool, tmp_path: Path, sandbox_url: str
) -> None:
    """plan shows every recorded request done under its id; a run submits and downloads
    nothing, exits 0 and leaves every video byte-identical."""
    expected = expected_of(release)
    work = copy_release(release, tmp_path, touch=touch)
    specs = expected["specs"]
    ids = {r["id"]: r for r in expected["requests"]}
    before = video_hashes(work)

    planned = plan(work, specs)
    assert sorted(r["id"] for r in planned) == sorted(ids)
    assert {r["id"]: r["status"] for r in planned} == dict.fromkeys(ids, "done")
    for item in planned:
        video = work / item["path"]  # where the plan says the video is
        assert hashlib.sha256(video.read_bytes()).hexdigest() == ids[item["id"]]["sha256"]

    run = cli(work, "run", *specs, base_url=sandbox_url)
    assert run.returncode == 0, run.stdout + run.stderr
    counters = stats(sandbox_url)
    assert counters["submissions"] == 0
    assert counters["downloads"] == 0
    assert video_hashes(work) == before

    again = plan(work, specs)
    assert {r["id"]: r["status"] for r in again} == dict.fromkeys(ids, "done")
