"""The manifest: folding, torn tails, compaction, fsync ordering, group commit, locking."""

from __future__ import annotations

import dataclasses
import json
import os
import random
from pathlib import Path
from typing import Any

import pytest

from runner import manifest as manifest_mod
from runner.clock import FakeClock
from runner.errors import LockError, StorageError
from runner.manifest import MANIFEST_NAME, Manifest, read_state
from tests import oracles

from .conftest import SyscallTrace, make_request


def lines_of(folder: Path) -> list[dict[str, Any]]:
    """Parse every line of the manifest in `folder`."""
    text = (folder / MANIFEST_NAME).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def record_done(m: Manifest, n: int) -> None:
    """Take request `n` through the whole happy path."""
    m.record_submitting(make_request(n))
    m.record_submitted(f"req{n:012d}", f"gen-{n}")
    m.record_completed(f"req{n:012d}")
    m.record_downloaded(
        f"req{n:012d}",
        output=f"16x9/seed-{n}.mp4",
        size=100 + n,
        sha256=f"{n:064x}",
        mtime_ns=n,
        video={"duration": 5.0, "width": 1280, "height": 720, "codec": "h264"},
        download_seconds=0.5,
    )


def test_happy_path_folds_to_done_with_every_recorded_fact(tmp_path: Path) -> None:
    """A full submit → done sequence folds into a done state holding all recorded fields."""
    clock = FakeClock(start=1_800_000_000.0)
    with Manifest.open(tmp_path, clock=clock) as m:
        m.record_submitting(make_request(1), images={"sha256:" + "ab" * 32: "images/a.png"})
        clock.advance(60.5)
        m.record_submitted("req000000000001", "gen-1")
        clock.advance(61.0)
        m.record_completed("req000000000001")
        m.record_downloaded(
            "req000000000001",
            output="16x9/seed-1.mp4",
            size=1234,
            sha256="f" * 64,
            mtime_ns=42,
            video={"duration": 5.0, "width": 1280, "height": 720, "codec": "h264"},
            download_seconds=0.8,
        )
    state = read_state(tmp_path)["req000000000001"]
    assert state.status == "done"
    assert state.generation_id == "gen-1"
    assert (state.spec, state.job, state.seed, state.output) == (
        "specs/test.yaml",
        "default",
        1,
        "16x9/seed-1.mp4",
    )
    assert state.body["image_url"] == "sha256:" + "ab" * 32
    assert state.images == {"sha256:" + "ab" * 32: "images/a.png"}
    assert state.matrix == {"seed": 1, "ratio": "16:9"}
    assert (state.size, state.sha256, state.mtime_ns) == (1234, "f" * 64, 42)
    assert state.video == {"duration": 5.0, "width": 1280, "height": 720, "codec": "h264"}
    assert state.submitted_at == "2027-01-15T08:01:00.500Z"
    assert state.generation_seconds == pytest.approx(61.0)
    assert state.downloaded_at is not None


def test_every_line_is_versioned_json_with_event_id_and_ts(tmp_path: Path) -> None:
    """Each manifest line is one JSON object carrying v, event, id and ts."""
    with Manifest.open(tmp_path) as m:
        record_done(m, 3)
    for record in lines_of(tmp_path):
        assert record["v"] == 1
        assert {"event", "id", "ts"} <= record.keys()
    assert [r["event"] for r in lines_of(tmp_path)] == [
        "submitting",
        "submitted",
        "completed",
        "downloaded",
    ]


def test_submitting_without_submitted_is_unknown_not_new(tmp_path: Path) -> None:
    """A crash after `submitting` leaves the request unknown (never silently resubmitted)."""
    with Manifest.open(tmp_path) as m:
        m.record_submitting(make_request(7))
    state = read_state(tmp_path)["req000000000007"]
    assert state.status == "unknown"
    assert state.generation_id is None
    assert "may have accepted" in (state.reason or "")


