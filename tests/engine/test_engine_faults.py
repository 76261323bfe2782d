"""Fault tests: the engine against a sandbox injecting the API's documented failures."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from runner.errors import StorageError
from runner.manifest import Manifest, read_state
from runner.polling import PollSettings
from runner.probe import probe
from runner.retry import RetryPolicy
from runner.sandbox import FaultSpec, RunningSandbox

from .conftest import FakeSpec, FastClock, folder_of, run_on_sandbox


def _faults(sandbox: RunningSandbox, **faults: FaultSpec | dict[str, Any]) -> None:
    specs = {k: v.to_mapping() if isinstance(v, FaultSpec) else v for k, v in faults.items()}
    sandbox.configure(faults=specs)


def _all_videos_verified(spec: FakeSpec, tmp_path: Path) -> None:
    folder = folder_of(spec, tmp_path)
    states = read_state(folder)
    for request in spec.requests:
        assert states[request.id].status == "done"
        assert probe(folder / request.output).codec == "h264"


def test_429_storm_honours_retry_after_and_never_duplicates(
    sandbox: RunningSandbox, spec_factory: Callable[..., FakeSpec], tmp_path: Path
) -> None:
    """Eight 429s with Retry-After: 2 are waited out; every video arrives, none twice."""
    sandbox.configure(retry_after=2)
    _faults(sandbox, rate_limit=FaultSpec(first=8))
    spec = spec_factory([1, 2, 3, 4])
    clock = FastClock(50.0)
    retry = RetryPolicy(base=0.5, max_attempts=10)
    summary = run_on_sandbox(spec, sandbox, tmp_path, clock, retry=retry)
    assert summary.exit_code == 0
    _all_videos_verified(spec, tmp_path)
    stats = sandbox.stats()
    assert stats["rejected"]["429"] == 8
    assert stats["submissions"] == 4
    assert stats["duplicate_submissions"] == 0
    assert any(2.0 <= s <= 2.5 for s in clock.slept)  # the server's wait, honoured


def test_503_and_poll_5xx_are_retried(
    sandbox: RunningSandbox, spec_factory: Callable[..., FakeSpec], tmp_path: Path
) -> None:
    """503 on submit and 500/502/504 on polls are retried until every video arrives."""
    _faults(sandbox, unavailable=FaultSpec(first=3), poll_error=FaultSpec(rate=0.4))
    spec = spec_factory([1, 2, 3])
    summary = run_on_sandbox(spec, sandbox, tmp_path)
    assert summary.exit_code == 0
    _all_videos_verified(spec, tmp_path)
    stats = sandbox.stats()
    assert stats["faults_injected"]["unavailable"] == 3
    assert stats["faults_injected"]["poll_error"] >= 1
    assert stats["duplicate_submissions"] == 0


def test_dropped_connection_after_accept_is_found_in_the_usage_logs(
    sandbox: RunningSandbox, spec_factory: Callable[..., FakeSpec], tmp_path: Path
) -> None:
    """A POST accepted then dropped is found by its client request id and collected."""
    _faults(sandbox, drop_after_accept=FaultSpec(first=1))
    spec = spec_factory([1, 2, 3])
    summary = run_on_sandbox(spec, sandbox, tmp_path, concurrency=1)
    assert summary.exit_code == 0 and summary.count("done") == 3
    assert summary.submissions == 2  # the dropped one was found, not paid for by this run
    stats = sandbox.stats()
    assert stats["submissions"] == 3 and stats["duplicate_submissions"] == 0
    assert stats["log_queries"] >= 1
    (settled,) = [
        r for r in read_state(folder_of(spec, tmp_path)).values() if r.client_request_id
        and r.status == "done" and r.attempts == 1 and r.generation_id
        and r.submitted_at and _evidence(folder_of(spec, tmp_path), r.id)
    ]
    _all_videos_verified(spec, tmp_path)


def _evidence(folder: Path, rid: str) -> bool:
    """Whether the manifest records that `rid`'s generation id came from the usage logs."""
    import json

    lines = (folder / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    return any(
        (r := json.loads(line))["id"] == rid and r.get("evidence", {}).get("source")
        == "usage logs" for line in lines
    )


def test_dropped_connection_without_usage_logs_stays_unknown(
    sandbox: RunningSandbox, spec_factory: Callable[..., FakeSpec], tmp_path: Path
) -> None:
    """Without usage logs an accepted-then-dropped POST stays unknown and is not resent;
    only the user's explicit choice resubmits it (and pays again)."""
    sandbox.configure(logs=False)
    _faults(sandbox, drop_after_accept=FaultSpec(first=1))
    spec = spec_factory([1, 2, 3])
    summary = run_on_sandbox(spec, sandbox, tmp_path, concurrency=1)
    assert summary.exit_code == 1
    assert summary.count("unknown") == 1 and summary.count("done") == 2
    unknown = next(r for r in summary.reports if r.outcome == "unknown")
    assert "may have started" in (unknown.reason or "")
    assert "usage logs cannot be read" in (unknown.reason or "")
    assert sandbox.stats()["submissions"] == 3  # the server did accept it
    again = run_on_sandbox(spec, sandbox, tmp_path)
    assert again.exit_code == 1 and again.count("unknown") == 1
    assert sandbox.stats()["submissions"] == 3
    assert sandbox.stats()["duplicate_submissions"] == 0
    chosen = run_on_sandbox(spec, sandbox, tmp_path, resubmit_unknown=True)
    assert chosen.exit_code == 0
    assert sandbox.stats()["duplicate_submissions"] == 1
    _all_videos_verified(spec, tmp_path)


def test_truncated_downloads_are_retried(
    sandbox: RunningSandbox, spec_factory: Callable[..., FakeSpec], tmp_path: Path
) -> None:
    """Downloads cut short are never taken for videos; retrying fetches whole files."""
    _faults(sandbox, truncated_download=FaultSpec(first=2))
    spec = spec_factory([1, 2])
    summary = run_on_sandbox(spec, sandbox, tmp_path, concurrency=1)
    assert summary.exit_code == 0
    _all_videos_verified(spec, tmp_path)
    stats = sandbox.stats()
    assert stats["faults_injected"]["truncated_download"] == 2
    assert stats["duplicate_submissions"] == 0
    assert not list((tmp_path / "outputs").rglob("*.part"))


def test_expired_urls_are_refreshed_by_polling(
    sandbox: RunningSandbox, spec_factory: Callable[..., FakeSpec], tmp_path: Path
) -> None:
    """A refused (expired) download URL triggers a fresh poll and a new URL."""
    sandbox.configure(short_url_ttl=0.0)
    _faults(sandbox, short_url=FaultSpec(first=2))
    spec = spec_factory([1, 2])
    summary = run_on_sandbox(spec, sandbox, tmp_path, concurrency=1)
    assert summary.exit_code == 0
    _all_videos_verified(spec, tmp_path)
    stats = sandbox.stats()
    assert stats["rejected"]["403"] == 2
    assert stats["submissions"] == 2


def test_failed_generation_fails_only_itself(
    sandbox: RunningSandbox, spec_factory: Callable[..., FakeSpec], tmp_path: Path
) -> None:
    """A failed generation is recorded with its message; the others finish; exit 1."""
    _faults(sandbox, failed_generation=FaultSpec(first=1))
    spec = spec_factory([1, 2, 3])
    summary = run_on_sandbox(spec, sandbox, tmp_path, concurrency=1)
    assert summary.exit_code == 1
    assert summary.count("failed") == 1
    assert summary.count("done") == 2
    failed = next(r for r in summary.reports if r.outcome == "failed")
    assert "generation error" in (failed.reason or "")
    # Not retried unless asked; --retry-failed submits it again.
    assert run_on_sandbox(spec, sandbox, tmp_path).count("failed") == 1
    assert sandbox.stats()["submissions"] == 3
    retried = run_on_sandbox(spec, sandbox, tmp_path, retry_failed=True)
    assert retried.exit_code == 0
    _all_videos_verified(spec, tmp_path)


def test_validation_error_fails_that_request_with_server_message(
    sandbox: RunningSandbox, spec_factory: Callable[..., FakeSpec], tmp_path: Path
) -> None:
    """A 400 fails one request with the server's message; the others are unaffected."""
    good = spec_factory([1, 2])
    bad = spec_factory([3], ratio="7:3")
    spec = FakeSpec(good.name, good.display, good.requests + bad.requests, good.images)
    summary = run_on_sandbox(spec, sandbox, tmp_path)
    assert summary.count("done") == 2
    failed = next(r for r in summary.reports if r.outcome == "failed")
    assert "HTTP 400" in (failed.reason or "")
    assert "ratio" in (failed.reason or "")
    assert sandbox.stats()["rejected"]["400"] == 1  # sent once, not retried


def test_quota_stops_the_provider_instead_of_sleeping(
    sandbox: RunningSandbox, spec_factory: Callable[..., FakeSpec], tmp_path: Path
) -> None:
    """A Retry-After beyond the cap (a daily quota) stops submissions; nothing waits it out."""
    sandbox.configure(retry_after=86_400)
    _faults(sandbox, rate_limit=FaultSpec(rate=1.0))
    spec = spec_factory([1, 2, 3])
    clock = FastClock(50.0)
    summary = run_on_sandbox(spec, sandbox, tmp_path, clock, concurrency=1)
    assert summary.exit_code == 1
    assert summary.count("not_run") == 3
    assert sandbox.stats()["rejected"]["429"] == 1  # one refusal, then no more calls
    assert any("quota" in note for note in summary.notes)
    assert max(clock.slept, default=0.0) < 60.0
    # Nothing was recorded as failed: the next run simply tries again.
    assert read_state(folder_of(spec, tmp_path)) == {}


def test_deadline_leaves_request_pending_and_next_run_polls_it(
    sandbox: RunningSandbox, spec_factory: Callable[..., FakeSpec], tmp_path: Path
) -> None:
    """A generation past --timeout stays pending; the next run polls it, never resubmits."""
    sandbox.configure(latency=0.6, jitter=0.0)
    spec = spec_factory([1])
    short = PollSettings(floor=0.5, ceiling=1.0, timeout=2.0)  # 2 s at 50x: 40 ms real
    summary = run_on_sandbox(spec, sandbox, tmp_path, poll=short)
    assert summary.count("timed_out") == 1
    assert summary.exit_code == 1
    (state,) = read_state(folder_of(spec, tmp_path)).values()
    assert state.status == "pending"
    poll = PollSettings(0.1, 0.5, 60)
    later = run_on_sandbox(spec, sandbox, tmp_path, clock=FastClock(1.0), poll=poll)
    assert later.exit_code == 0
    assert sandbox.stats()["submissions"] == 1
    _all_videos_verified(spec, tmp_path)


def test_missing_or_changed_video_is_fetched_again_without_resubmitting(
    sandbox: RunningSandbox, spec_factory: Callable[..., FakeSpec], tmp_path: Path
) -> None:
    """A deleted or edited video is re-downloaded from its generation; nothing is resubmitted."""
    spec = spec_factory([1, 2])
    assert run_on_sandbox(spec, sandbox, tmp_path).exit_code == 0
    folder = folder_of(spec, tmp_path)
    first, second = (folder / r.output for r in spec.requests)
    original = second.read_bytes()
    first.unlink()
    second.write_bytes(b"not the video any more")
    summary = run_on_sandbox(spec, sandbox, tmp_path)
    assert summary.exit_code == 0
    assert summary.count("done") == 2
    assert second.read_bytes() == original
    assert sandbox.stats()["submissions"] == 2
    _all_videos_verified(spec, tmp_path)


def test_force_regenerates_the_selection(
    sandbox: RunningSandbox, spec_factory: Callable[..., FakeSpec], tmp_path: Path
) -> None:
    """--force submits finished requests again, on purpose."""
    spec = spec_factory([1, 2])
    assert run_on_sandbox(spec, sandbox, tmp_path).exit_code == 0
    summary = run_on_sandbox(spec, sandbox, tmp_path, force=True)
    assert summary.count("done") == 2
    assert sandbox.stats()["submissions"] == 4


def test_unrecordable_generation_id_is_named_in_the_error(
    spec_factory: Callable[[list[int]], FakeSpec],
    sandbox: RunningSandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A full disk at the moment the id is recorded stops the run and names the id."""

    def disk_full(self: Manifest, rid: str, generation_id: str, **_: object) -> None:
        raise StorageError("cannot write the manifest: No space left on device")

    monkeypatch.setattr(Manifest, "record_submitted", disk_full)
    spec = spec_factory([1])
    with pytest.raises(StorageError) as raised:
        run_on_sandbox(spec, sandbox, tmp_path)
    assert sandbox.stats()["submissions"] == 1
    (state,) = read_state(folder_of(spec, tmp_path)).values()
    assert state.status == "unknown"
    message = str(raised.value)
    assert "No space left on device" in message
    generation_id = message.split("accepted as generation '")[1].split("'")[0]
    assert sandbox_knows(sandbox, generation_id)


def sandbox_knows(sandbox: RunningSandbox, generation_id: str) -> bool:
    """Tell whether the sandbox answers a poll for `generation_id`."""
    response = httpx.get(
        f"{sandbox.base_url}/v2/generate/video/runway/generation",
        params={"generation_id": generation_id},
        headers={"Authorization": "Bearer k"},
    )
    return response.status_code == 200
