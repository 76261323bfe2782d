"""Where verified videos are kept (the interface; the implementations arrive with the store)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from runner.errors import RunnerError


class StoreError(RunnerError):
    """Raised when the store cannot give or take a video."""


class Store(Protocol):
    """A content-addressed home for verified videos and their sidecars."""

    url: str

    def inventory(self) -> frozenset[str]: ...
    def has(self, sha256: str) -> bool: ...
    def put(self, video: Path, sha256: str, sidecar: bytes) -> bool: ...
    def get(self, sha256: str, dest: Path) -> int: ...
    def get_sidecar(self, sha256: str) -> bytes | None: ...


def open_store(url: str, *, environ: object = None) -> Store:
    """Open the store at `url` (placeholder until the implementations land)."""
    from runner.errors import UsageError

    msg = f"no store implementation for {url!r} yet"
    raise UsageError(msg)
