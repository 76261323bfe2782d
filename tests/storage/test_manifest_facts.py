"""Manifest facts a resume or `status --json` reads: what each record sets and clears."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import resource
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from runner.clock import FakeClock
from runner.errors import StorageError
from runner.lock import LOCK_NAME
from runner.manifest import (
    MANIFEST_NAME,
    Manifest,
    RequestState,
    format_ts,
    read_state,
)

from .conftest import SyscallTrace, make_request

RID = "req000000000001"
VIDEO = {"duration": 5.0, "width": 1280, "height": 720, "codec": "h264"}


def write_log(folder: Path, *records: dict[str, Any]) -> Path:
    """Write a manifest by hand (as an older runner or a crash left it)."""
    lines = [json.dumps({"v": 1, "ts": "2026-01-01T00:00:00.000Z", **r}) for r in records]
    path = folder / MANIFEST_NAME
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def download(m: Manifest, rid: str = RID, output: str = "16x9/seed-1.mp4") -> None:
    """Record a finished download of `rid`."""
    m.record_downloaded(rid, output=output, size=10, sha256="0" * 64, mtime_ns=5,
                        video=VIDEO, download_seconds=1.0)


def test_each_post_announced_is_counted_and_the_latest_is_when_it_went_out(
    tmp_path: Path,
) -> None:
    """Two intents to POST one request: attempts 2, requested at the second's time, and
    unknown with the interrupted-submit reason until an answer is recorded."""
    clock = FakeClock(start=1_800_000_000.0)
    with Manifest.open(tmp_path, clock=clock) as m:
        m.record_submitting(make_request(1), client_request_id="c-1")
        clock.advance(30)
        m.record_submitting(make_request(1), client_request_id="c-2")
        state = m.state[RID]
    assert (state.attempts, state.requested_at, state.client_request_id) == (
        2, format_ts(1_800_000_030.0), "c-2")
    assert state.status == "unknown" and state.reason is not None
    assert state.reason.startswith("the run stopped after sending the request")
    assert read_state(tmp_path)[RID] == state


def test_an_intent_records_where_the_request_goes_and_no_client_id_it_lacks(
    tmp_path: Path,
) -> None:
    """The intent keeps the spec, provider, model and endpoint; without a client request
    id, none is recorded."""
    request = make_request(1)
    with Manifest.open(tmp_path) as m:
        m.record_submitting(request)
    state = read_state(tmp_path)[RID]
    assert (state.spec, state.spec_name, state.job, state.provider, state.model,
            state.endpoint) == (request.spec, request.spec_name, request.job,
                                request.provider, request.model, request.endpoint)
    assert state.client_request_id is None
    (line,) = (tmp_path / MANIFEST_NAME).read_text(encoding="utf-8").splitlines()
    assert "client_request_id" not in json.loads(line)


def test_an_intent_is_durable_at_once_even_inside_a_group(tmp_path: Path) -> None:
    """A crash right after the POST must find the intent: it is on disk before the call
    returns, group or not."""
    with Manifest.open(tmp_path) as m, m.group():
        m.record_submitting(make_request(1))
        assert RID in read_state(tmp_path)


def test_an_answer_clears_the_interrupted_reason_and_keeps_when_it_was_given(
    tmp_path: Path,
) -> None:
    """submitted: pending, no reason left; its submitted_at when given (from the usage
    logs), else the record's time."""
    clock = FakeClock(start=1_800_000_000.0)
    with Manifest.open(tmp_path, clock=clock) as m:
        m.record_submitting(make_request(1))
        m.record_submitted(RID, "gen-1", submitted_at="2026-01-01T00:00:00.000Z")
        m.record_submitting(make_request(2))
        clock.advance(5)
        m.record_submitted("req000000000002", "gen-2")
        first, second = m.state[RID], m.state["req000000000002"]
    assert (first.status, first.reason, first.submitted_at) == (
        "pending", None, "2026-01-01T00:00:00.000Z")
    assert second.submitted_at == format_ts(1_800_000_005.0)


def test_a_download_clears_an_earlier_failure_and_records_where_it_went(
    tmp_path: Path,
) -> None:
    """A failed download fetched again is done with no reason, stage or flag left, at the
    output the download names."""
    with Manifest.open(tmp_path) as m:
        m.record_submitting(make_request(1))
        m.record_submitted(RID, "gen-1")
        m.record_failed(RID, "connection reset", stage="download", retryable=True)
        download(m, output="moved/seed-1.mp4")
        state = m.state[RID]
    assert (state.status, state.reason, state.stage, state.retryable) == (
        "done", None, None, None)
    assert state.output == "moved/seed-1.mp4"


