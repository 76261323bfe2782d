"""Generations, their schedule on the server's slots, and (optionally) their persistence.

A generation's status is never stored: it follows from its start and end times on the
event loop's clock, so 1,000 generations in flight cost no timers and no tasks. Slots
are a heap of the times each becomes free; a new generation takes the earliest one,
which is exactly first-come-first-served over `concurrency` servers.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from runner.sandbox.render import RenderJob


class Phase(Enum):
    """Where a generation stands on the clock (before its clip is known to be rendered)."""

    QUEUED = "queued"  # waiting for a server slot
    GENERATING = "generating"  # holding a slot
    DONE = "done"  # its time is up: completed, or error when it was doomed to fail


@dataclass(frozen=True, slots=True)
class Generation:
    """One accepted generation."""

    id: str
    body_sha256: str  # canonical body, for duplicate counting
    job: RenderJob
    render_key: str  # job.key(), computed once
    submitted_at: float  # event-loop clock
    starts_at: float
    ends_at: float
    failure: str | None  # set when the failed_generation fault doomed it
    placeholder: bool  # rendered from a generated frame (https image, offline)
    client_request_id: str | None = None  # a valid X-Client-Request-Id sent with the POST
    usd: float = 0.0  # what it is billed if it succeeds (runner.sandbox.pricing)

    def phase(self, now: float) -> Phase:
        """Return the phase at loop time `now`."""
        if now < self.starts_at:
            return Phase.QUEUED
        return Phase.GENERATING if now < self.ends_at else Phase.DONE


class Scheduler:
    """Assign generations to `concurrency` slots, first come first served."""

    def __init__(self, concurrency: int, seed: int, now: float) -> None:
        self._free_at = [now] * concurrency
        self._rng = random.Random(f"{seed}:latency")

    def resize(self, concurrency: int, now: float) -> None:
        """Change the number of slots; generations already scheduled keep their times."""
        busy = sorted(self._free_at, reverse=True)[:concurrency]
        self._free_at = busy + [now] * (concurrency - len(busy))
        heapq.heapify(self._free_at)

    def reseed(self, seed: int) -> None:
        """Restart the latency stream from `seed`."""
        self._rng = random.Random(f"{seed}:latency")

    def occupy(self, ends_at: list[float], now: float) -> None:
        """Mark slots busy until the given times (generations restored from disk)."""
        for end in sorted(ends_at)[-len(self._free_at) :]:
            heapq.heapreplace(self._free_at, max(end, now))

    def schedule(self, now: float, latency: float, jitter: float) -> tuple[float, float]:
        """Return (start, end) for a generation submitted at `now`."""
        run = max(0.0, latency + self._rng.uniform(-jitter, jitter))
        start = max(now, self._free_at[0])
        heapq.heapreplace(self._free_at, start + run)
        return start, start + run


class StateStore:
    """Append-only record of generations in a folder, so a restarted server knows them.

    `generations.jsonl` holds one line per generation (images by hash), `images/` the
    distinct image bytes, `signing.key` the URL-signing key. Times are written as epoch
    seconds and converted back to the new process's loop clock when loaded.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        (folder / "images").mkdir(parents=True, exist_ok=True)
        self._log = folder / "generations.jsonl"

    def signing_key(self) -> bytes:
        """Return the folder's signing key, creating it on first use (owner-only)."""
        path = self.folder / "signing.key"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(os.urandom(32))
        return path.read_bytes()

    def append(self, gen: Generation, wall_offset: float) -> None:
        """Record one generation before the client hears of it."""
        for data in (gen.job.image, gen.job.last_image):
            if data is not None:
                self._save_image(data)
        job = gen.job
        record = {
            "id": gen.id,
            "body_sha256": gen.body_sha256,
            "submitted_at": gen.submitted_at + wall_offset,
            "starts_at": gen.starts_at + wall_offset,
            "ends_at": gen.ends_at + wall_offset,
            "failure": gen.failure,
            "placeholder": gen.placeholder,
            "client_request_id": gen.client_request_id,
            "usd": gen.usd,
            "job": {
                "model": job.model, "width": job.width, "height": job.height,
                "fps": job.fps, "duration": job.duration, "seed": job.seed,
                "prompt": job.prompt, "image_sha256": job.image_sha256,
                "image": _sha(job.image) if job.image is not None else None,
                "last_image": _sha(job.last_image) if job.last_image else None,
                "mode": job.mode,
            },
        }
        with self._log.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, separators=(",", ":")) + "\n")

    def load(self, wall_offset: float) -> Iterator[Generation]:
        """Yield the recorded generations with times on the current loop clock."""
        if not self._log.exists():
            return
        with self._log.open(encoding="utf-8") as fh:
            for line in fh:
                if not line.endswith("\n"):
                    break  # a line cut short by a kill: its client never got an answer
                yield self._generation(json.loads(line), wall_offset)

    def _generation(self, record: dict[str, Any], wall_offset: float) -> Generation:
        job = dict(record["job"])
        job["image"] = self._load_image(job["image"]) if job["image"] else None
        job["last_image"] = self._load_image(job["last_image"]) if job["last_image"] else None
        render_job = RenderJob(**job)
        return Generation(
            id=record["id"],
            body_sha256=record["body_sha256"],
            job=render_job,
            render_key=render_job.key(),
            submitted_at=record["submitted_at"] - wall_offset,
            starts_at=record["starts_at"] - wall_offset,
            ends_at=record["ends_at"] - wall_offset,
            failure=record["failure"],
            placeholder=record["placeholder"],
            client_request_id=record.get("client_request_id"),  # absent in older folders
            usd=record.get("usd", 0.0),
        )

    def _save_image(self, data: bytes) -> None:
        path = self.folder / "images" / _sha(data)
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)

    def _load_image(self, sha256: str) -> bytes:
        return (self.folder / "images" / sha256).read_bytes()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
