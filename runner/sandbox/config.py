"""The sandbox's knobs: timing, rendering, URL lifetime, usage logs and fault injection.

`SandboxConfig` is frozen; a running server swaps in a new one when a client posts to
`/_sandbox/config`. `from_mapping()` / `to_mapping()` are the JSON edges of it, and
`parse_fault()` reads the CLI's `--fault KIND=RATE` flags.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from runner.errors import UsageError

RenderMode = Literal["full", "cheap"]

# Every fault the sandbox can inject, with what it does (the names are the public API).
FAULT_KINDS: dict[str, str] = {
    "rate_limit": "POST answered 429 with Retry-After; nothing is created",
    "unavailable": "POST answered 503; nothing is created",
    "poll_error": "a poll answered 500, 502 or 504",
    "failed_generation": "the generation ends with status error and a message (not billed)",
    "drop_after_accept": "POST creates the generation, then the connection is dropped "
    "before any response byte",
    "truncated_download": "a download sends its full Content-Length, then closes early",
    "short_url": "the signed URL expires after short_url_ttl seconds instead of url_ttl",
    "slow": "the response is delayed by slow_seconds",
}


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """When one fault fires: the first `first` eligible events, then with probability `rate`."""

    rate: float = 0.0
    first: int = 0

    def to_mapping(self) -> dict[str, Any]:
        return {"rate": self.rate, "first": self.first}


@dataclass(frozen=True, slots=True)
class SandboxConfig:
    """Every knob of the sandbox; the defaults suit `runner run --sandbox`."""

    latency: float = 1.0  # seconds a generation runs once it holds a slot
    jitter: float = 0.2  # latency varies uniformly within ± jitter
    concurrency: int = 8  # server slots; further generations wait `queued`
    scale: int = 8  # documented output size divided by this (1280x720 -> 160x90)
    fps: int = 8
    render: RenderMode = "full"  # "cheap": one cached clip per size, for benchmarks
    url_ttl: float = 3600.0  # lifetime of a signed download URL, seconds
    short_url_ttl: float = 0.0  # lifetime under the short_url fault
    retry_after: int = 1  # Retry-After seconds sent with a 429
    slow_seconds: float = 1.0  # delay added by the slow fault
    seed: int = 0  # seeds latency jitter and every fault's dice
    faults: Mapping[str, FaultSpec] = field(default_factory=dict)
    cache_size: int = 64  # rendered clips kept in memory
    cache_dir: Path | None = None  # optional on-disk render cache
    state_dir: Path | None = None  # remember generations across restarts
    render_workers: int = 2  # threads rendering clips off the event loop
    logs: bool = True  # serve GET /v2/logs; False plays a provider without usage logs (404)
    log_lag: float = 0.0  # seconds after a generation ends before its usage-log row appears
    log_rate: int = 200  # usage-log queries answered per log_rate_window; more get 429
    log_rate_window: float = 60.0  # seconds

    def __post_init__(self) -> None:
        _check(self.latency >= 0, "latency must be >= 0 seconds")
        _check(self.jitter >= 0, "jitter must be >= 0 seconds")
        _check(self.concurrency >= 1, "concurrency must be at least 1")
        _check(self.scale >= 1, "scale must be at least 1")
        _check(1 <= self.fps <= 60, "fps must be between 1 and 60")
        _check(self.render in ("full", "cheap"), "render must be 'full' or 'cheap'")
        _check(self.url_ttl > 0, "url_ttl must be > 0 seconds")
        _check(self.short_url_ttl >= 0, "short_url_ttl must be >= 0 seconds")
        _check(self.retry_after >= 0, "retry_after must be >= 0 seconds")
        _check(self.slow_seconds >= 0, "slow_seconds must be >= 0 seconds")
        _check(self.cache_size >= 0, "cache_size must be >= 0")
        _check(self.render_workers >= 1, "render_workers must be at least 1")
        _check(self.log_lag >= 0, "log_lag must be >= 0 seconds")
        _check(self.log_rate >= 1, "log_rate must be at least 1")
        _check(self.log_rate_window > 0, "log_rate_window must be > 0 seconds")
        for kind, spec in self.faults.items():
            _check(kind in FAULT_KINDS, _unknown_fault(kind))
            _check(0.0 <= spec.rate <= 1.0, f"fault {kind}: rate must be between 0 and 1")
            _check(spec.first >= 0, f"fault {kind}: first must be >= 0")

    def fault(self, kind: str) -> FaultSpec:
        """Return the spec of one fault kind (never firing when unset)."""
        return self.faults.get(kind, FaultSpec())

    def to_mapping(self) -> dict[str, Any]:
        """Return the knobs as JSON-ready data."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Path):
                value = str(value)
            elif f.name == "faults":
                value = {kind: spec.to_mapping() for kind, spec in sorted(value.items())}
            out[f.name] = value
        return out

    def updated(self, changes: Mapping[str, Any]) -> SandboxConfig:
        """Return a copy with the runtime-changeable knobs in `changes` applied."""
        fixed = {"cache_dir", "state_dir", "render_workers", "cache_size"}
        known = {f.name for f in dataclasses.fields(self)} - fixed
        kwargs: dict[str, Any] = {}
        for name, value in changes.items():
            if name in fixed:
                msg = f"{name} cannot change while the server runs — restart it with the flag"
                raise UsageError(msg)
            if name not in known:
                msg = f"unknown sandbox knob {name!r} — use one of: {', '.join(sorted(known))}"
                raise UsageError(msg)
            if name == "faults":
                kwargs[name] = {**self.faults, **_faults_from(value)}
            else:
                kwargs[name] = _coerce(name, value, getattr(self, name))
        return dataclasses.replace(self, **kwargs)


