"""Rendered clips by content key: an in-memory LRU, optionally backed by a folder."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path


class RenderCache:
    """Keep recently rendered clips; thread-safe, since renders finish on worker threads."""

    def __init__(self, size: int, folder: Path | None = None) -> None:
        self._size = size
        self._folder = folder
        self._clips: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)

    def get(self, key: str) -> bytes | None:
        """Return the clip filed under `key`, or None."""
        with self._lock:
            clip = self._clips.get(key)
            if clip is not None:
                self._clips.move_to_end(key)
                return clip
        if self._folder is not None:
            path = self._folder / f"{key}.mp4"
            if path.exists():
                clip = path.read_bytes()
                self._remember(key, clip)
                return clip
        return None

    def put(self, key: str, clip: bytes) -> None:
        """File `clip` under `key` (on disk atomically: temp file, then rename)."""
        self._remember(key, clip)
        if self._folder is not None:
            path = self._folder / f"{key}.mp4"
            tmp = path.with_name(f".{key}.{threading.get_ident()}.tmp")
            tmp.write_bytes(clip)
            os.replace(tmp, path)

    def _remember(self, key: str, clip: bytes) -> None:
        if self._size == 0:
            return
        with self._lock:
            self._clips[key] = clip
            self._clips.move_to_end(key)
            while len(self._clips) > self._size:
                self._clips.popitem(last=False)
