"""A storage error in one request must not cut off another request's POST in flight.

When a video cannot be written (here: its folder is blocked by a file), the run stops —
but a POST already on the wire is let to hear back, so its generation id is recorded
(pending: polled next run) instead of becoming `unknown` (paid, id lost), exactly as a
401/403 stop does. Real sandbox server; the transport only delays one POST and one
generation's polls.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from runner.engine import RunOptions, Transports, execute
from runner.errors import StorageError
from runner.polling import PollSettings
from runner.progress import SilentReporter
from runner.sandbox import SandboxConfig, start_in_thread
from runner.spec import load_specs
from tests import oracles
from tests.faults.harness import TEST_KEY, draw_image


class Staged(httpx.AsyncBaseTransport):
    """Pass everything to the real server, but hold seed 2's POST for `post_delay` s and
    every poll of seed 3's generation for `poll_delay` s (so each is mid-call on cue), and
    call `on_first_post` once seed 1 is accepted (to break the disk under the run)."""

    def __init__(
        self, post_delay: float, poll_delay: float, on_first_post: Callable[[], object]
    ) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._post_delay = post_delay
        self._poll_delay = poll_delay
        self._held: set[str] = set()
        self._on_first_post = on_first_post

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            seed = json.loads(request.content).get("seed")
            if seed == 2:
                await asyncio.sleep(self._post_delay)
            response = await self._inner.handle_async_request(request)
            if seed == 1:
                self._on_first_post()
            if seed != 3:
                return response
            body = await response.aread()
            self._held.add(json.loads(body)["id"])
            return httpx.Response(response.status_code, headers=response.headers, content=body)
        if request.url.params.get("generation_id") in self._held:
            await asyncio.sleep(self._poll_delay)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def test_storage_error_lets_a_post_in_flight_hear_back(tmp_path: Path) -> None:
    """Seed 1's video cannot be written while seed 2's POST is out and seed 3 is being
    polled: the run stops with the storage error (not a cancellation traceback), seed 2
    ends pending with its generation id, not unknown, and seed 3 stays pending."""
    draw_image(tmp_path / "images" / "frame.png")
    spec = tmp_path / "blocked.yaml"
    spec.write_text(
        "version: 1\nname: blocked\nprovider: aimlapi\nmodel: runway/gen4_turbo\n"
        "matrix:\n  seed: [1, 2, 3]\n"
        "params:\n  image_url: images/frame.png\n  prompt: a blocked folder\n"
        '  ratio: "16:9"\n  duration: 5\n'
        "output: \"{{ 'a' if seed == 1 else 'b' }}/seed-{{ seed }}.mp4\"\n",
        encoding="utf-8",
    )
    folder = tmp_path / "outputs" / "blocked"
    (loaded,) = load_specs([spec])

    def block() -> None:  # after the run's own checks, as a full or broken disk would be
        (folder / "a").write_text("a file where seed 1's folder should be\n")

    with start_in_thread(SandboxConfig(latency=0.05, jitter=0.0, fps=4)) as sandbox:
        options = RunOptions(
            output_dir=tmp_path / "outputs", base_url=sandbox.base_url, concurrency=3,
            poll=PollSettings(floor=0.02, ceiling=0.05), seed=0,
        )
        with pytest.raises(StorageError, match="cannot write"):
            asyncio.run(execute(
                [(loaded, list(loaded.requests))], options, reporter=SilentReporter(),
                environ={"AIMLAPI_API_KEY": TEST_KEY},
                transports=Transports(api=Staged(post_delay=1.0, poll_delay=5.0,
                                                 on_first_post=block)),
            ))
        stats = sandbox.stats()

    by_seed = {entry.seed: entry for entry in oracles.read_manifest(folder).values()}
    assert stats["submissions"] == 3
    assert by_seed[2].status == "pending", by_seed[2]
    assert by_seed[2].generation_id is not None
    assert by_seed[3].status == "pending" and by_seed[3].generation_id is not None
