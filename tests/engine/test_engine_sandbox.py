"""The engine end to end against the real sandbox (in a thread, over loopback HTTP)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

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
