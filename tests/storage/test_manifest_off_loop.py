"""Manifest and lock-file writes made off the event loop during a run.

`Manifest.off_loop()` buffers each record and writes it in a worker thread; the task that
recorded it awaits it. These tests read the file with their own JSON-lines reader (not the
manifest's loader) and make the worker thread's fsync wait on events the test controls,
so what they check does not depend on timing.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runner import durable
from runner.errors import StorageError
from runner.lockfile import LockWriter, read_lock
from runner.manifest import Manifest

from .conftest import make_request

WAIT = 10.0  # seconds a test thread waits for the loop before it calls the test failed


def _lines(folder: Path) -> list[dict[str, Any]]:
    """Read the manifest's complete lines independently of runner.manifest."""
    text = (folder / "manifest.jsonl").read_text(encoding="utf-8")
    assert text == "" or text.endswith("\n"), "the manifest ends inside a line"
    return [json.loads(line) for line in text.splitlines()]


def _requests(tmp_path: Path, count: int) -> list[Any]:
    return [make_request(n) for n in range(1, count + 1)]


class HeldFsync:
    """Replace os.fsync: a call from a worker thread waits until the test releases it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.real: Callable[[int], None] = os.fsync
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls = 0
        self.threads: set[str] = set()
        monkeypatch.setattr(os, "fsync", self)

    def __call__(self, fd: int) -> None:
        self.calls += 1
        self.threads.add(threading.current_thread().name)
        if threading.current_thread() is not threading.main_thread():
            self.entered.set()
            assert self.release.wait(WAIT), "the test never released the write"
        self.real(fd)


def test_a_record_is_in_the_file_once_awaited_and_not_written_by_the_call(
    tmp_path: Path,
) -> None:
    """Off the loop, the record call only buffers; awaiting it writes, fsyncs and folds it."""
    folder = tmp_path / "out"
    (request,) = _requests(tmp_path, 1)

    async def scenario() -> None:
        with Manifest.open(folder) as manifest:
            async with manifest.off_loop():
                written = manifest.record_submitting(request, client_request_id="c-1")
                assert _lines(folder) == []
                assert request.id not in manifest.state
                await written
                (line,) = _lines(folder)
                assert (line["event"], line["id"], line["client_request_id"]) == (
                    "submitting", request.id, "c-1"
                )
                assert manifest.state[request.id].status == "unknown"

    asyncio.run(scenario())


def test_observers_hear_of_each_write_made_off_the_loop_with_its_ids(tmp_path: Path) -> None:
    """The lock file follows the manifest through its observers: a write made off the
    loop tells them which requests it changed, once the records are in `.state`."""
    folder = tmp_path / "out"
    first, second = _requests(tmp_path, 2)
    heard: list[tuple[set[str], set[str]]] = []
    with Manifest.open(folder) as manifest:
        manifest.observe(lambda ids: heard.append((set(ids), set(manifest.state))))

        async def scenario() -> None:
            async with manifest.off_loop():
                await asyncio.gather(manifest.record_submitting(first),
                                     manifest.record_submitting(second))
                await manifest.record_submitted(first.id, "gen-1")

        asyncio.run(scenario())
    assert heard == [({first.id, second.id}, {first.id, second.id}),
                     ({first.id}, {first.id, second.id})]


def test_records_of_tasks_waiting_together_share_one_write_and_one_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """40 generations ending at once cost one fsync, not 40, and every record is kept."""
    folder = tmp_path / "out"
    requests = _requests(tmp_path, 40)
    with Manifest.open(folder) as manifest:
        fsync = HeldFsync(monkeypatch)
        fsync.release.set()

        async def one(request: Any) -> None:
            await manifest.record_submitting(request)
            await manifest.record_submitted(request.id, f"gen-{request.seed}")

        async def scenario() -> None:
            async with manifest.off_loop():
                await asyncio.gather(*(one(r) for r in requests))

        asyncio.run(scenario())
        assert fsync.calls == 2  # the 40 intents together, then the 40 ids together
        assert fsync.threads and threading.main_thread().name not in fsync.threads
    lines = _lines(folder)
    assert [line["event"] for line in lines] == ["submitting"] * 40 + ["submitted"] * 40
    assert {line["id"] for line in lines} == {r.id for r in requests}


def test_the_event_loop_runs_on_while_a_record_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A poll due while an fsync is out is made: the loop is never held by the disk."""
    folder = tmp_path / "out"
    (request,) = _requests(tmp_path, 1)
    ran_meanwhile: list[str] = []
    with Manifest.open(folder) as manifest:
        fsync = HeldFsync(monkeypatch)

        async def other_work() -> None:
            await asyncio.to_thread(fsync.entered.wait, WAIT)
            ran_meanwhile.append("poll")  # the loop ran this while the write was held
            fsync.release.set()

        async def scenario() -> None:
            async with manifest.off_loop():
                await asyncio.gather(manifest.record_submitting(request), other_work())

        asyncio.run(scenario())
    assert ran_meanwhile == ["poll"]
    assert [line["event"] for line in _lines(folder)] == ["submitting"]


