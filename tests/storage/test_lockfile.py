"""The lock file on its own: which results it keeps, the bytes it writes, what it refuses."""

from __future__ import annotations

import concurrent.futures
import errno
import itertools
import json
import locale
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from runner import durable, lockfile
from runner.errors import SpecError
from runner.lockfile import (
    HEADER,
    LockEntry,
    LockWriter,
    ensure_union_merge,
    entry_from_state,
    read_lock,
    render,
    state_from_entry,
)
from runner.manifest import RequestState

SHA = "ab" * 32
VIDEO = {"codec": "h264", "duration": 5.0, "height": 720, "width": 1280}
COST = {"credits": 2, "usd": 0.5}


def state(status: Any = "done", **changes: Any) -> RequestState:
    """Return a manifest state with every field a lock line may take filled in."""
    full = RequestState(
        id="r1", status=status, generation_id="gen-1", spec="specs/s.yaml", spec_name="s",
        job="default", provider="aimlapi", model="runway/gen4_turbo",
        endpoint="/v2/generate/video/runway/generation",
        body={"model": "runway/gen4_turbo", "seed": 7, "image_url": f"sha256:{SHA}"},
        images={f"sha256:{SHA}": "images/frame.png"}, seed=7, seed_derived=True,
        output="16x9/seed-7.mp4", reason="gone", stage="download", size=123, sha256=SHA,
        video=VIDEO, client_request_id="crid-1", requested_at="2026-01-01T00:00:00Z",
        cost=COST,
    )
    return replace(full, **changes)


def entry(rid: str = "r1", state: Any = "done", **changes: Any) -> LockEntry:
    """Return a lock entry for request `rid`."""
    base = LockEntry(id=rid, state=state, output=f"{rid}.mp4", provider="aimlapi",
                     model="m", endpoint="/e", payload={"seed": 1}, sha256=SHA, size=10,
                     generation_id="gen-" + rid)
    return replace(base, **changes)


def write_lines(path: Path, *lines: dict[str, Any] | str) -> Path:
    """Write a lock file of the header and `lines` (dicts as JSON)."""
    body = "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines)
    path.write_text(HEADER + body, encoding="utf-8")
    return path


def line_of(e: LockEntry) -> dict[str, Any]:
    """Return the JSON object of an entry's line."""
    data: dict[str, Any] = json.loads(e.to_line())
    return data


def recorded(path: Path) -> str:
    """Return the state the lock at `path` records for request r1."""
    return read_lock(path)["r1"].state


def held(writer: LockWriter) -> str:
    """Return the state a writer holds for request r1."""
    return writer.entries["r1"].state


def refusal(path: Path) -> str:
    """Return the one problem line reading the lock at `path` gives."""
    with pytest.raises(SpecError) as info:
        read_lock(path)
    (problem,) = info.value.problems
    return str(problem)


# ----------------------------------------------------------------- what a line records