def test_failure_reset_forget_and_orphan_semantics(tmp_path: Path) -> None:
    """failed/unknown/reset/forgotten/orphan_removed fold as documented."""
    with Manifest.open(tmp_path) as m:
        for n in range(5):
            m.record_submitting(make_request(n))
        m.record_submitted("req000000000000", "g0")
        m.record_failed("req000000000000", "download refused", stage="download", retryable=True)
        m.record_unknown("req000000000001", "read timeout after sending")
        m.record_failed("req000000000002", "400: prompt too long", stage="submit", retryable=False)
        m.record_submitted("req000000000003", "g3")
        m.record_submitted("req000000000004", "g4")
        failed_then = dict(m.state)
        m.record_reset("req000000000000", "--retry-failed")  # has a generation: poll it again
        m.record_reset("req000000000002", "--retry-failed")  # none: becomes new
        m.record_forgotten("req000000000001", "user approved resubmission")
        m.record_orphan_removed("req000000000004", "16x9/seed-4.mp4")
    assert failed_then["req000000000000"].status == "failed"
    assert failed_then["req000000000000"].stage == "download"
    assert failed_then["req000000000000"].retryable is True
    assert failed_then["req000000000001"].status == "unknown"
    assert failed_then["req000000000001"].reason == "read timeout after sending"
    state = read_state(tmp_path)
    assert set(state) == {"req000000000000", "req000000000003"}
    assert state["req000000000000"].status == "pending"
    assert state["req000000000000"].generation_id == "g0"
    assert state["req000000000000"].reason is None
    assert state["req000000000003"].status == "pending"


def test_data_uri_body_is_refused(tmp_path: Path) -> None:
    """Image bytes never reach the manifest: a body holding a data: URI is rejected."""
    req = make_request(1)
    bad = dataclasses.replace(req, body={**req.body, "image_url": "data:image/png;base64,AA"})
    with Manifest.open(tmp_path) as m, pytest.raises(ValueError, match="sha256"):
        m.record_submitting(bad)
    assert read_state(tmp_path) == {}


def test_read_state_of_missing_folder_is_empty(tmp_path: Path) -> None:
    """A spec that never ran has an empty state, and reading it creates nothing."""
    assert read_state(tmp_path / "never") == {}
    assert not (tmp_path / "never").exists()


# ------------------------------------------------------------------------- torn tails

TORN_TAILS = {
    "cut mid-record": b'{"v": 1, "event": "submitted", "id": "req000000000001", "gen',
    # A complete record that parses but lacks its newline was never acknowledged (the
    # write and fsync of the whole line did not finish), and the next append would glue
    # onto it: a torn tail like any other.
    "complete record without its newline": (
        b'{"v": 1, "event": "submitted", "id": "req000000000001", '
        b'"ts": "2026-11-21T22:00:00.000Z", "generation_id": "g-torn"}'
    ),
    "zero-filled tail after a power loss": b"\x00" * 300,
    "zero-filled tail holding a newline": b"\x00" * 80 + b"\n" + b"\x00" * 20,
}


@pytest.mark.parametrize("tail", TORN_TAILS.values(), ids=TORN_TAILS.keys())
def test_torn_tail_is_ignored_then_truncated_before_appending(tmp_path: Path, tail: bytes) -> None:
    """A torn final line is ignored on load and cut away by open, so appends stay valid JSONL."""
    with Manifest.open(tmp_path) as m:
        record_done(m, 0)
        m.record_submitting(make_request(1))
    path = tmp_path / MANIFEST_NAME
    good = path.read_bytes()
    with path.open("ab") as fh:
        fh.write(tail)
    before = read_state(tmp_path)
    assert before["req000000000001"].status == "unknown"
    assert before["req000000000001"].generation_id is None
    assert path.read_bytes().endswith(tail)  # read_state never writes
    with Manifest.open(tmp_path) as m:
        assert path.read_bytes() == good
        m.record_submitted("req000000000001", "g1")
    after = read_state(tmp_path)
    assert after["req000000000001"].generation_id == "g1"
    assert len(lines_of(tmp_path)) == 6
    judged = oracles.read_log(tmp_path)  # an independent reader agrees, line by line
    assert judged.torn == b""
    assert [r["event"] for r in judged.records][-2:] == ["submitting", "submitted"]
    assert {rid: e.status for rid, e in oracles.fold(judged.records).items()} == {
        rid: s.status for rid, s in after.items()
    }