def test_a_download_line_without_an_output_keeps_the_requests_own(tmp_path: Path) -> None:
    """An older manifest's download line without `output` leaves the output the intent
    recorded."""
    write_log(
        tmp_path,
        {"event": "submitting", "id": RID, "output": "a/seed-1.mp4", "body": {}},
        {"event": "submitted", "id": RID, "generation_id": "gen-1"},
        {"event": "downloaded", "id": RID, "size": 1, "sha256": "0" * 64, "mtime_ns": 1},
    )
    assert read_state(tmp_path)[RID].output == "a/seed-1.mp4"


def test_lost_and_reset_clear_the_failure_they_follow(tmp_path: Path) -> None:
    """After a failure, lost (gone at the provider) and reset (poll again) leave no stage
    or retry flag behind; reset also no reason."""
    with Manifest.open(tmp_path) as m:
        for n in (1, 2):
            m.record_submitting(make_request(n))
            m.record_submitted(f"req00000000000{n}", f"gen-{n}")
            m.record_failed(f"req00000000000{n}", "boom", stage="download", retryable=True)
        m.record_lost(RID, "404 on poll")
        m.record_reset("req000000000002", "poll again")
        lost, reset = m.state[RID], m.state["req000000000002"]
    assert (lost.status, lost.reason, lost.stage, lost.retryable) == (
        "lost", "404 on poll", None, None)
    assert (reset.status, reset.reason, reset.stage, reset.retryable) == (
        "pending", None, None, None)


def test_an_adopted_result_records_where_it_came_from(tmp_path: Path) -> None:
    """An adopted line names its source (the lock file or a sidecar) for the audit trail."""
    with Manifest.open(tmp_path) as m:
        m.record_submitting(make_request(1))
        m.record_submitted(RID, "gen-1")
        download(m)
        m.record_adopted(dataclasses.replace(m.state[RID], id="req9"), "lock")
    lines = [json.loads(x) for x in (tmp_path / MANIFEST_NAME).read_text().splitlines()]
    assert lines[-1]["event"] == "adopted" and lines[-1]["source"] == "lock"


def test_a_state_as_data_has_exactly_its_fields_as_plain_values() -> None:
    """`status --json` and snapshots get one key per field, mappings as plain dicts."""
    state = RequestState(id=RID, status="done", body={"a": 1}, images={"sha256:x": "i.png"},
                         matrix={"seed": 1}, video=VIDEO, cost={"usd": 0.5})
    data = state.to_dict()
    assert set(data) == set(RequestState.__dataclass_fields__)
    assert (data["body"], data["images"], data["matrix"], data["video"], data["cost"]) == (
        {"a": 1}, {"sha256:x": "i.png"}, {"seed": 1}, VIDEO, {"usd": 0.5})
    assert all(type(data[k]) is dict for k in ("body", "images", "matrix", "video", "cost"))
    assert RequestState(id=RID, status="pending").to_dict()["video"] is None


def test_timestamps_are_utc_whatever_the_machines_time_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A machine set to another time zone still writes UTC times, with a Z."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert format_ts(1_800_000_000.25) == "2027-01-15T08:00:00.250Z"
    finally:
        monkeypatch.undo()
        time.tzset()


def test_text_is_written_as_utf8_and_numbers_json_cannot_hold_are_refused(
    tmp_path: Path,
) -> None:
    """A prompt's accents are readable in the file; a NaN is refused, nothing written."""
    with Manifest.open(tmp_path) as m:
        m.record_submitting(make_request(1, prompt="un dragón en el café"))
        size = (tmp_path / MANIFEST_NAME).stat().st_size
        body = {"prompt": "x", "seed": 2, "strength": float("nan")}
        nan = dataclasses.replace(make_request(2), body=body)
        with pytest.raises(ValueError, match="not JSON compliant"):
            m.record_submitting(nan)
    assert "un dragón en el café".encode() in (tmp_path / MANIFEST_NAME).read_bytes()
    assert (tmp_path / MANIFEST_NAME).stat().st_size == size