def test_a_done_result_keeps_its_video_facts_and_cost_but_no_retry_details(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A done line: which bytes (sha256, size, probed facts), what it cost, how it was made
    (payload, seed, images relative to the lock); no reason, client id or request time."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "specs").mkdir()
    e = entry_from_state(state("done"), tmp_path / "specs")
    assert e is not None
    assert line_of(e) == {
        "id": "r1", "state": "done", "output": "16x9/seed-7.mp4", "provider": "aimlapi",
        "model": "runway/gen4_turbo", "endpoint": "/v2/generate/video/runway/generation",
        "payload": {"model": "runway/gen4_turbo", "seed": 7, "image_url": f"sha256:{SHA}"},
        "images": {f"sha256:{SHA}": "../images/frame.png"}, "seed": 7, "seed_derived": True,
        "generation_id": "gen-1", "sha256": SHA, "size": 123, "video": VIDEO, "cost": COST,
    }


def test_a_lost_result_keeps_its_reason_and_last_known_bytes(tmp_path: Path) -> None:
    """A lost line says why, and which bytes it had; no probed facts, no retry details."""
    e = entry_from_state(state("lost"), tmp_path)
    assert e is not None
    data = line_of(e)
    assert (data["state"], data["reason"], data["sha256"], data["size"]) == (
        "lost", "gone", SHA, 123)
    assert not {"video", "client_request_id", "requested_at"} & set(data)


def test_an_unknown_outcome_keeps_what_settles_it(tmp_path: Path) -> None:
    """An unknown line keeps the client request id and when the POST went out (what the
    usage logs are searched by), and no video facts."""
    e = entry_from_state(state("unknown", generation_id=None), tmp_path)
    assert e is not None
    data = line_of(e)
    assert (data["state"], data["client_request_id"], data["requested_at"]) == (
        "unknown", "crid-1", "2026-01-01T00:00:00Z")
    assert not {"sha256", "size", "video", "reason", "generation_id"} & set(data)


@pytest.mark.parametrize(
    ("status", "stage", "generation_id", "kept"),
    [
        ("pending", None, "gen-1", "pending"),  # accepted and paid, still generating
        ("pending", None, None, None),  # not accepted yet: nothing paid
        ("failed", "download", "gen-1", "pending"),  # paid; its video is still to be fetched
        ("failed", "probe", "gen-1", "pending"),
        ("failed", "generate", "gen-1", None),  # a failed generation is not billed
        ("failed", "submit", None, None),
    ],
)
def test_what_counts_as_paid_and_still_to_fetch(
    tmp_path: Path, status: str, stage: str | None, generation_id: str | None, kept: str | None
) -> None:
    """Accepted generations (pending, or failed only at download or probe) are lines;
    failed generations and unaccepted requests are not."""
    e = entry_from_state(
        state(status, stage=stage, generation_id=generation_id, sha256=None, size=None,
              video=None, cost=None),
        tmp_path,
    )
    assert (e.state if e is not None else None) == kept
    if e is not None:
        assert not {"sha256", "size", "video", "cost", "reason", "client_request_id",
                    "requested_at"} & set(line_of(e))
        assert line_of(e)["generation_id"] == "gen-1"


@pytest.mark.parametrize("missing", ["output", "provider", "model"])
def test_a_state_without_where_or_what_is_no_line(tmp_path: Path, missing: str) -> None:
    """A state missing its output, provider or model (an old record) makes no line."""
    assert entry_from_state(state("done", **{missing: None}), tmp_path) is None


def test_a_line_leaves_out_empty_and_false_fields_and_is_canonical() -> None:
    """None, false and {} fields are left out; keys are sorted; text is not escaped."""
    e = entry(payload={"prompt": "café"}, sha256=None, size=None, generation_id=None,
              state="unknown", seed=0)
    assert e.to_line() == (
        '{"endpoint": "/e", "id": "r1", "model": "m", "output": "r1.mp4", "payload": '
        '{"prompt": "café"}, "provider": "aimlapi", "seed": 0, "state": "unknown"}')


def test_a_state_without_endpoint_or_cost_has_an_empty_endpoint_and_no_cost(
    tmp_path: Path,
) -> None:
    """An old record without an endpoint gets "", one without a cost records none."""
    e = entry_from_state(state("done", endpoint=None, cost=None, video=None), tmp_path)
    assert e is not None
    assert (e.endpoint, e.cost, e.video) == ("", None, None)


def test_a_line_read_back_is_the_state_it_was_made_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Adopting a lock line gives back the manifest state: status, ids, body, images as
    the manifest shows them (relative to the working folder), facts and cost."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "specs").mkdir()
    for status in ("done", "lost", "unknown", "pending"):
        original = state(status, stage=None)
        e = entry_from_state(original, tmp_path / "specs")
        assert e is not None
        back = state_from_entry(e, spec="specs/s.yaml", spec_name="s",
                                lock_dir=tmp_path / "specs")
        assert (back.id, back.status, back.spec, back.spec_name) == (
            "r1", status, "specs/s.yaml", "s")
        assert (back.provider, back.model, back.endpoint) == (
            original.provider, original.model, original.endpoint)
        assert (dict(back.body), dict(back.images)) == (dict(original.body), original.images)
        assert (back.seed, back.seed_derived, back.output) == (7, True, "16x9/seed-7.mp4")
        assert back.generation_id == e.generation_id
        assert (back.reason, back.client_request_id, back.requested_at) == (
            e.reason, e.client_request_id, e.requested_at)
        assert (back.size, back.sha256, back.cost) == (e.size, e.sha256, COST)
        assert back.video == (VIDEO if status == "done" else None)
    outside = entry(images={"sha256:x": "../../elsewhere/x.png"})
    back = state_from_entry(outside, spec="s.yaml", spec_name="s", lock_dir=tmp_path / "specs")
    assert back.images == {"sha256:x": str(tmp_path.parent / "elsewhere" / "x.png")}
    assert (back.video, back.cost) == (None, None)


# ------------------------------------------------------------------------------ reading


def test_a_missing_lock_is_empty_and_comments_and_blank_lines_are_skipped(
    tmp_path: Path,
) -> None:
    """No lock file is no paid results; comments and blank lines are not entries."""
    assert read_lock(tmp_path / "none.lock") == {}
    path = write_lines(tmp_path / "s.lock", "", "   ", "# a note", line_of(entry("a")),
                       "  " + entry("b").to_line() + "  ")
    assert read_lock(path) == {"a": entry("a"), "b": entry("b")}


@pytest.mark.parametrize("marker", ["<<<<<<< HEAD", "=======", ">>>>>>> branch", "||||||| base"])
def test_a_conflicted_lock_is_refused_at_the_marker_with_how_to_merge(
    tmp_path: Path, marker: str
) -> None:
    """Git's conflict markers: one line at the marker saying to keep both sides."""
    path = write_lines(tmp_path / "s.lock", line_of(entry("a")), marker)
    assert refusal(path) == (
        f"{path}:3:1: the lock file has a merge conflict — keep the lines of both sides (each "
        "is its own request) and delete the <<<<<<< ======= >>>>>>> markers; add "
        "'*.yaml.lock merge=union' to .gitattributes so git merges locks by itself")


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("{not json", "not a JSON object (Expecting property name enclosed in double quotes: "
                      "line 1 column 2 (char 1)) — restore the lock from git"),
        ("[1, 2]", "each line is one JSON object — restore the lock from git"),
        ('{"id": "a", "state": "done"}',
         "an entry lacks output, provider, model, endpoint, payload — restore the lock from git"),
        ({**line_of(entry("a")), "state": "paid"},
         "unknown state 'paid' — use one of done, pending, unknown, lost"),
        ({**line_of(entry("a")), "zeta": 1, "alpha": 2},
         "unknown field 'alpha' — a newer runner wrote it; upgrade"),
        ({**line_of(entry("a")), "sha256": None},
         "a done entry needs its sha256 and size — restore the lock from git"),
        ({**line_of(entry("a")), "size": "10"},
         "a done entry needs its sha256 and size — restore the lock from git"),
        ({**line_of(entry("a", "pending", sha256=None, size=None)), "generation_id": ""},
         "a pending entry needs its generation_id — restore the lock from git"),
    ],
)
def test_a_hand_broken_line_is_refused_at_its_line_with_what_is_wrong(
    tmp_path: Path, line: dict[str, Any] | str, words: str
) -> None:
    """Paid results are never guessed at: each broken line is one problem at its line."""
    path = write_lines(tmp_path / "s.lock", line_of(entry("ok")), line)
    assert refusal(path) == f"{path}:3:1: {words}"