def test_record_without_newline_is_never_folded_even_when_it_parses(tmp_path: Path) -> None:
    """A last line missing only its newline is not taken: the generation id it names is
    not in the state, and the next append starts on a fresh line of its own."""
    with Manifest.open(tmp_path) as m:
        m.record_submitting(make_request(1))
        m.record_submitting(make_request(2))
    path = tmp_path / MANIFEST_NAME
    with path.open("ab") as fh:
        fh.write(TORN_TAILS["complete record without its newline"])
    assert read_state(tmp_path)["req000000000001"].generation_id is None
    with Manifest.open(tmp_path) as m:
        assert m.state["req000000000001"].generation_id is None
        m.record_submitted("req000000000002", "g2")  # fsynced: must survive every reload
    raw = path.read_bytes()
    assert b"g-torn" not in raw
    assert raw.count(b"\n") == 3 and raw.endswith(b"\n")
    for _ in range(2):  # stable across loads
        state = read_state(tmp_path)
        assert state["req000000000002"].generation_id == "g2"
        assert state["req000000000001"].status == "unknown"


def test_corrupt_line_followed_by_good_ones_is_an_error_with_its_line(tmp_path: Path) -> None:
    """A bad line in the middle is corruption: reported with file:line, never skipped."""
    with Manifest.open(tmp_path) as m:
        record_done(m, 0)
    path = tmp_path / MANIFEST_NAME
    lines = path.read_bytes().splitlines(keepends=True)
    lines[1] = b"{oops\n"
    path.write_bytes(b"".join(lines))
    with pytest.raises(StorageError, match=r"manifest\.jsonl:2: not a valid manifest record"):
        read_state(tmp_path)
    with pytest.raises(StorageError):
        Manifest.open(tmp_path)
    assert path.read_bytes() == b"".join(lines)  # left for the user to repair


def test_blank_lines_are_tolerated(tmp_path: Path) -> None:
    """A blank line (a human's edit) anywhere does not break loading."""
    with Manifest.open(tmp_path) as m:
        record_done(m, 0)
    path = tmp_path / MANIFEST_NAME
    path.write_bytes(b"\n" + path.read_bytes().replace(b"}\n", b"}\n\n", 1))
    assert read_state(tmp_path)["req000000000000"].status == "done"


def test_newer_format_version_is_refused(tmp_path: Path) -> None:
    """A manifest written by a newer format version is not misread."""
    (tmp_path / MANIFEST_NAME).write_text('{"v": 2, "event": "x", "id": "a", "ts": "t"}\n')
    with pytest.raises(StorageError, match="format v2"):
        read_state(tmp_path)


# ------------------------------------------------------------------------- compaction


