"""Probing real videos, writing sidecars, and verifying finished files against the manifest."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from runner.errors import StorageError
from runner.manifest import Manifest, RequestState, read_state, sha256_file, verify
from runner.probe import NotAVideo, VideoFacts, probe
from runner.sidecar import read_sidecar, sidecar_for, sidecar_path, write_sidecar

from .conftest import make_request, write_video

# ------------------------------------------------------------------------------ probe


def test_probe_reads_duration_size_and_codec_of_a_real_mp4(tmp_path: Path) -> None:
    """PyAV reports the encoded clip's facts: 24 frames at 12 fps is 2 s of 80x48 H.264."""
    path = write_video(tmp_path / "v.mp4", width=80, height=48, frames=24)
    assert probe(path) == VideoFacts(duration=2.0, width=80, height=48, codec="h264")


@pytest.mark.parametrize(
    "content",
    [b"", b"<html>403 Forbidden</html>", b"\x00" * 4096, b'{"message": "expired"}'],
)
def test_probe_rejects_files_that_are_not_videos(tmp_path: Path, content: bytes) -> None:
    """Empty files, error pages and zeros raise NotAVideo naming the file."""
    path = tmp_path / "v.mp4"
    path.write_bytes(content)
    with pytest.raises(NotAVideo, match="v.mp4"):
        probe(path)


def test_probe_rejects_a_truncated_mp4(tmp_path: Path, video_bytes: bytes) -> None:
    """The first half of a real MP4 is not a video."""
    path = tmp_path / "v.mp4"
    path.write_bytes(video_bytes[: len(video_bytes) // 2])
    with pytest.raises(NotAVideo):
        probe(path)


def test_probe_rejects_audio_only_files(tmp_path: Path) -> None:
    """A valid container without a video stream is not a video."""
    import av
    import numpy as np

    path = tmp_path / "a.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=8000)
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 1024), dtype=np.float32), format="fltp", layout="mono"
        )
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with pytest.raises(NotAVideo, match="no video stream"):
        probe(path)


# ---------------------------------------------------------------------------- sidecar


def done_state(tmp_path: Path, video: Path) -> RequestState:
    """Record a finished request for `video` in a manifest under tmp_path; return its state."""
    facts = probe(video)
    st = video.stat()
    with Manifest.open(tmp_path) as m:
        m.record_submitting(
            make_request(1, output="16x9/seed-1.mp4"),
            images={"sha256:" + "ab" * 32: "specs/images/mountain.png"},
        )
        m.record_submitted("req000000000001", "gen-1")
        m.record_completed("req000000000001")
        m.record_downloaded(
            "req000000000001",
            output="16x9/seed-1.mp4",
            size=st.st_size,
            sha256=sha256_file(video),
            mtime_ns=st.st_mtime_ns,
            video=facts.to_dict(),
            download_seconds=0.25,
        )
        return m.state["req000000000001"]


def test_sidecar_holds_the_documented_fields_and_round_trips(
    tmp_path: Path, video_bytes: bytes
) -> None:
    """write_sidecar puts <stem>.json beside the video with the ARCHITECTURE.md fields."""
    video = tmp_path / "16x9" / "seed-1.mp4"
    video.parent.mkdir()
    video.write_bytes(video_bytes)
    state = done_state(tmp_path, video)
    path = write_sidecar(video, sidecar_for(state))
    assert path == tmp_path / "16x9" / "seed-1.json"
    data = read_sidecar(video)
    assert data == json.loads(path.read_text(encoding="utf-8"))
    assert set(data) == {
        "runner_version",
        "id",
        "spec",
        "spec_name",
        "job",
        "provider",
        "model",
        "endpoint",
        "payload",
        "images",
        "seed",
        "seed_derived",
        "matrix",
        "generation_id",
        "output",
        "timings",
        "size",
        "sha256",
        "video",
        "cost",
        "reproduction_of",
    }
    assert data["payload"]["image_url"] == "sha256:" + "ab" * 32
    assert data["images"] == {"sha256:" + "ab" * 32: "specs/images/mountain.png"}
    assert (data["seed"], data["generation_id"], data["output"]) == (1, "gen-1", "16x9/seed-1.mp4")
    assert data["video"] == {"duration": 1.0, "width": 64, "height": 48, "codec": "h264"}
    assert data["sha256"] == sha256_file(video)
    assert data["timings"]["download_seconds"] == 0.25
    assert data["timings"]["generation_seconds"] is not None
    assert "data:" not in path.read_text(encoding="utf-8")
    assert sorted(p.name for p in video.parent.iterdir()) == ["seed-1.json", "seed-1.mp4"]


