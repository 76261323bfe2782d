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

from .conftest import FakeSpec, folder_of
from .test_engine_mocked import ScriptedApi, _run


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