def test_an_unreadable_lock_is_refused_with_the_fix(tmp_path: Path) -> None:
    """A lock that is not UTF-8 text, or not a file, is refused at its first line."""
    path = tmp_path / "s.lock"
    path.write_bytes(HEADER.encode() + b"\xff\xfe\n")
    assert refusal(path).startswith(f"{path}:1:1: cannot read the lock file ('utf-8' codec")
    assert refusal(path).endswith(") — restore it from git")
    folder = tmp_path / "d.lock"
    folder.mkdir()
    assert refusal(folder).startswith(f"{folder}:1:1: cannot read the lock file (")


def test_a_lock_past_the_size_limit_is_refused_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file bigger than any lock is refused rather than read whole; one at the limit
    is read."""
    import runner.lockfile

    path = write_lines(tmp_path / "s.lock")
    monkeypatch.setattr(runner.lockfile, "MAX_LOCK_BYTES", len(HEADER.encode()))
    assert read_lock(path) == {}
    monkeypatch.setattr(runner.lockfile, "MAX_LOCK_BYTES", len(HEADER.encode()) - 1)
    assert refusal(path) == (
        f"{path}:1:1: the lock file is over {len(HEADER.encode()) - 1:,} bytes — is it a "
        "lock file?")


def test_two_lines_for_one_request_keep_the_furthest_along(tmp_path: Path) -> None:
    """After a union merge, one request may have two lines: done beats lost beats pending
    beats unknown, whichever comes first; identical lines are one."""
    done, lost = entry("a"), entry("a", "lost", reason="gone")
    pending = entry("a", "pending", sha256=None, size=None)
    unknown = entry("a", "unknown", sha256=None, size=None, generation_id=None)
    ranked = [done, lost, pending, unknown]
    for i, better in enumerate(ranked):
        for worse in ranked[i + 1:]:
            for first, second in ((better, worse), (worse, better)):
                path = write_lines(tmp_path / "s.lock", line_of(first), line_of(second))
                assert read_lock(path) == {"a": better}, (first.state, second.state)
    path = write_lines(tmp_path / "s.lock", line_of(done), line_of(done))
    assert read_lock(path) == {"a": done}


def test_two_different_videos_for_one_request_are_refused_naming_both_lines(
    tmp_path: Path,
) -> None:
    """Both branches paid for one request and kept different bytes: the user chooses."""
    path = write_lines(tmp_path / "s.lock", line_of(entry("a")), line_of(entry("b")),
                       line_of(entry("a", sha256="cd" * 32)))
    assert refusal(path) == (
        f"{path}:4:1: request a has two different videos (lines 2 and 4) — both branches "
        "paid for it; keep the line of the one you want")
    same = write_lines(tmp_path / "t.lock", line_of(entry("a")),
                       line_of(entry("a", cost=COST)))
    assert read_lock(same) == {"a": entry("a")}  # the same bytes: the first line


# ------------------------------------------------------------------------------ writing


def test_the_file_is_the_header_then_lines_by_output_then_id() -> None:
    """Deterministic bytes: the header, then entries sorted by output path, then id."""
    entries = [entry("b", output="x.mp4"), entry("c", output="a.mp4"), entry("a", output="x.mp4")]
    assert render(entries).decode("utf-8") == HEADER + "".join(
        e.to_line() + "\n" for e in (entries[1], entries[2], entries[0]))


def test_a_writer_writes_only_paid_results_and_only_when_they_change(tmp_path: Path) -> None:
    """Nothing paid, no file; a result is written once; the same result again, or a
    change undone before the next write, leaves the file alone (not even replaced)."""
    path = tmp_path / "s.yaml.lock"
    writer = LockWriter(path)
    writer.put(state("pending", generation_id=None))  # nothing paid
    writer.flush()
    assert not path.exists()
    writer.put(state("done"))
    writer.flush()
    first = path.read_bytes()
    assert read_lock(path)["r1"].state == "done"
    inode = path.stat().st_ino  # each rewrite is a new file renamed into place
    writer.put(state("done"))
    writer.flush()
    writer.put(state("lost"))
    writer.put(state("done"))  # changed and changed back: the same bytes again
    writer.flush()
    assert path.read_bytes() == first and path.stat().st_ino == inode
    reopened = LockWriter(path)
    reopened.put(state("done"))
    reopened.flush(final=True)
    assert path.stat().st_ino == inode


def test_a_record_emptied_again_leaves_no_lock_or_an_empty_one(tmp_path: Path) -> None:
    """A result taken back before the first write leaves no file (not even a header,
    at the final flush either); a lock whose every line is removed is rewritten empty."""
    path = tmp_path / "s.yaml.lock"
    fresh = LockWriter(path)
    fresh.put(state("pending"))
    fresh.remove("r1")
    fresh.flush()
    fresh.flush(final=True)
    assert not path.exists()
    write_lines(path, line_of(entry("r1")))
    pruned = LockWriter(path)
    pruned.remove("r1")
    pruned.flush()
    assert path.read_text(encoding="utf-8") == HEADER


def test_catching_up_keeps_a_done_line_a_stale_manifest_lacks(tmp_path: Path) -> None:
    """Bringing a lock up to date from an older manifest keeps a committed done line;
    a live run's news replaces it."""
    path = tmp_path / "s.yaml.lock"
    writer = LockWriter(path)
    writer.put(state("done"))
    writer.put(state("pending", sha256=None, size=None), catch_up=True)
    writer.put(state("failed", stage="generate"), catch_up=True)  # no line of its own
    assert held(writer) == "done"
    writer.put(state("done", sha256="cd" * 32), catch_up=True)
    assert writer.entries["r1"].sha256 == "cd" * 32
    writer.put(state("lost"))
    assert held(writer) == "lost"
    writer.put(state("failed", stage="generate"))  # nothing paid: the line stays
    assert held(writer) == "lost"


