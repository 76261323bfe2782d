"""A run's records are durable in the order money needs, though written off the event loop.

The engine writes the manifest in a worker thread while its workers run
(`Manifest.off_loop`). These runs check, with a reader of their own, what the file holds
at the moment each call reaches the API: the intent before its POST, the generation id
before its first poll.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from runner.clock import VirtualClock
from runner.errors import AuthError

from .conftest import FakeSpec, folder_of
from .test_engine_mocked import ScriptedApi, _error, _run


def _on_disk(path: Path) -> list[dict[str, Any]]:
    """The manifest's complete lines, read without runner.manifest."""
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.endswith("}")]


def test_every_post_finds_its_intent_and_every_poll_its_id_already_on_disk(
    spec_factory: Callable[..., FakeSpec], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """12 requests at concurrency 6: at each POST the file already holds that request's
    `submitting` line with the same client request id; at each poll, its `submitted`
    line; and no fsync of the run happened on the event loop's thread."""
    spec = spec_factory(list(range(1, 13)), provider="aimlapi")
    manifest = folder_of(spec, tmp_path) / "manifest.jsonl"
    scripted = ScriptedApi()
    problems: list[str] = []
    fsyncs_on_loop: list[int] = []
    real_fsync = os.fsync
    loop_thread = threading.get_ident()

    def fsync(fd: int) -> None:
        if threading.get_ident() == loop_thread:
            fsyncs_on_loop.append(fd)
        real_fsync(fd)

    def api(request: httpx.Request) -> httpx.Response:
        lines = _on_disk(manifest)
        if request.method == "POST":
            client_id = request.headers["X-Client-Request-Id"]
            intents = [x for x in lines if x["event"] == "submitting"
                       and x.get("client_request_id") == client_id]
            if len(intents) != 1:
                problems.append(f"POST {client_id}: {len(intents)} intents on disk")
        else:
            gid = request.url.params["generation_id"]
            if not any(x["event"] == "submitted" and x.get("generation_id") == gid
                       for x in lines):
                problems.append(f"poll of {gid} before its id was on disk")
        return scripted.api(request)

    def run() -> Any:
        monkeypatch.setattr(os, "fsync", fsync)
        try:
            return _run(scripted, spec, tmp_path, api=api, concurrency=6)
        finally:
            monkeypatch.setattr(os, "fsync", real_fsync)

    summary = run()
    assert problems == []
    assert [r.outcome for r in summary.reports] == ["done"] * 12
    assert scripted.created == 12
    # Opening the folder (before the workers) fsyncs in line; the workers' writes do not.
    workers_fsyncs = [fd for fd in fsyncs_on_loop if fd > 2]
    assert len(workers_fsyncs) <= 3, f"{len(workers_fsyncs)} fsyncs on the event loop"


def test_a_request_that_heard_back_is_stopped_by_a_later_abort(
    spec_factory: Callable[..., FakeSpec], tmp_path: Path
) -> None:
    """The abort's shelter ends with the POST's answer: a request already polling when
    another request's POST is refused (401) stops at once, and the run ends, rather than
    polling on until its video is done."""
    clock = VirtualClock()
    scripted = ScriptedApi(statuses=["queued"] * 30 + ["completed"])
    aborted_at: list[float] = []
    polls_after: list[str] = []

    async def api(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and scripted.created >= 1:  # the second request's
            await clock.sleep(12)
            aborted_at.append(clock.monotonic())
            return _error(401, "invalid key")
        if request.method == "GET" and aborted_at:
            polls_after.append(request.url.params["generation_id"])
        return scripted.api(request)

    spec = spec_factory([1, 2], provider="aimlapi")
    with pytest.raises(AuthError):
        # MockTransport awaits an async handler: the second POST is answered 12 s later.
        _run(scripted, spec, tmp_path, clock, api=api, concurrency=2)  # type: ignore[arg-type]
    assert scripted.created == 1 and len(aborted_at) == 1
    assert scripted.polls["gen-1"] >= 1  # it was polling when the abort came
    assert polls_after == []
