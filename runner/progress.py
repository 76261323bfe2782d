"""Progress while a run works, and the summary when it ends.

On a terminal: a rich live bar with done / running / failed counts and an ETA. Not on a
terminal (CI logs): one plain line every `every` seconds and when something notable
happens, so a log shows steady progress without a line per poll. The engine only calls
the `Reporter` methods; it never knows which kind it talks to.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TextIO

from runner.clock import Clock

if TYPE_CHECKING:
    # rich loads only for a live bar: ~30 ms of every start, before the first request.
    from rich.console import Console
    from rich.progress import Progress, TaskID

REFRESH_PER_SECOND = 2  # redraws of the live bar


@dataclass(frozen=True, slots=True)
class Tally:
    """How many of a run's requests are in each state right now."""

    total: int = 0  # requests the run is responsible for
    done: int = 0  # videos in place and verified (including ones already done)
    running: int = 0  # submitted or being submitted, polled or downloaded
    failed: int = 0  # failed in this run or earlier and not retried
    unknown: int = 0  # POST outcome unknown: not resubmitted
    skipped: int = 0  # not submitted (quota, auth stop, timed out still pending)

    @property
    def finished(self) -> int:
        return self.done + self.failed + self.unknown + self.skipped

    @property
    def waiting(self) -> int:
        return max(0, self.total - self.finished - self.running)


class Reporter(Protocol):
    """What the engine tells whoever shows progress."""

    def start(self, tally: Tally) -> None:
        """The run begins with this tally (already-done requests counted)."""
        ...

    def update(self, tally: Tally) -> None:
        """Some request changed state."""
        ...

    def note(self, line: str) -> None:
        """Something a user should read now (quota reached, an outcome unknown, …)."""
        ...

    def stop(self) -> None:
        """The run is over; release the terminal."""
        ...


class SilentReporter:
    """Show nothing (library use, tests)."""

    def __init__(self) -> None:
        self.notes: list[str] = []
        self.last = Tally()

    def start(self, tally: Tally) -> None:
        self.last = tally

    def update(self, tally: Tally) -> None:
        self.last = tally

    def note(self, line: str) -> None:
        self.notes.append(line)

    def stop(self) -> None:
        pass


def eta_seconds(tally: Tally, started_done: int, elapsed: float) -> float | None:
    """Estimate the seconds left from the pace of this run's finished requests."""
    finished_now = tally.finished - started_done
    left = tally.total - tally.finished
    if left <= 0:
        return 0.0
    if finished_now <= 0 or elapsed <= 0:
        return None
    return elapsed / finished_now * left


def format_duration(seconds: float | None) -> str:
    """Render seconds as `1h02m`, `3m05s` or `42s` (`?` when unknown)."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def tally_line(tally: Tally, eta: float | None) -> str:
    """Render one plain progress line."""
    parts = [
        f"{tally.done}/{tally.total} done",
        f"{tally.running} running",
        f"{tally.waiting} waiting",
        f"{tally.failed} failed",
    ]
    if tally.unknown:
        parts.append(f"{tally.unknown} unknown")
    if tally.skipped:
        parts.append(f"{tally.skipped} not run")
    return ", ".join(parts) + f" — ETA {format_duration(eta)}"


class PlainReporter:
    """Periodic plain lines for logs: at most one per `every` seconds, plus notes."""

    def __init__(self, stream: TextIO, clock: Clock, every: float = 10.0) -> None:
        self._stream = stream
        self._clock = clock
        self._every = every
        self._started = clock.monotonic()
        self._last_print = -math.inf
        self._started_done = 0
        self._tally = Tally()

    def start(self, tally: Tally) -> None:
        self._started = self._clock.monotonic()
        self._started_done = tally.finished
        self._tally = tally
        self._emit(f"run: {tally.total} requests, {tally.done} already done")

    def update(self, tally: Tally) -> None:
        self._tally = tally
        now = self._clock.monotonic()
        if now - self._last_print >= self._every:
            self._last_print = now
            self._emit(self._line())

    def note(self, line: str) -> None:
        self._emit(line)

    def stop(self) -> None:
        self._emit(self._line())

    def _line(self) -> str:
        elapsed = self._clock.monotonic() - self._started
        return tally_line(self._tally, eta_seconds(self._tally, self._started_done, elapsed))

    def _emit(self, line: str) -> None:
        self._stream.write(line + "\n")
        self._stream.flush()


@dataclass
class LiveReporter:
    """A rich live bar on a terminal: done/total, running, failed, elapsed and ETA."""

    console: Console
    _progress: Progress | None = field(default=None, init=False)
    _task: TaskID | None = field(default=None, init=False)

    def start(self, tally: Tally) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("[bold]run"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
            # Each redraw costs ~2 ms of CPU: at rich's default 10 a second the bar alone
            # took ~2 ms per generation of a 1,000-generation run. Counts and a clock in
            # whole seconds read the same at 2.
            refresh_per_second=REFRESH_PER_SECOND,
        )
        self._progress.start()
        self._task = self._progress.add_task(
            "run", total=max(1, tally.total), completed=tally.finished, counts=self._counts(tally)
        )

    def update(self, tally: Tally) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(
                self._task, completed=tally.finished, counts=self._counts(tally)
            )

    def note(self, line: str) -> None:
        self.console.print(line, markup=False, highlight=False)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    @staticmethod
    def _counts(tally: Tally) -> str:
        text = (
            f"[green]{tally.done} done[/] [cyan]{tally.running} running[/] "
            f"[red]{tally.failed} failed[/]"
        )
        if tally.unknown:
            text += f" [yellow]{tally.unknown} unknown[/]"
        return text


def make_reporter(stream: TextIO, clock: Clock, *, every: float = 10.0) -> Reporter:
    """Return a live bar when `stream` is a terminal, plain periodic lines otherwise.

    rich decides what a terminal is (it honours FORCE_COLOR and TTY_COMPATIBLE); it is
    asked only when it could answer yes, so a run in a log or a pipe never loads it.
    """
    if _may_be_terminal(stream):
        from rich.console import Console

        console = Console(file=stream)
        if console.is_terminal:
            return LiveReporter(console)
    return PlainReporter(stream, clock, every)


def _may_be_terminal(stream: TextIO) -> bool:
    """Whether rich's `Console.is_terminal` could be true for `stream`: it is a tty, or
    the environment forces a terminal (rich reads TTY_COMPATIBLE=1 and a non-empty
    FORCE_COLOR as yes; anything else leaves it to isatty)."""
    if os.environ.get("TTY_COMPATIBLE") == "1" or os.environ.get("FORCE_COLOR"):
        return True
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