def test_forgetting_drops_only_lines_without_a_video(tmp_path: Path) -> None:
    """A refused POST forgets its pending or unknown line; done and lost lines stay until
    replaced; removing (pruned files) drops any line."""
    path = tmp_path / "s.yaml.lock"
    write_lines(path, *(line_of(e) for e in (
        entry("d"), entry("l", "lost"), entry("p", "pending"),
        entry("u", "unknown", generation_id=None))))
    writer = LockWriter(path)
    for rid in ("d", "l", "p", "u", "absent"):
        writer.forget(rid)
    writer.flush()
    assert sorted(read_lock(path)) == ["d", "l"]
    writer.remove("absent")
    writer.flush()
    assert sorted(read_lock(path)) == ["d", "l"]
    writer.remove("d")
    writer.flush()
    assert sorted(read_lock(path)) == ["l"]


def test_the_last_flush_puts_a_merged_lock_back_in_order(tmp_path: Path) -> None:
    """A lock git merged line by line (out of order, a line twice) is canonical again
    after the run's final flush, even with nothing new to record."""
    path = write_lines(tmp_path / "s.yaml.lock", line_of(entry("b")), line_of(entry("a")),
                       line_of(entry("b")))
    writer = LockWriter(path)
    writer.flush()
    assert path.read_text(encoding="utf-8").count('"id": "b"') == 2  # not final: untouched
    writer.flush(final=True)
    assert path.read_bytes() == render([entry("a"), entry("b")])