def test_a_failed_write_raises_in_every_waiting_task_and_leaves_the_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk: each task waiting on the write gets the storage error; nothing torn."""
    folder = tmp_path / "out"
    first, second, third = _requests(tmp_path, 3)
    with Manifest.open(folder) as manifest:
        manifest.record_submitting(first)  # in line, before the run's workers
        before = (folder / "manifest.jsonl").read_bytes()
        real_write = os.write

        def full(fd: int, data: Any) -> int:
            if threading.current_thread() is threading.main_thread():
                return real_write(fd, data)
            real_write(fd, bytes(data)[:7])  # half a line reaches the disk, then it is full
            raise OSError(errno.ENOSPC, "No space left on device")

        async def scenario() -> list[BaseException | None]:
            monkeypatch.setattr(os, "write", full)
            try:
                async with manifest.off_loop():
                    results = list(await asyncio.gather(
                        manifest.record_submitting(second), manifest.record_submitting(third),
                        return_exceptions=True,
                    ))
            except StorageError as exc:  # the exit's own last try meets the full disk too
                results = [*results, exc]
            finally:
                monkeypatch.setattr(os, "write", real_write)
            return results

        results = asyncio.run(scenario())
        assert [type(r) for r in results[:2]] == [StorageError, StorageError]
        assert "the disk is full" in str(results[0])
        assert (folder / "manifest.jsonl").read_bytes() == before
        assert set(manifest.state) == {first.id}


def test_a_waiter_cancelled_mid_write_leaves_the_other_records_to_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C cancelling one task while the write is out: the write (its and others'
    records) still completes, and the state knows both."""
    folder = tmp_path / "out"
    first, second = _requests(tmp_path, 2)
    with Manifest.open(folder) as manifest:
        fsync = HeldFsync(monkeypatch)

        async def scenario() -> None:
            async with manifest.off_loop():
                cancelled = asyncio.ensure_future(manifest.record_submitting(first))
                kept = asyncio.ensure_future(manifest.record_submitting(second))
                await asyncio.to_thread(fsync.entered.wait, WAIT)
                cancelled.cancel()
                await asyncio.sleep(0)  # the cancellation reaches its task first
                fsync.release.set()
                with pytest.raises(asyncio.CancelledError):
                    await cancelled
                await kept

        asyncio.run(scenario())
        assert {line["id"] for line in _lines(folder)} == {first.id, second.id}
        assert set(manifest.state) == {first.id, second.id}


def test_outside_a_run_a_record_is_durable_when_the_call_returns(tmp_path: Path) -> None:
    """Synchronous callers (resume, prune) need no await: the call wrote and fsynced it."""
    folder = tmp_path / "out"
    (request,) = _requests(tmp_path, 1)
    with Manifest.open(folder) as manifest:
        manifest.record_submitting(request)
        assert [line["id"] for line in _lines(folder)] == [request.id]
        assert request.id in manifest.state


