"""The engine end to end against the real sandbox (in a thread, over loopback HTTP)."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from runner.manifest import read_state
from runner.probe import probe
from runner.sandbox import RunningSandbox

from .conftest import FakeSpec, FastClock, folder_of, run_on_sandbox


def test_whole_spec_to_verified_mp4s(
    sandbox: RunningSandbox,
    spec_factory: Callable[..., FakeSpec],
    tmp_path: Path,
    fast_clock: FastClock,
) -> None:
    """A spec of six requests ends with six real, probed MP4s, sidecars and a done manifest."""
    spec = spec_factory([1, 2, 3, 4, 5, 6])
    summary = run_on_sandbox(spec, sandbox, tmp_path, fast_clock)
    assert summary.exit_code == 0
    assert summary.count("done") == 6
    folder = folder_of(spec, tmp_path)
    states = read_state(folder)
    for request in spec.requests:
        video = folder / request.output
        facts = probe(video)
        assert (facts.width, facts.height, facts.codec) == (160, 90, "h264")
        sidecar = json.loads(video.with_suffix(".json").read_text())
        assert sidecar["id"] == request.id
        assert sidecar["seed"] == request.seed
        assert sidecar["generation_id"] == states[request.id].generation_id
        assert sidecar["video"]["codec"] == "h264"
        assert sidecar["payload"]["image_url"].startswith("sha256:")
        assert states[request.id].status == "done"
    assert (folder / "index.html").is_file()
    stats = sandbox.stats()
    assert stats["submissions"] == 6
    assert stats["duplicate_submissions"] == 0


def test_second_run_makes_no_api_calls(
    sandbox: RunningSandbox,
    spec_factory: Callable[..., FakeSpec],
    tmp_path: Path,
    fast_clock: FastClock,
) -> None:
    """Running a finished spec again sends no request at all."""
    spec = spec_factory([1, 2])
    assert run_on_sandbox(spec, sandbox, tmp_path, fast_clock).exit_code == 0
    before = sandbox.stats()
    summary = run_on_sandbox(spec, sandbox, tmp_path, fast_clock)
    after = sandbox.stats()
    assert summary.exit_code == 0
    assert summary.count("already_done") == 2
    for counter in ("submissions", "polls", "downloads"):
        assert after[counter] == before[counter]


def test_video_tools_are_loaded_once_while_the_first_generations_are_made(
    sandbox: RunningSandbox,
    spec_factory: Callable[..., FakeSpec],
    tmp_path: Path,
    fast_clock: FastClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """FFmpeg and the poster's encoder are loaded in a worker thread once a run, after a
    generation was submitted and before any video arrived; a warm-up that fails costs
    nothing (the videos are probed and postered as ever)."""
    spec = spec_factory([1, 2, 3])
    folder = folder_of(spec, tmp_path)
    seen: list[tuple[str, int, int]] = []

    def warm_up() -> None:
        submitted = sum(1 for s in read_state(folder).values() if s.generation_id)
        seen.append((threading.current_thread().name, submitted, len(list(folder.rglob("*.mp4")))))
        raise RuntimeError("no FFmpeg here")

    monkeypatch.setattr("runner.lifecycle.warm_up", warm_up)
    summary = run_on_sandbox(spec, sandbox, tmp_path, fast_clock)
    assert summary.exit_code == 0 and summary.count("done") == 3
    assert len(seen) == 1
    thread, submitted, videos = seen[0]
    assert thread != threading.main_thread().name and submitted >= 1 and videos == 0
    assert all((folder / ".posters" / f"{r.id}.jpg").is_file() for r in spec.requests)


def test_warm_up_makes_a_poster_of_a_blank_frame() -> None:
    """What the warm-up runs is the poster path itself, so it loads what a video needs."""
    from runner.poster import warm_up

    warm_up()
    assert {"av", "numpy"} <= set(sys.modules)