def test_rewrites_during_a_run_take_at_most_a_tenth_of_its_time(tmp_path: Path) -> None:
    """After a rewrite that took T seconds, changes wait until 10 x T have passed (exactly
    10 x T is enough); without changes nothing is written."""
    # The instants the writer reads, in order: the check, then the rewrite's start and end.
    instants = iter([100.0, 100.0, 102.0, 121.9, 122.0, 122.0, 122.0])
    path = tmp_path / "s.yaml.lock"
    writer = LockWriter(path, clock=lambda: next(instants))
    writer.maybe_flush()
    assert not path.exists()  # nothing to write (and no time read)
    writer.put(state("done"))
    writer.maybe_flush()  # at 100: the first rewrite, from 100 to 102
    assert recorded(path) == "done"
    writer.put(state("lost"))
    writer.maybe_flush()  # at 121.9: 19.9 s since, under 10 x 2 s
    assert recorded(path) == "done"
    writer.maybe_flush()  # at 122.0: exactly 10 x 2 s since
    assert recorded(path) == "lost"
    assert next(instants, None) is None


# ------------------------------------------------------------------ .gitattributes


def test_a_new_lock_in_a_git_tree_adds_the_union_merge_rule_once(tmp_path: Path) -> None:
    """Creating a lock inside a git work tree adds both rules to the folder's
    .gitattributes, after what is there, and never twice; outside git, nothing."""
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    specs = tmp_path / "repo" / "specs"
    specs.mkdir()
    (specs / ".gitattributes").write_text("*.png binary", encoding="utf-8")
    writer = LockWriter(specs / "s.yaml.lock")
    writer.put(state("done"))
    writer.flush()
    expected = ("*.png binary\n# runner: lock files keep both sides' lines when branches "
                "merge\n*.yaml.lock merge=union\n*.yml.lock merge=union\n")
    assert (specs / ".gitattributes").read_text(encoding="utf-8") == expected
    ensure_union_merge(specs)
    assert (specs / ".gitattributes").read_text(encoding="utf-8") == expected
    half = tmp_path / "repo" / "half"
    half.mkdir()
    (half / ".gitattributes").write_text("*.yaml.lock merge=union\n", encoding="utf-8")
    ensure_union_merge(half)
    assert (half / ".gitattributes").read_text(encoding="utf-8") == (
        "*.yaml.lock merge=union\n# runner: lock files keep both sides' lines when branches "
        "merge\n*.yml.lock merge=union\n")
    fresh = tmp_path / "repo" / "fresh"
    fresh.mkdir()
    ensure_union_merge(fresh)
    assert (fresh / ".gitattributes").read_text(encoding="utf-8") == (
        "# runner: lock files keep both sides' lines when branches merge\n"
        "*.yaml.lock merge=union\n*.yml.lock merge=union\n")
    outside = tmp_path / "plain"
    outside.mkdir()
    plain = LockWriter(outside / "s.yaml.lock")
    plain.put(state("done"))
    plain.flush()
    assert sorted(p.name for p in outside.iterdir()) == ["s.yaml.lock"]