@pytest.mark.parametrize(
    ("line", "refused"),
    [
        ({"v": 1, "event": "completed"}, False),  # no id: not a record
        ({"v": 1, "id": RID}, False),  # no event: not a record
        ({"v": 1, "event": "exploded", "id": RID}, True),
    ],
)
def test_a_line_that_is_not_a_record_is_a_torn_tail_or_an_error(
    tmp_path: Path, line: dict[str, Any], refused: bool
) -> None:
    """A last line without an id or event is a torn tail (ignored); followed by a good
    line it is an error at its line; an unknown event is refused naming it."""
    path = tmp_path / MANIFEST_NAME
    good = json.dumps({"v": 1, "event": "submitted", "id": RID, "generation_id": "g"})
    path.write_text(good + "\n" + json.dumps(line) + "\n", encoding="utf-8")
    if refused:
        with pytest.raises(StorageError) as info:
            read_state(tmp_path)
        assert str(info.value) == f"{path}:2: unknown manifest event 'exploded'"
        return
    assert set(read_state(tmp_path)) == {RID}
    path.write_text(json.dumps(line) + "\n" + good + "\n", encoding="utf-8")
    with pytest.raises(StorageError, match=r":1: not a valid manifest record, but valid "):
        read_state(tmp_path)


def test_a_closed_manifest_refuses_records(tmp_path: Path) -> None:
    """Recording after close is a programming error, said plainly."""
    m = Manifest.open(tmp_path)
    m.close()
    with pytest.raises(RuntimeError, match="^the manifest is closed$"):
        m.record_completed(RID)


def test_forgetting_a_request_never_recorded_is_harmless(tmp_path: Path) -> None:
    """A forget for an id the manifest never had changes nothing and raises nothing."""
    with Manifest.open(tmp_path) as m:
        m.record_forgotten("never-seen", "force")
        assert dict(m.state) == {}


def test_observers_hear_which_requests_each_write_changed(tmp_path: Path) -> None:
    """After each durable write, each observer gets the ids that write changed."""
    heard: list[set[str]] = []
    with Manifest.open(tmp_path) as m:
        m.observe(heard.append)
        m.record_submitting(make_request(1))
        with m.group():
            m.record_completed(RID)
            m.record_failed("req000000000002", "x", stage="submit", retryable=True)
    assert heard == [{RID}, {RID, "req000000000002"}]


def test_a_disk_that_fills_while_recording_is_one_storage_error_naming_the_manifest(
    tmp_path: Path,
) -> None:
    """The write that meets a full disk names the manifest and the fix; the file keeps
    only its complete lines."""
    with Manifest.open(tmp_path) as m:
        m.record_submitting(make_request(1))
        path = tmp_path / MANIFEST_NAME
        good = path.read_bytes()
        old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (len(good) + 10, old_limit[1]))
        try:
            with pytest.raises(StorageError) as info:
                m.record_submitting(make_request(2))
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
            signal.signal(signal.SIGXFSZ, old_handler)
        assert str(info.value) == (
            f"cannot write {path}: the disk is full (or a file-size limit was hit) — free "
            "some space and run again; finished records are kept")
        assert path.read_bytes() == good


@pytest.mark.parametrize(("lines", "after"), [(1000, 1000), (1001, 1)])
def test_a_manifest_is_compacted_only_past_1000_lines(
    tmp_path: Path, lines: int, after: int
) -> None:
    """Exactly 1,000 lines are left as they are; 1,001 for one request become one
    snapshot when the manifest is opened."""
    write_log(tmp_path, {"event": "submitted", "id": RID, "generation_id": "g"},
              *({"event": "verified", "id": RID, "mtime_ns": n} for n in range(lines - 1)))
    with Manifest.open(tmp_path) as m:
        assert m.lines == after
        assert m.state[RID].mtime_ns == lines - 2


def test_an_intent_keeps_the_output_and_whether_the_seed_was_derived(tmp_path: Path) -> None:
    """Before any download, the intent alone says where the video goes and that its seed
    was derived (what a crash-resumed run shows and reuses)."""
    request = dataclasses.replace(make_request(1), seed_derived=True)
    with Manifest.open(tmp_path) as m:
        m.record_submitting(request)
    state = read_state(tmp_path)[RID]
    assert (state.output, state.seed_derived) == (request.output, True)