def _done_lock(tmp_path: Path, count: int) -> tuple[Path, Manifest, list[Any]]:
    folder = tmp_path / "out"
    requests = _requests(tmp_path, count)
    manifest = Manifest.open(folder)
    for n, request in enumerate(requests):
        manifest.record_submitting(request)
        manifest.record_submitted(request.id, f"gen-{n}")
    return folder / "test.lock", manifest, requests


def test_lock_rewrites_in_the_background_come_from_one_thread_and_end_current(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inside `in_background`, the lock file is rewritten in its own thread, not the
    caller's (which writes at most once more, at exit); at exit it holds every entry."""
    path, manifest, requests = _done_lock(tmp_path, 5)
    threads: list[str] = []
    import runner.lockfile as lockfile

    real = durable.write_atomic

    def traced(target: Path, data: bytes) -> None:
        threads.append(threading.current_thread().name)
        real(target, data)

    monkeypatch.setattr(lockfile, "write_atomic", traced)
    with manifest:
        lock = LockWriter(path, clock=lambda: 0.0)
        with lock.in_background():
            for request in requests:
                lock.put(manifest.state[request.id])
                lock.maybe_flush()
        assert threads[0].startswith("lockfile")
        assert threads[:-1] == [n for n in threads[:-1] if n.startswith("lockfile")]
        assert set(read_lock(path)) == {r.id for r in requests}


def test_a_lock_rewrite_that_fails_in_the_background_stops_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lock file that cannot be written is the same storage error as in line, not lost."""
    path, manifest, requests = _done_lock(tmp_path, 2)
    import runner.lockfile as lockfile

    def refuse(target: Path, data: bytes) -> None:
        raise StorageError(f"cannot write {target}: No space left on device — free some space")

    monkeypatch.setattr(lockfile, "write_atomic", refuse)
    with manifest:
        lock = LockWriter(path, clock=lambda: 0.0)
        with pytest.raises(StorageError, match="No space left"), lock.in_background():
            lock.put(manifest.state[requests[0].id])
            lock.maybe_flush()
    assert not path.exists()


def test_nested_groups_write_once_when_the_outermost_ends(tmp_path: Path) -> None:
    """The end of an inner group writes nothing: the records of both wait for the
    outermost one's end and go out in one write."""
    folder = tmp_path / "out"
    (request,) = _requests(tmp_path, 1)
    with Manifest.open(folder) as manifest:
        manifest.record_submitting(request)
        manifest.record_submitted(request.id, "gen-1")
        before = len(_lines(folder))
        with manifest.group():
            manifest.record_completed(request.id)
            with manifest.group():
                manifest.record_failed(request.id, "HTTP 500", stage="download",
                                       retryable=True)
            assert len(_lines(folder)) == before  # the inner end wrote nothing
        assert [line["event"] for line in _lines(folder)[before:]] == ["completed", "failed"]


def test_off_the_loop_a_group_ending_writes_nothing_on_the_loop(tmp_path: Path) -> None:
    """Inside off_loop(), the end of a group leaves its records to the awaited write in
    the worker thread: nothing is written (or fsynced) on the event loop."""
    folder = tmp_path / "out"
    (request,) = _requests(tmp_path, 1)

    async def scenario() -> None:
        with Manifest.open(folder) as manifest:
            async with manifest.off_loop():
                with manifest.group():
                    written = manifest.record_submitting(request)
                assert _lines(folder) == []
                await written
                assert [line["event"] for line in _lines(folder)] == ["submitting"]

    asyncio.run(scenario())


def test_after_off_loop_a_record_is_durable_when_the_call_returns_again(
    tmp_path: Path,
) -> None:
    """Leaving off_loop() puts the manifest back to writing at the call: what resume or a
    later step records after the run's workers is on disk without an await."""
    folder = tmp_path / "out"
    (request,) = _requests(tmp_path, 1)

    async def run_part(manifest: Manifest) -> None:
        async with manifest.off_loop():
            await manifest.record_submitting(request)

    with Manifest.open(folder) as manifest:
        asyncio.run(run_part(manifest))
        manifest.record_submitted(request.id, "gen-1")
        assert [line["event"] for line in _lines(folder)] == ["submitting", "submitted"]
        assert manifest.state[request.id].generation_id == "gen-1"
