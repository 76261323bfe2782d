"""The independent judges in tests/oracles.py judge what the documented formats say."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from tests import oracles

FIXTURE_VIDEO = (
    Path(__file__).parent / "upgrade" / "fixtures" / "v0.1.0" / "outputs" / "dragon" / "16x9"
    / "seed-1.mp4"
)


def line(event: str, rid: str = "a", **fields: Any) -> bytes:
    """Return one manifest line as the docstring describes it."""
    record = {"v": 1, "event": event, "id": rid, "ts": "2026-11-21T22:00:00.000Z", **fields}
    return (json.dumps(record) + "\n").encode()


def test_a_complete_record_without_its_newline_is_a_torn_tail() -> None:
    """The last line counts only with its newline, however well it parses."""
    tail = line("submitted", generation_id="g")[:-1]
    logged = oracles.split_log(line("submitting") + tail)
    assert [r["event"] for r in logged.records] == ["submitting"]
    assert logged.torn == tail
    assert oracles.fold(logged.records)["a"].status == "unknown"


def test_garbage_tails_are_torn_and_garbage_before_records_is_corruption() -> None:
    """Zero-filled or cut tails are torn; a bad line followed by a good one is corrupt."""
    for tail in (b"\x00" * 50, b"\x00" * 9 + b"\n" + b"\x00", b'{"v": 1, "ev'):
        assert oracles.split_log(line("submitting") + tail).torn == tail
    with pytest.raises(oracles.ManifestCorrupt):
        oracles.split_log(line("submitting") + b"{oops\n" + line("submitted", generation_id="g"))


def test_events_fold_as_documented() -> None:
    """submitting → unknown, submitted → pending, downloaded → done, reset and forgotten."""
    records = [
        json.loads(raw)
        for raw in (
            line("submitting", "a", output="a.mp4", body={"seed": 1}, seed=1),
            line("submitted", "a", generation_id="ga"),
            line("completed", "a"),
            line("downloaded", "a", output="a.mp4", size=3, sha256="ab", mtime_ns=1),
            line("submitting", "b"),
            line("reset", "b"),  # no generation id: forgotten
            line("submitting", "c"),
            line("submitted", "c", generation_id="gc"),
            line("failed", "c", reason="boom", stage="generate", retryable=True),
            line("reset", "c"),  # has a generation id: poll it again
            line("submitting", "d"),
            line("forgotten", "d"),
            line("snapshot", "e", status="done", output="e.mp4", size=1, sha256="cd"),
        )
    ]
    entries = oracles.fold(records)
    assert set(entries) == {"a", "c", "e"}
    assert (entries["a"].status, entries["a"].generation_id, entries["a"].sha256) == (
        "done", "ga", "ab")
    assert (entries["c"].status, entries["c"].reason) == ("pending", None)
    assert entries["e"].output == "e.mp4"


def test_a_real_h264_mp4_passes_and_cut_or_foreign_files_do_not(tmp_path: Path) -> None:
    """A sandbox render passes; cut short, emptied or not an MP4 at all, it fails."""
    data = FIXTURE_VIDEO.read_bytes()
    assert oracles.mp4_problem(FIXTURE_VIDEO) is None
    for name, broken in {
        "cut": data[: len(data) - 10],
        "one byte more": data + b"\x00",
        "html": b"<html><body>Access denied</body></html>",
        "empty": b"",
    }.items():
        path = tmp_path / f"{name}.mp4"
        path.write_bytes(broken)
        assert oracles.mp4_problem(path) is not None, name


def test_an_mp4_without_an_h264_track_fails(tmp_path: Path) -> None:
    """An MPEG-4 Part 2 video in a well-formed MP4 is not taken for H.264."""
    path = tmp_path / "mpeg4.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=4)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for i in range(4):
            pixels = np.full((32, 32, 3), i * 40, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    assert "no H.264" in (oracles.mp4_problem(path) or "")


def test_body_hash_is_canonical_json() -> None:
    """Key order and whitespace do not change a body's hash; values do."""
    assert oracles.body_sha256({"b": 1, "a": "é"}) == oracles.body_sha256({"a": "é", "b": 1})
    assert oracles.body_sha256({"a": 1}) != oracles.body_sha256({"a": 2})
    written_out = '{"a":"é","b":1}'.encode()
    assert oracles.body_sha256({"b": 1, "a": "é"}) == hashlib.sha256(written_out).hexdigest()