def test_opening_makes_the_folders_and_the_lock_says_since_when(tmp_path: Path) -> None:
    """A spec folder two levels down is made; the lock another run would be told about
    names when this run took it, by the run's clock."""
    folder = tmp_path / "outputs" / "dragon"
    with Manifest.open(folder, clock=FakeClock(start=1_800_000_000.0)) as m:
        assert m.folder == folder and folder.is_dir()
        held = json.loads((folder / LOCK_NAME).read_text(encoding="utf-8"))
    assert held["since"] == "2027-01-15T08:00:00Z"


def test_a_new_manifest_makes_its_name_durable_and_an_old_one_is_not_resynced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Creating the manifest fsyncs the spec folder (a crash must not lose the new file's
    name); opening one that exists, even of one byte, does not."""
    folder = tmp_path / "dragon"
    folder.mkdir()
    trace = SyscallTrace(monkeypatch)
    Manifest.open(folder).close()
    assert ("fsync", str(folder)) in trace.calls
    (folder / MANIFEST_NAME).write_bytes(b"\n")  # one blank line: harmless, one byte
    trace.calls.clear()
    Manifest.open(folder).close()
    assert ("fsync", str(folder)) not in trace.calls


def test_a_new_manifest_is_empty_and_readable_by_everyone(tmp_path: Path) -> None:
    """A fresh manifest has no lines and is created 0644 (under the usual umask)."""
    old = os.umask(0o022)
    try:
        with Manifest.open(tmp_path) as m:
            assert (m.lines, dict(m.state)) == (0, {})
    finally:
        os.umask(old)
    assert (tmp_path / MANIFEST_NAME).stat().st_mode & 0o777 == 0o644


def test_a_manifest_that_cannot_be_read_or_made_is_one_storage_error(tmp_path: Path) -> None:
    """A folder where the manifest should be cannot be read; a link to a folder that does
    not exist cannot be made: one line each, naming the manifest and what to do."""
    unreadable = tmp_path / "a"
    (unreadable / MANIFEST_NAME).mkdir(parents=True)
    with pytest.raises(StorageError) as info:
        read_state(unreadable)
    assert str(info.value) == (
        f"cannot read {unreadable / MANIFEST_NAME}: Is a directory — check its permissions")
    dangling = tmp_path / "b"
    dangling.mkdir()
    (dangling / MANIFEST_NAME).symlink_to("nowhere/manifest.jsonl")
    with pytest.raises(StorageError) as info:
        Manifest.open(dangling)
    assert str(info.value) == (
        f"cannot write {dangling / MANIFEST_NAME}: No such file or directory — check the "
        "output folder and run again; finished records are kept")


def test_a_failed_write_whose_cut_back_fails_too_is_still_the_one_storage_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk refuses the append and then the truncation back: the user reads the
    append's storage-error line (not a raw OSError from the cleanup); the records that
    were durable before stay readable."""
    folder = tmp_path / "out"
    with Manifest.open(folder) as manifest:
        manifest.record_submitting(make_request(1))
        real_write = os.write

        def refuse(fd: int, data: Any) -> int:
            raise OSError(errno.EIO, "Input/output error")

        def cannot_cut(fd: int, length: int) -> None:
            raise OSError(errno.EROFS, "Read-only file system")

        monkeypatch.setattr(os, "write", refuse)
        monkeypatch.setattr(os, "ftruncate", cannot_cut)
        with pytest.raises(StorageError) as caught:
            manifest.record_submitting(make_request(2))
        monkeypatch.setattr(os, "write", real_write)
    assert str(caught.value).startswith(f"cannot write {folder / MANIFEST_NAME}")
    assert "Input/output error — check the output folder" in str(caught.value)
    assert set(read_state(folder)) == {make_request(1).id}


def test_a_generation_time_is_known_only_once_both_ends_are_recorded(tmp_path: Path) -> None:
    """Submitted but not completed: no generation time (it would teach the next run's
    schedule a wrong one); completed 48.5 s later: 48.5 s."""
    clock = FakeClock(start=1_800_000_000.0)
    with Manifest.open(tmp_path, clock=clock) as m:
        m.record_submitting(make_request(1))
        m.record_submitted(RID, "gen-1")
        assert m.state[RID].submitted_at is not None
        assert m.state[RID].generation_seconds is None
        clock.advance(48.5)
        m.record_completed(RID)
        assert m.state[RID].generation_seconds == 48.5