def random_history(m: Manifest, rng: random.Random, requests: int, events: int) -> None:
    """Write a random but plausible mix of events for `requests` requests."""
    for n in range(requests):
        m.record_submitting(make_request(n))
    for _ in range(events):
        n = rng.randrange(requests)
        rid = f"req{n:012d}"
        if rid not in m.state:
            m.record_submitting(make_request(n))
            continue
        choice = rng.choice(
            ["submitted", "completed", "failed", "downloaded", "reset", "verified", "unknown"]
            + ["forgotten"] * (rng.random() < 0.05)
        )
        if choice == "submitted":
            m.record_submitted(rid, f"g{n}-{rng.randrange(1000)}")
        elif choice == "completed":
            m.record_completed(rid)
        elif choice == "failed":
            m.record_failed(rid, "boom", stage="generate", retryable=rng.random() < 0.5)
        elif choice == "downloaded":
            m.record_downloaded(
                rid,
                output=f"o/{n}.mp4",
                size=n,
                sha256="0" * 64,
                mtime_ns=rng.randrange(10**18),
                video={"duration": 5.0, "width": 1, "height": 1, "codec": "h264"},
                download_seconds=rng.random(),
            )
        elif choice == "reset":
            m.record_reset(rid, "retry")
        elif choice == "verified":
            m.record_verified(rid, rng.randrange(10**18))
        elif choice == "unknown":
            m.record_unknown(rid, "timeout")
        else:
            m.record_forgotten(rid, "force")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_compaction_preserves_the_folded_state_exactly(tmp_path: Path, seed: int) -> None:
    """Compacting a long random history gives the same state, in one snapshot per request."""
    rng = random.Random(seed)
    with Manifest.open(tmp_path, compact=False) as m:
        with m.group():
            random_history(m, rng, requests=200, events=1500)
        before = dict(m.state)
        assert m.lines > 1000
    assert read_state(tmp_path) == before
    with Manifest.open(tmp_path) as m:
        assert dict(m.state) == before
        assert m.lines == len(before)
    records = lines_of(tmp_path)
    assert {r["event"] for r in records} == {"snapshot"}
    assert read_state(tmp_path) == before
    assert not list(tmp_path.glob("*.part"))


def judged_facts(folder: Path) -> dict[str, tuple[Any, ...]]:
    """Return id -> (status, generation id, output, size, sha256) read by the oracle."""
    return {
        rid: (e.status, e.generation_id, e.output, e.size, e.sha256)
        for rid, e in oracles.read_manifest(folder).items()
    }


def loaded_facts(folder: Path) -> dict[str, tuple[Any, ...]]:
    """Return the same facts as `read_state` folds them."""
    return {
        rid: (s.status, s.generation_id, s.output, s.size, s.sha256)
        for rid, s in read_state(folder).items()
    }


@pytest.mark.parametrize("seed", [4, 5])
def test_loader_and_independent_reader_agree_on_random_histories(
    tmp_path: Path, seed: int
) -> None:
    """`read_state` and the oracle written from the docstring fold a random history, and
    its compaction into snapshots, to the same facts per request."""
    with Manifest.open(tmp_path, compact=False) as m, m.group():
        random_history(m, random.Random(seed), requests=150, events=1200)
    assert judged_facts(tmp_path) == loaded_facts(tmp_path)
    Manifest.open(tmp_path).close()  # compacts
    assert {r["event"] for r in lines_of(tmp_path)} == {"snapshot"}
    assert judged_facts(tmp_path) == loaded_facts(tmp_path)


def test_no_compaction_below_the_thresholds(tmp_path: Path) -> None:
    """A short history, or one with few lines per request, is left as it is."""
    with Manifest.open(tmp_path) as m:
        for n in range(300):
            record_done(m, n)  # 1200 lines, 4 per request: not "far more"
    size = (tmp_path / MANIFEST_NAME).stat().st_size
    with Manifest.open(tmp_path) as m:
        assert m.lines == 1200
    assert (tmp_path / MANIFEST_NAME).stat().st_size == size


def test_appends_after_compaction_fold_on_top_of_snapshots(tmp_path: Path) -> None:
    """Events appended after a compaction still apply to the snapshotted state."""
    with Manifest.open(tmp_path) as m:
        m.record_submitting(make_request(1))
        for _ in range(1100):
            m.record_verified("req000000000001", 5)  # inflates the log
        m.record_submitted("req000000000001", "g1")
    with Manifest.open(tmp_path) as m:
        assert m.lines == 1
        m.record_completed("req000000000001")
    state = read_state(tmp_path)["req000000000001"]
    assert (state.status, state.generation_id, state.completed_at is not None) == (
        "pending",
        "g1",
        True,
    )


