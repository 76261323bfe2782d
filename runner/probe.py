"""Probe a downloaded file with PyAV: is it a video, and what are its facts?

A download that succeeded at the HTTP level may still be an error page, a truncated
container or audio only. `probe` opens the container, takes its first video stream and
decodes one frame, so a file that is not a playable video raises `NotAVideo` (a failed
request, never a finished one).

`probe_frame` does the same and goes on decoding to a given second, so the poster comes
from the same opening of the file (opening and probing a container costs more CPU than
decoding a clip's first second). Decoding is single-threaded: FFmpeg's default starts
and stops a thread per core on every opening, which doubles the CPU of reading one
frame, and a run already decodes several files at once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.errors import RunnerError

if TYPE_CHECKING:
    import av


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
    return probe_frame(path, 0.0)[0]


def probe_frame(path: Path, seconds: float) -> tuple[VideoFacts, av.VideoFrame]:
    """Return the facts of the video at `path` and its frame at `seconds` (or its last).

    Raises `NotAVideo` unless the first frame decodes; a decoding error after it ends
    the search at the last good frame (the file is a video, the poster an earlier frame).
    """
    import av  # here, not at the top: FFmpeg's ~0.1 s import waits for the first video

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                msg = f"{path} holds no video stream"
                raise NotAVideo(msg)
            stream = container.streams.video[0]
            stream.thread_type = "NONE"
            frames = container.decode(stream)
            frame = next(frames, None)
            if frame is None:
                msg = f"{path} has a video stream without a decodable frame"
                raise NotAVideo(msg)
            facts = VideoFacts(
                duration=round(_duration(container, stream), 3),
                width=int(stream.codec_context.width),
                height=int(stream.codec_context.height),
                codec=str(stream.codec_context.name),
            )
            base = stream.time_base or Fraction(1, 1)
            try:
                # Decoding from the start is exact and cheap for a 1 s target; seeking
                # would land on the previous keyframe anyway.
                while seconds > 0 and (frame.pts is None or float(frame.pts * base) < seconds):
                    following = next(frames, None)
                    if following is None:
                        break
                    frame = following
            except av.FFmpegError:
                pass  # a damaged tail: keep the last good frame
            return facts, frame
    except av.FFmpegError as exc:
        msg = f"{path} is not a video FFmpeg can read ({exc.strerror or type(exc).__name__})"
        raise NotAVideo(msg) from exc


def _duration(container: Any, stream: Any) -> float:
    """Return the stream's duration in seconds, falling back to the container's."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        import av  # loaded already: the container is open

        return float(container.duration) / av.time_base
    return 0.0
