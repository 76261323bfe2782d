"""A storage error in one request must not cut off another request's POST in flight.

When a video cannot be written (here: its folder is blocked by a file), the run stops —
but a POST already on the wire is let to hear back, so its generation id is recorded
(pending: polled next run) instead of becoming `unknown` (paid, id lost), exactly as a
401/403 stop does. Real sandbox server; the transport only delays one POST on its way.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from runner.engine import RunOptions, Transports, execute
from runner.errors import StorageError
from runner.manifest import read_state
from runner.polling import PollSettings
from runner.progress import SilentReporter
from runner.sandbox import SandboxConfig, start_in_thread
from runner.spec import load_specs
from tests.faults.harness import TEST_KEY, draw_image


class SlowPost(httpx.AsyncBaseTransport):
    """Pass everything through, but hold the POST whose body has seed 2 for `delay` s."""

    def __init__(self, delay: float) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._delay = delay

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and json.loads(request.content).get("seed") == 2:
            await asyncio.sleep(self._delay)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def test_storage_error_lets_a_post_in_flight_hear_back(tmp_path: Path) -> None:
    """Seed 1's video cannot be written while seed 2's POST is out: the run stops with
    the storage error, and seed 2 ends pending with its generation id, not unknown."""
    draw_image(tmp_path / "images" / "frame.png")
    spec = tmp_path / "blocked.yaml"
    spec.write_text(
        "version: 1\nname: blocked\nprovider: aimlapi\nmodel: runway/gen4_turbo\n"
        "matrix:\n  seed: [1, 2]\n"
        "params:\n  image_url: images/frame.png\n  prompt: a blocked folder\n"
        '  ratio: "16:9"\n  duration: 5\n'
        "output: \"{{ 'a' if seed == 1 else 'b' }}/seed-{{ seed }}.mp4\"\n",
        encoding="utf-8",
    )
    folder = tmp_path / "outputs" / "blocked"
    folder.mkdir(parents=True)
    (folder / "a").write_text("a file where seed 1's folder should be\n")
    (loaded,) = load_specs([spec])

    with start_in_thread(SandboxConfig(latency=0.05, jitter=0.0, fps=4)) as sandbox:
        options = RunOptions(
            output_dir=tmp_path / "outputs", base_url=sandbox.base_url, concurrency=2,
            poll=PollSettings(floor=0.02, ceiling=0.05), seed=0,
        )
        with pytest.raises(StorageError, match="cannot write"):
            asyncio.run(execute(
                [(loaded, list(loaded.requests))], options, reporter=SilentReporter(),
                environ={"AIMLAPI_API_KEY": TEST_KEY},
                transports=Transports(api=SlowPost(1.0)),
            ))
        stats = sandbox.stats()

    by_seed = {state.seed: state for state in read_state(folder).values()}
    assert stats["submissions"] == 2
    assert by_seed[2].status == "pending", by_seed[2]
    assert by_seed[2].generation_id is not None