# ---------------------------------------------------------------- fsync ordering


def test_each_record_is_one_write_then_fsync_before_returning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """submitting/submitted are written and fsynced before the call returns (before the POST)."""
    trace = SyscallTrace(monkeypatch)
    path = str(tmp_path / MANIFEST_NAME)
    with Manifest.open(tmp_path) as m:
        trace.calls.clear()
        m.record_submitting(make_request(1))
        assert trace.calls == [("write", path), ("fsync", path)]
        m.record_submitted("req000000000001", "g1")
        assert trace.calls[2:] == [("write", path), ("fsync", path)]
        assert m.state["req000000000001"].generation_id == "g1"


def test_group_commits_many_records_with_one_write_and_one_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records inside group() share a single write and fsync, and appear in state after it."""
    with Manifest.open(tmp_path) as m:
        for n in range(20):
            m.record_submitting(make_request(n))
            m.record_submitted(f"req{n:012d}", f"g{n}")
        trace = SyscallTrace(monkeypatch)
        with m.group():
            for n in range(20):
                m.record_completed(f"req{n:012d}")
            assert m.state["req000000000000"].completed_at is None  # not durable yet
        assert [c[0] for c in trace.calls] == ["write", "fsync"]
        assert all(m.state[f"req{n:012d}"].completed_at for n in range(20))
    assert len(lines_of(tmp_path)) == 60


def test_submitted_inside_a_group_is_flushed_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A generation id never waits in a group buffer: it is fsynced before the call returns."""
    with Manifest.open(tmp_path) as m:
        m.record_submitting(make_request(1))
        m.record_submitting(make_request(2))
        trace = SyscallTrace(monkeypatch)
        with m.group():
            m.record_failed("req000000000002", "x", stage="submit", retryable=False)
            m.record_submitted("req000000000001", "g1")
            assert [c[0] for c in trace.calls] == ["write", "fsync"]
            assert m.state["req000000000001"].generation_id == "g1"
    assert [r["event"] for r in lines_of(tmp_path)][-2:] == ["failed", "submitted"]


def test_compaction_writes_temp_fsyncs_renames_then_fsyncs_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Compaction is atomic: temp file written and fsynced, renamed, then the folder fsynced."""
    with Manifest.open(tmp_path) as m:
        m.record_submitting(make_request(1))
        with m.group():
            for _ in range(1100):
                m.record_verified("req000000000001", 5)
    trace = SyscallTrace(monkeypatch)
    Manifest.open(tmp_path).close()
    kinds = [(kind, Path(what.split(" -> ")[-1]).name) for kind, what in trace.calls]
    first_replace = next(i for i, c in enumerate(kinds) if c[0] == "replace")
    temp_write = kinds.index(next(c for c in kinds if c[0] == "write" and ".part" in c[1]))
    temp_fsync = kinds.index(next(c for c in kinds if c[0] == "fsync" and ".part" in c[1]))
    assert temp_write < temp_fsync < first_replace
    assert kinds[first_replace] == ("replace", MANIFEST_NAME)
    assert kinds[first_replace + 1] == ("fsync", tmp_path.name)  # the folder


# --------------------------------------------------------------------------- locking


def test_second_open_in_the_same_process_is_refused_with_pid(tmp_path: Path) -> None:
    """While a manifest is open, a second opener gets LockError naming the holder."""
    folder = tmp_path / "dragon"
    with Manifest.open(folder):
        with pytest.raises(LockError) as info:
            Manifest.open(folder)
        message = str(info.value)
        assert message.startswith(f"spec 'dragon' is being run by pid {os.getpid()} since ")
        assert "wait for it" in message
    Manifest.open(folder).close()  # released on close


def test_failed_open_releases_the_lock(tmp_path: Path) -> None:
    """An open that fails after locking (corrupt manifest) does not keep the lock."""
    (tmp_path / MANIFEST_NAME).write_text("{bad\n" + '{"v":1,"event":"completed","id":"a"}\n')
    with pytest.raises(StorageError):
        Manifest.open(tmp_path)
    (tmp_path / MANIFEST_NAME).unlink()
    Manifest.open(tmp_path).close()


def test_unwritable_folder_is_a_storage_error(tmp_path: Path) -> None:
    """A folder that cannot be created gives one StorageError line saying what to do."""
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StorageError) as info:
        Manifest.open(blocker / "spec")
    assert str(info.value) == (
        f"cannot write {blocker / 'spec'}: Not a directory — check the output folder and run "
        f"again; finished records are kept"
    )


def test_write_failure_keeps_complete_lines_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that fails half-way is cut back: the file keeps exactly its complete lines."""
    with Manifest.open(tmp_path) as m:
        record_done(m, 0)
        good = (tmp_path / MANIFEST_NAME).read_bytes()
        real_write = os.write

        def short_then_enospc(fd: int, data: Any) -> int:
            if len(data) > 10:
                return real_write(fd, bytes(data[:10]))
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(manifest_mod.os, "write", short_then_enospc)
        with pytest.raises(StorageError, match="disk is full"):
            m.record_submitting(make_request(1))
        monkeypatch.setattr(manifest_mod.os, "write", real_write)
        assert (tmp_path / MANIFEST_NAME).read_bytes() == good
        assert "req000000000001" not in m.state
        m.record_submitting(make_request(2))  # still usable once space is back
    assert set(read_state(tmp_path)) == {"req000000000000", "req000000000002"}