def test_an_unreadable_gitattributes_is_left_alone(tmp_path: Path) -> None:
    """A .gitattributes the runner cannot read is the user's: no error, not replaced."""
    (tmp_path / ".git").mkdir()
    (tmp_path / ".gitattributes").mkdir()
    ensure_union_merge(tmp_path)
    assert (tmp_path / ".gitattributes").is_dir()


@pytest.fixture
def ascii_locale() -> Iterator[None]:
    """The process's character type locale set to C (ASCII), as on a machine without a
    UTF-8 locale; restored afterwards."""
    before = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")
    try:
        yield
    finally:
        locale.setlocale(locale.LC_CTYPE, before)


@pytest.mark.usefixtures("ascii_locale")
def test_a_gitattributes_with_non_ascii_text_is_kept_under_an_ascii_locale(
    tmp_path: Path,
) -> None:
    """.gitattributes is read and written as UTF-8 whatever the locale: a user's accented
    comment survives and the rules are added after it."""
    assert locale.getpreferredencoding(False).lower() != "utf-8"  # the locale took effect
    (tmp_path / ".git").mkdir()
    mine = "# vidéos générées: ne pas fusionner\n*.mp4 binary\n"
    (tmp_path / ".gitattributes").write_bytes(mine.encode("utf-8"))
    ensure_union_merge(tmp_path)
    assert (tmp_path / ".gitattributes").read_bytes().decode("utf-8") == (
        mine + "# runner: lock files keep both sides' lines when branches merge\n"
        "*.yaml.lock merge=union\n*.yml.lock merge=union\n")


# ------------------------------------------------------ rewrites in the lock's own thread


