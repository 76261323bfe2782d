"""Concurrency and disk trouble, end to end through real `runner run` processes.

A second run of a spec while the first holds it fails fast with one clear line and sends
nothing; a lock left by a SIGKILLed run is recovered. An unwritable output folder and a
full disk (a tiny tmpfs when we may mount one, else a file-size rlimit) stop the run
with one clear line, leave the manifest readable with every finished video verified,
and a rerun with room again completes without paying twice.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runner.manifest import MANIFEST_NAME
from tests import oracles
from tests.faults.harness import (
    SandboxProcess,
    audit,
    child_env,
    manifest_events,
    run_command,
    run_runner,
    write_spec,
)

pytestmark = pytest.mark.slow


def _mount_tmpfs(where: Path, *options: str) -> bool:
    """Mount a tmpfs at `where` (needs root); return whether it worked."""
    where.mkdir(parents=True, exist_ok=True)
    opts = ",".join(options)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)],
                          capture_output=True, check=False)
    return done.returncode == 0


@pytest.fixture
def mounts() -> Iterator[Callable[..., bool]]:
    """Mount tmpfs file systems for a test; unmount them afterwards."""
    mounted: list[Path] = []

    def mount(where: Path, *options: str) -> bool:
        ok = _mount_tmpfs(where, *options)
        if ok:
            mounted.append(where)
        return ok

    yield mount
    for where in reversed(mounted):
        subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


# --------------------------------------------------------------------------- the lock


def test_second_run_fails_fast_while_the_first_holds_the_spec(
    server: SandboxProcess, tmp_path: Path
) -> None:
    """While one run holds the spec, a second exits 1 at once with one line naming the
    holder and sends nothing; the first finishes undisturbed.

    The first run is frozen (SIGSTOP) while the second runs, so it surely holds the lock
    the whole time: the second can only end by refusing, never by waiting its turn."""
    server.set_faults()
    server.configure(latency=1.5)
    server.reset_stats()
    try:
        spec = write_spec(tmp_path, "locked", (1, 2), "two runs, one spec")
        out = tmp_path / "outputs"
        command = run_command(spec, server.base_url, out)
        first = subprocess.Popen(command, cwd=tmp_path, env=child_env(),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while sum(e["event"] == "submitted" for e in manifest_events(out / "locked")) < 2:
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.01)
        first.send_signal(signal.SIGSTOP)
        try:
            second = run_runner(command, tmp_path, timeout=30)  # waiting would time out
        finally:
            first.send_signal(signal.SIGCONT)
        assert first.poll() is None  # the first run still held the lock all along

        assert second.returncode == 1
        lines = second.stderr.strip().splitlines()
        assert lines == _error_lines(second.stderr) and len(lines) == 1, second.stderr
        assert f"spec 'locked' is being run by pid {first.pid}" in lines[0]
        assert "wait for it to finish or stop it" in lines[0]
        assert server.stats()["submissions"] == 2  # the first run's only

        stdout, stderr = first.communicate(timeout=60)
        assert first.returncode == 0, stdout + stderr
        assert len(audit(out / "locked").done) == 2
    finally:
        server.configure(latency=0.3)


def test_lock_of_a_killed_run_is_recovered(server: SandboxProcess, tmp_path: Path) -> None:
    """A run SIGKILLed while holding the spec leaves its lock file; the next run takes
    over at once and finishes the batch without resubmitting anything."""
    server.set_faults()
    server.reset_stats()
    spec = write_spec(tmp_path, "orphan-lock", (1, 2, 3), "a run killed holding its lock")
    out = tmp_path / "outputs"
    folder = out / "orphan-lock"
    command = run_command(spec, server.base_url, out)
    victim = subprocess.Popen(command, cwd=tmp_path, env=child_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while sum(e["event"] == "submitted" for e in manifest_events(folder)) < 3:
        assert time.monotonic() < deadline and victim.poll() is None
        time.sleep(0.005)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    assert str(victim.pid) in (folder / ".lock").read_text()  # the dead run's lock is there

    resumed = run_runner(command, tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert len(audit(folder).done) == 3
    stats = server.stats()
    assert stats["submissions"] == 3 and stats["duplicate_submissions"] == 0


# --------------------------------------------------------------------------- disk trouble


def test_unwritable_output_folder_is_one_clear_line(
    server: SandboxProcess, tmp_path: Path, mounts: Callable[..., bool]
) -> None:
    """An output folder that cannot be written (read-only file system, or no write
    permission) stops the run before any POST with one line saying what to do, and a
    finished manifest on it stays byte for byte intact."""
    server.set_faults()
    server.reset_stats()
    disk = tmp_path / "disk"
    on_tmpfs = mounts(disk, "size=8m")
    spec = write_spec(tmp_path, "readonly", (1, 2), "an output folder that turns read-only")
    out = disk / "outputs"
    done = run_runner(run_command(spec, server.base_url, out), tmp_path)
    assert done.returncode == 0, done.stderr
    manifest = out / "readonly" / MANIFEST_NAME
    before = manifest.read_bytes()
    # The spec grows by two seeds; the folder is now read-only.
    write_spec(tmp_path, "readonly", (1, 2, 3, 4), "an output folder that turns read-only")
    if on_tmpfs:
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    else:  # not root: permissions are enough
        for folder in (out / "readonly", out):
            folder.chmod(0o555)
    try:
        server.reset_stats()
        blocked = run_runner(run_command(spec, server.base_url, out), tmp_path)
    finally:
        if not on_tmpfs:
            for folder in (out, out / "readonly"):
                folder.chmod(0o755)
    assert blocked.returncode == 1
    assert "Traceback" not in blocked.stderr
    lines = _error_lines(blocked.stderr)
    assert len(lines) == 1, blocked.stderr
    assert lines[0].startswith(f"error: cannot write {out / 'readonly'}")
    assert "permission denied" in lines[0] or "read-only" in lines[0].lower()
    assert "--output-dir" in lines[0]
    assert server.stats()["submissions"] == 0  # nothing was paid for
    assert manifest.read_bytes() == before
    assert len(audit(out / "readonly").done) == 2


def _fsize_limit(limit: int) -> Callable[[], None]:
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a killing signal
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.parametrize("how", ["tmpfs", "file-size limit"])
def test_full_disk_stops_cleanly_and_resumes(
    how: str, server: SandboxProcess, tmp_path: Path, mounts: Callable[..., bool]
) -> None:
    """A disk that fills up mid-batch (ENOSPC on a 2 MB tmpfs, or EFBIG under
    RLIMIT_FSIZE) stops the run with one clear line; the manifest stays readable with
    every finished video verified; with room again the batch completes, none paid twice."""
    server.set_faults()
    server.reset_stats()
    seeds = tuple(range(1, 9))
    spec = write_spec(tmp_path, "full", seeds, f"a disk that fills up ({how})")
    disk = tmp_path / "disk"
    out = disk / "outputs"
    filler = disk / "filler"
    limit: Callable[[], None] | None = None
    if how == "tmpfs" and mounts(disk, "size=2m"):
        # Leave ten 4 KiB pages: room for some videos (~3 KB each at this scale), their
        # sidecars and the manifest, not for all eight.
        free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
        filler.write_bytes(b"\0" * max(0, free - 40_960))
    else:
        disk.mkdir(exist_ok=True)
        limit = _fsize_limit(6_000)  # the manifest outgrows it mid-batch (~1.3 KB a request)
    command = run_command(spec, server.base_url, out, concurrency=2)
    stopped = subprocess.run(command, cwd=tmp_path, env=child_env(), capture_output=True,
                             text=True, timeout=90, preexec_fn=limit, check=False)

    assert stopped.returncode == 1, stopped.stdout + stopped.stderr
    assert "Traceback" not in stopped.stderr
    lines = _error_lines(stopped.stderr)
    assert len(lines) == 1, stopped.stderr
    assert "the disk is full (or a file-size limit was hit) — free some space" in lines[0]
    folder = out / "full"
    states = oracles.read_manifest(folder)  # readable: complete lines only
    midway = audit(folder, interrupted=True)
    assert midway.ok, midway.problems
    assert len(midway.done) < len(seeds)  # it really stopped mid-batch
    assert all(state.status in ("done", "pending", "unknown") for state in states.values())

    filler.unlink(missing_ok=True)
    resumed = run_runner(command, tmp_path)
    final = audit(folder)
    assert final.ok, final.problems
    stats = server.stats()
    assert stats["duplicate_submissions"] == 0
    # A generation accepted while its id could not be written stays unknown (paid, id
    # lost) rather than being paid for twice; everything else has its video.
    unknown = [rid for rid, (status, _) in final.reported.items() if status == "unknown"]
    assert len(final.done) + len(unknown) == len(seeds), resumed.stdout + resumed.stderr
    assert resumed.returncode == (0 if not unknown else 1)