# ------------------------------------------------------------------ every fact, kept


def _rich_history(m: Manifest) -> None:
    """Record one request of every kind, with every optional fact a run can record."""
    paid = make_request(1)
    m.record_submitting(paid, {"sha256:" + "ab" * 32: "images/a.png"},
                        client_request_id="runner.req000000000001.1.aa")
    m.record_submitted(paid.id, "gen-1", cost={"usd": 0.25, "credits": 52},
                       evidence={"source": "usage logs", "client_request_id": "c"},
                       submitted_at="2026-01-01T00:00:00.000Z")
    m.record_completed(paid.id)
    m.record_downloaded(paid.id, output="16x9/seed-1.mp4", size=10, sha256="0" * 64,
                        mtime_ns=5, video={"duration": 5.0, "codec": "h264"},
                        download_seconds=1.23456)
    m.record_submitting(make_request(2))
    m.record_unknown("req000000000002", "timed out")
    m.record_submitting(make_request(3))
    m.record_submitted("req000000000003", "gen-3")
    m.record_failed("req000000000003", "moderation", stage="generate", retryable=False)
    m.record_submitting(make_request(4))
    m.record_submitted("req000000000004", "gen-4")
    m.record_lost("req000000000004", "404 on poll")
    adopted = dataclasses.replace(
        m.state[paid.id], id="req000000000005", generation_id="gen-5", output="o/5.mp4",
        cost={"usd": 0.5, "credits": None})
    m.record_adopted(adopted, "sidecar")


