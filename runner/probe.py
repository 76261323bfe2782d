"""Probe a downloaded file with PyAV: is it a video, and what are its facts?

A download that succeeded at the HTTP level may still be an error page, a truncated
container or audio only. `probe` opens the container, takes its first video stream and
decodes one frame, so a file that is not a playable video raises `NotAVideo` (a failed
request, never a finished one).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import av

from runner.errors import RunnerError


class NotAVideo(RunnerError):
    """Raised when a file is not a decodable video."""


@dataclass(frozen=True, slots=True)
class VideoFacts:
    """What the manifest and sidecar record about a video."""

    duration: float  # seconds
    width: int
    height: int
    codec: str  # FFmpeg's codec name, e.g. "h264"

    def to_dict(self) -> dict[str, Any]:
        """Return the facts as JSON-ready data."""
        return asdict(self)


def probe(path: Path) -> VideoFacts:
    """Return the facts of the video at `path`, or raise `NotAVideo`."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                msg = f"{path} holds no video stream"
                raise NotAVideo(msg)
            stream = container.streams.video[0]
            first = next(container.decode(stream), None)
            if first is None:
                msg = f"{path} has a video stream without a decodable frame"
                raise NotAVideo(msg)
            duration = _duration(container, stream)
            return VideoFacts(
                duration=round(duration, 3),
                width=int(stream.codec_context.width),
                height=int(stream.codec_context.height),
                codec=str(stream.codec_context.name),
            )
    except av.FFmpegError as exc:
        msg = f"{path} is not a video FFmpeg can read ({exc.strerror or type(exc).__name__})"
        raise NotAVideo(msg) from exc


def _duration(container: Any, stream: Any) -> float:
    """Return the stream's duration in seconds, falling back to the container's."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return float(container.duration) / av.time_base
    return 0.0