def test_sidecar_rewrite_replaces_it_whole(tmp_path: Path) -> None:
    """Writing a sidecar again replaces the old one atomically, leaving no temp file."""
    video = tmp_path / "v.mp4"
    write_sidecar(video, {"a": "x" * 10_000})
    write_sidecar(video, {"b": 1})
    assert read_sidecar(video) == {"b": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["v.json"]


def test_missing_or_broken_sidecar_is_a_clear_error(tmp_path: Path) -> None:
    """Reading an absent or corrupt sidecar names the file and what to do."""
    with pytest.raises(StorageError, match="no sidecar"):
        read_sidecar(tmp_path / "v.mp4")
    (tmp_path / "v.json").write_text("{half")
    with pytest.raises(StorageError, match="delete it and run again"):
        read_sidecar(tmp_path / "v.mp4")


def test_a_video_named_json_is_refused() -> None:
    """A .json video would be overwritten by its own sidecar, so it is refused."""
    with pytest.raises(ValueError, match="collide"):
        sidecar_path(Path("out/x.json"))


# ----------------------------------------------------------------------------- verify


@pytest.fixture
def finished(tmp_path: Path, video_bytes: bytes) -> tuple[Path, Path]:
    """A spec folder with one finished request and its video."""
    video = tmp_path / "16x9" / "seed-1.mp4"
    video.parent.mkdir()
    video.write_bytes(video_bytes)
    done_state(tmp_path, video)
    return tmp_path, video


def test_untouched_file_is_ok_without_being_read(
    finished: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fast path trusts size + mtime_ns and does not hash the file."""
    folder, _ = finished
    import runner.manifest as manifest_mod

    def no_hashing(path: Path, chunk: int = 0) -> str:
        raise AssertionError("fast path must not hash")

    monkeypatch.setattr(manifest_mod, "sha256_file", no_hashing)
    result = verify(read_state(folder), folder)
    assert (result.ok, result.refetch) == (("req000000000001",), ())


def test_missing_file_is_fetched_again(finished: tuple[Path, Path]) -> None:
    """A deleted video is reported missing and listed for refetching."""
    folder, video = finished
    video.unlink()
    result = verify(read_state(folder), folder)
    assert result.missing == ("req000000000001",)
    assert result.refetch == ("req000000000001",)


def test_file_of_another_size_is_changed(finished: tuple[Path, Path]) -> None:
    """A file whose size differs from the record is changed."""
    folder, video = finished
    with video.open("ab") as fh:
        fh.write(b"x")
    assert verify(read_state(folder), folder).changed == ("req000000000001",)


def test_same_size_edit_with_new_mtime_is_detected_by_hashing(
    finished: tuple[Path, Path],
) -> None:
    """A same-size edit that moves the mtime is rehashed and found changed."""
    folder, video = finished
    data = bytearray(video.read_bytes())
    data[-1] ^= 0xFF
    st = video.stat()
    video.write_bytes(bytes(data))
    os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert verify(read_state(folder), folder).changed == ("req000000000001",)


def test_touched_but_identical_file_is_ok_and_reported_for_recording(
    finished: tuple[Path, Path],
) -> None:
    """A checkout that only moves the mtime is ok; recording it restores the fast path."""
    folder, video = finished
    st = video.stat()
    os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    result = verify(read_state(folder), folder)
    assert result.ok == ("req000000000001",)
    assert dict(result.touched) == {"req000000000001": st.st_mtime_ns + 5_000_000_000}
    with Manifest.open(folder) as m:
        for rid, mtime_ns in result.touched.items():
            m.record_verified(rid, mtime_ns)
    again = verify(read_state(folder), folder)
    assert (again.ok, dict(again.touched)) == (("req000000000001",), {})


def test_full_mode_catches_an_edit_that_kept_size_and_mtime(finished: tuple[Path, Path]) -> None:
    """The documented blind spot of the fast path is closed by full=True."""
    folder, video = finished
    st = video.stat()
    data = bytearray(video.read_bytes())
    data[100] ^= 0xFF
    video.write_bytes(bytes(data))
    os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert verify(read_state(folder), folder).ok == ("req000000000001",)  # fast: fooled
    assert verify(read_state(folder), folder, full=True).changed == ("req000000000001",)


def test_only_done_requests_are_verified(tmp_path: Path) -> None:
    """Pending, failed and unknown requests are not checked for files."""
    with Manifest.open(tmp_path) as m:
        m.record_submitting(make_request(1))
        m.record_submitting(make_request(2))
        m.record_submitted("req000000000002", "g")
    result = verify(read_state(tmp_path), tmp_path)
    assert (result.ok, result.missing, result.changed) == ((), (), ())