def test_every_recorded_fact_survives_reopening_and_compaction(tmp_path: Path) -> None:
    """Cost, evidence, images, video facts, reasons, lost and adopted records fold back
    identically from the log and from its compacted snapshots (nothing paid is forgotten)."""
    with Manifest.open(tmp_path, compact=False) as m:
        _rich_history(m)
        before = dict(m.state)
    done = before["req000000000001"]
    assert done.cost == {"usd": 0.25, "credits": 52} and done.generation_id == "gen-1"
    assert done.images == {"sha256:" + "ab" * 32: "images/a.png"}
    assert done.video == {"duration": 5.0, "codec": "h264"} and done.download_seconds == 1.235
    assert before["req000000000002"].reason == "timed out"
    assert before["req000000000003"].reason == "moderation"
    assert (before["req000000000004"].status, before["req000000000004"].reason) == (
        "lost", "404 on poll")
    assert before["req000000000005"].cost == {"usd": 0.5, "credits": None}
    assert before["req000000000005"].status == "done"
    submitted = [r for r in lines_of(tmp_path) if r["event"] == "submitted"][0]
    assert submitted["evidence"] == {"source": "usage logs", "client_request_id": "c"}
    assert read_state(tmp_path) == before
    manifest_mod._compact(tmp_path / MANIFEST_NAME, before, FakeClock(start=1_700_000_000))
    snapshots = lines_of(tmp_path)
    assert [r["event"] for r in snapshots] == ["snapshot"] * len(before)
    assert all(r["ts"] == "2023-11-14T22:13:20.000Z" and r["v"] == 1 for r in snapshots)
    assert read_state(tmp_path) == before


def test_records_a_crash_must_not_lose_are_durable_even_inside_a_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """unknown, lost and adopted records are written and fsynced before the call returns."""
    with Manifest.open(tmp_path) as m:
        for n in (1, 2):
            m.record_submitting(make_request(n))
        m.record_submitted("req000000000002", "gen-2")
        trace = SyscallTrace(monkeypatch)
        with m.group():
            m.record_unknown("req000000000001", "timed out")
            assert [c[0] for c in trace.calls] == ["write", "fsync"]
            m.record_lost("req000000000002", "gone")
            assert [c[0] for c in trace.calls] == ["write", "fsync"] * 2
            m.record_adopted(dataclasses.replace(m.state["req000000000002"], id="req9"), "lock")
            assert [c[0] for c in trace.calls] == ["write", "fsync"] * 3
            assert m.state["req000000000001"].status == "unknown"
            assert m.state["req000000000002"].status == "lost"
            assert "req9" in m.state


def test_reasons_and_sources_are_kept_on_their_lines(tmp_path: Path) -> None:
    """Failed, reset and forgotten records carry their reason (forgotten: its evidence);
    a download records where the bytes came from; an orphan its output."""
    with Manifest.open(tmp_path) as m:
        record_done(m, 1)
        m.record_submitting(make_request(2))
        m.record_failed("req000000000002", "boom", stage="submit", retryable=True)
        m.record_reset("req000000000001", "re-poll")
        m.record_forgotten("req000000000002", "force", evidence={"source": "usage logs"})
        m.record_orphan_removed("req000000000001", "o/1.mp4")
    by_event = {r["event"]: r for r in lines_of(tmp_path)}
    assert by_event["failed"]["reason"] == "boom"
    assert by_event["reset"]["reason"] == "re-poll"
    assert by_event["forgotten"]["reason"] == "force"
    assert by_event["forgotten"]["evidence"] == {"source": "usage logs"}
    assert by_event["downloaded"]["source"] == "api"
    assert by_event["orphan_removed"]["output"] == "o/1.mp4"


def test_verify_checks_every_done_request_whatever_comes_before_it(tmp_path: Path) -> None:
    """A pending request or a missing video earlier in the manifest does not stop the check
    of the ones after it."""
    (tmp_path / "b.mp4").write_bytes(b"video")
    sha = manifest_mod.sha256_file(tmp_path / "b.mp4")
    st = (tmp_path / "b.mp4").stat()
    states = {
        "p": manifest_mod.RequestState(id="p", status="pending"),
        "m": manifest_mod.RequestState(id="m", status="done", output="gone.mp4", size=5,
                                       sha256=sha),
        "b": manifest_mod.RequestState(id="b", status="done", output="b.mp4", size=5,
                                       sha256=sha, mtime_ns=st.st_mtime_ns),
    }
    result = manifest_mod.verify(states, tmp_path)
    assert (result.ok, result.missing, result.changed) == (("b",), ("m",), ())