def parse_fault(text: str) -> tuple[str, FaultSpec]:
    """Parse a CLI fault: `KIND=RATE` (0..1) or `KIND=first:N` (the first N events)."""
    kind, sep, value = text.partition("=")
    kind = kind.strip()
    if not sep or kind not in FAULT_KINDS:
        raise UsageError(_unknown_fault(kind) if sep else f"bad --fault {text!r} — write KIND=RATE")
    try:
        if value.startswith("first:"):
            return kind, FaultSpec(first=int(value[len("first:") :]))
        return kind, FaultSpec(rate=float(value))
    except ValueError:
        msg = f"bad --fault {text!r} — the value is a rate (0..1) or first:N"
        raise UsageError(msg) from None


def _faults_from(value: Any) -> dict[str, FaultSpec]:
    if not isinstance(value, Mapping):
        raise UsageError("faults must be an object of KIND -> {rate, first}")
    out: dict[str, FaultSpec] = {}
    for kind, spec in value.items():
        if kind not in FAULT_KINDS:
            raise UsageError(_unknown_fault(str(kind)))
        if isinstance(spec, int | float) and not isinstance(spec, bool):
            out[kind] = FaultSpec(rate=float(spec))
        elif isinstance(spec, Mapping) and set(spec) <= {"rate", "first"}:
            out[kind] = FaultSpec(
                rate=float(_coerce("rate", spec.get("rate", 0.0), 0.0)),
                first=int(_coerce("first", spec.get("first", 0), 0)),
            )
        else:
            msg = f"fault {kind}: give a rate or an object with 'rate' and/or 'first'"
            raise UsageError(msg)
    return out


def _coerce(name: str, value: Any, current: Any) -> Any:
    """Check a JSON value against the type of the knob it replaces."""
    if isinstance(current, bool) or isinstance(value, bool):
        ok = isinstance(value, bool) and isinstance(current, bool)
    elif isinstance(current, int):
        ok = isinstance(value, int)
    elif isinstance(current, float):
        ok = isinstance(value, int | float)
        value = float(value) if ok else value
    else:
        ok = isinstance(value, type(current))
    if not ok:
        msg = f"{name} must be a {type(current).__name__}, not {value!r}"
        raise UsageError(msg)
    return value


def _unknown_fault(kind: str) -> str:
    return f"unknown fault {kind!r} — use one of: {', '.join(FAULT_KINDS)}"


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise UsageError(f"sandbox: {message}")


# What `runner run --sandbox` (and `reproduce --sandbox`) start in-process: a generation
# takes about a second, so a demo run feels like one, and its videos are worth looking at
# (640x360 at 12 fps; `runner sandbox serve`, the tests and the benchmarks keep 160x90).
IN_PROCESS = SandboxConfig(latency=1.0, jitter=0.2, scale=2, fps=12)