def disk_full_once(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Make the lock's first rewrite fail as on a full disk and the later ones succeed;
    return the list of what each rewrite tried to write."""
    attempts: list[bytes] = []
    write = durable.write_atomic

    def full_once(path: Path, data: bytes) -> None:
        attempts.append(data)
        if len(attempts) == 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        write(path, data)

    monkeypatch.setattr(lockfile, "write_atomic", full_once)
    return attempts


def ticking() -> Callable[[], float]:
    """A clock that moves 1,000 s per reading: no rewrite is ever too recent to repeat."""
    return itertools.count(0.0, 1000.0).__next__


def test_inside_in_background_one_rewrite_is_out_at_a_time_in_the_locks_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Inside in_background(), a change is written by the lock's own thread before the
    block ends; while that rewrite is out, later changes wait for it instead of queueing
    more, and the block's end writes what came in meanwhile."""
    release, started = threading.Event(), threading.Event()
    writes: list[tuple[str, str]] = []  # (thread, state recorded for r1)
    write = durable.write_atomic

    def held_write(path: Path, data: bytes) -> None:
        writes.append((threading.current_thread().name, json.loads(data.splitlines()[-1])["state"]))
        started.set()
        assert release.wait(10)
        write(path, data)

    monkeypatch.setattr(lockfile, "write_atomic", held_write)
    path = tmp_path / "s.yaml.lock"
    writer = LockWriter(path, clock=ticking())
    with writer.in_background():
        writer.put(state("done"))
        writer.maybe_flush()
        assert started.wait(10)  # handed to the thread, which is writing it now
        writer.put(state("lost"))
        writer.maybe_flush()
        writer.maybe_flush()
        assert len(writes) == 1  # the second change waits for the first rewrite
        release.set()
    assert [(name.startswith("lockfile"), what) for name, what in writes] == [
        (True, "done"), (False, "lost")]
    assert recorded(path) == "lost"


def test_a_rewrite_that_failed_in_the_background_stops_the_run_at_the_next_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A rewrite that failed in the lock's thread (a full disk) is raised by the next
    maybe_flush, so the run stops there; a later rewrite never hides it."""
    attempts = disk_full_once(monkeypatch)
    path = tmp_path / "s.yaml.lock"
    writer = LockWriter(path, clock=ticking())
    reached = False
    with pytest.raises(OSError, match="No space left"), writer.in_background():
        writer.put(state("done"))
        writer.maybe_flush()
        # The rewrite handed to the thread, once it has failed there.
        assert writer._queued is not None
        concurrent.futures.wait([writer._queued], timeout=10)
        writer.put(state("lost"))
        writer.maybe_flush()
        reached = True
    assert not reached
    assert len(attempts) == 1  # nothing more was tried after the failure
    assert not path.exists()


def test_leaving_the_block_on_an_error_waits_for_the_rewrite_that_is_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An error inside in_background() (a run aborting) still waits for the rewrite in the
    lock's thread: the run's final flush must not race an older rewrite to the file."""
    shutting, release = threading.Event(), threading.Event()
    finished: list[bool] = []
    write = durable.write_atomic

    def held_write(path: Path, data: bytes) -> None:
        assert release.wait(10)
        write(path, data)
        finished.append(True)

    class Watched(concurrent.futures.ThreadPoolExecutor):
        def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
            shutting.set()  # the block is being left: now let the rewrite end
            super().shutdown(wait, cancel_futures=cancel_futures)

    monkeypatch.setattr(lockfile, "write_atomic", held_write)
    monkeypatch.setattr(lockfile, "ThreadPoolExecutor", Watched)
    def release_on_shutdown() -> None:
        if shutting.wait(10):
            release.set()

    releaser = threading.Thread(target=release_on_shutdown)
    releaser.start()
    writer = LockWriter(tmp_path / "s.yaml.lock", clock=ticking())
    with pytest.raises(RuntimeError, match="abort"), writer.in_background():
        writer.put(state("done"))
        writer.maybe_flush()
        raise RuntimeError("abort")
    assert finished == [True]  # written before the block let the error through
    releaser.join()


def test_a_last_rewrite_that_failed_is_raised_when_the_block_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A rewrite that failed in the lock's thread with no change after it is raised as
    the block ends cleanly: the run does not finish as if its lock were written."""
    attempts = disk_full_once(monkeypatch)
    writer = LockWriter(tmp_path / "s.yaml.lock", clock=ticking())
    with pytest.raises(OSError, match="No space left"), writer.in_background():
        writer.put(state("done"))
        writer.maybe_flush()
    assert len(attempts) == 1
