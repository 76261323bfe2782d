"""The fault and crash campaigns' machinery, shared by tests/faults/ and
benchmarks/reliability.py: real `runner sandbox serve` and `runner run` processes.

Nothing here is mocked. The sandbox is its own process (it outlives every kill of the
runner, as the real API would, and with `--state-dir` it survives its own kill too);
its `/_sandbox/stats` counts every accepted body, which is how a campaign proves that
nothing was paid for twice. `audit()` checks an output folder the way a suspicious
user would: every finished request's video is checked to be a complete H.264 MP4,
hashed and compared with both the manifest and its sidecar; every other request must
say why.

The judging uses `tests.oracles` (a manifest reader, hashes and an MP4 check written
from the documented formats), never the runner's own `read_state`, `sha256_file` or
`probe`: a bug in those would otherwise agree with itself and stay invisible.
"""

from __future__ import annotations

import base64
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from runner.sandbox.config import FAULT_KINDS
from tests import oracles

KEY_ENV = "AIMLAPI_API_KEY"
TEST_KEY = "sk-faults-test-key-0000"  # what the runner sends; the sandbox takes any key
RUN_TIMEOUT = 90.0  # seconds: a run that takes longer has hung (the campaign's bound)
POLL_FLAGS = ("--poll-min", "0.05", "--poll-max", "0.3")


def child_env(key: str = TEST_KEY, **extra: str) -> dict[str, str]:
    """Return the environment of a runner child: the key set, no stray provider keys."""
    env = {k: v for k, v in os.environ.items() if k not in (KEY_ENV, "APILAPLAS_API_KEY")}
    env.update({KEY_ENV: key, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1", **extra})
    return env


# --------------------------------------------------------------------------- the server


class SandboxProcess:
    """A `runner sandbox serve` subprocess that can be killed and brought back."""

    def __init__(self, *args: str, state_dir: Path | None = None, log: Path | None = None):
        self.args = list(args)
        self.state_dir = state_dir
        self.log = log
        self.port = 0
        self.base_url = ""
        self.process: subprocess.Popen[str] | None = None
        self.starts = 0

    def start(self) -> str:
        """Start the server (on the port it had before, if any); return its base URL."""
        command = [sys.executable, "-m", "runner", "sandbox", "serve", "--port", str(self.port)]
        if self.state_dir is not None:
            command += ["--state-dir", str(self.state_dir)]
        stderr = self.log.open("a") if self.log is not None else subprocess.DEVNULL
        try:
            self.process = subprocess.Popen(
                [*command, *self.args],
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        finally:
            if self.log is not None and not isinstance(stderr, int):
                stderr.close()
        assert self.process.stdout is not None
        first = self.process.stdout.readline().strip()
        if not first.startswith("serving on http://127.0.0.1:"):
            self.process.kill()
            msg = f"the sandbox did not start: {first!r}"
            raise RuntimeError(msg)
        self.base_url = first.removeprefix("serving on ")
        self.port = int(self.base_url.rsplit(":", 1)[1])
        self.starts += 1
        return self.base_url

    def kill(self) -> None:
        """SIGKILL the server: connections drop, nothing is flushed on the way out."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def restart(self) -> None:
        """Start again on the same port (the runner keeps its base URL)."""
        deadline = time.monotonic() + 10
        while True:
            try:
                self.start()
                return
            except RuntimeError:  # the port may linger for a moment after a kill
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        """Stop the server politely, or kill it."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()

    def peak_rss_kb(self) -> int:
        """Return the server process's peak resident memory so far (VmHWM, in kB)."""
        assert self.process is not None
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(next(line for line in status.splitlines() if line.startswith("VmHWM:"))
                   .split()[1])

    def stats(self) -> dict[str, Any]:
        """Return `GET /_sandbox/stats`."""
        data: dict[str, Any] = httpx.get(f"{self.base_url}/_sandbox/stats", timeout=10).json()
        return data

    def reset_stats(self) -> None:
        """Zero the counters (`DELETE /_sandbox/stats`)."""
        httpx.delete(f"{self.base_url}/_sandbox/stats", timeout=10).raise_for_status()

    def configure(self, **changes: Any) -> None:
        """Change knobs at runtime (`POST /_sandbox/config`)."""
        response = httpx.post(f"{self.base_url}/_sandbox/config", json=changes, timeout=10)
        response.raise_for_status()

    def set_faults(self, **faults: float | dict[str, float]) -> None:
        """Make exactly `faults` active (every other kind off), counts restarted."""
        wanted = {kind: {"rate": 0.0, "first": 0} for kind in FAULT_KINDS}
        for kind, spec in faults.items():
            wanted[kind] = spec if isinstance(spec, dict) else {"rate": float(spec), "first": 0}
        self.configure(faults=wanted)


# --------------------------------------------------------------------------- specs, runs


def draw_image(path: Path, size: tuple[int, int] = (64, 36)) -> Path:
    """Write a small real PNG (with a stripe, so the camera move shows)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", size, (90, 120, 160))
    image.paste((220, 200, 40), (0, 0, size[0] // 3, size[1]))
    image.save(path)
    return path


def write_spec(folder: Path, name: str, seeds: Sequence[int], prompt: str) -> Path:
    """Write a spec `name` with one request per seed; return its path."""
    draw_image(folder / "images" / "frame.png")
    spec = folder / f"{name}.yaml"
    spec.write_text(
        "version: 1\n"
        f"name: {name}\n"
        "provider: aimlapi\n"
        "model: runway/gen4_turbo\n"
        f"matrix:\n  seed: {list(seeds)}\n"
        "params:\n"
        "  image_url: images/frame.png\n"
        f"  prompt: {json.dumps(prompt)}\n"
        '  ratio: "16:9"\n'
        "  duration: 5\n"
        'output: "seed-{{ seed }}.mp4"\n',
        encoding="utf-8",
    )
    return spec


def run_command(
    spec: Path, base_url: str, out: Path, *extra: str, concurrency: int = 4
) -> list[str]:
    """Return the `runner run` command line of a campaign run."""
    return [
        sys.executable, "-m", "runner", "run", str(spec), "--base-url", base_url,
        "--output-dir", str(out), "--concurrency", str(concurrency), *POLL_FLAGS, *extra,
    ]


def run_runner(
    command: Sequence[str], cwd: Path, *, env: Mapping[str, str] | None = None,
    timeout: float = RUN_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """Run a runner command to its end; a hang past `timeout` raises TimeoutExpired."""
    return subprocess.run(
        list(command), cwd=cwd, env=dict(env or child_env()), capture_output=True, text=True,
        timeout=timeout, check=False,
    )


MIME_BY_SUFFIX = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
                  ".webp": "image/webp"}


def sent_body_sha256(entry: oracles.Entry, cwd: Path) -> str:
    """Return the sha256 of the canonical body a request's POST carried, rebuilt from its
    manifest record: each `sha256:` image reference replaced by the data: URI of the
    image file it names (whose bytes must have that hash)."""
    body = dict(entry.body)
    for key, value in entry.body.items():
        if not (isinstance(value, str) and value.startswith("sha256:")):
            continue
        image = cwd / entry.images[value]
        data = image.read_bytes()
        assert oracles.sha256_of(image) == value.removeprefix("sha256:"), image
        mime = MIME_BY_SUFFIX[image.suffix.lower()]
        body[key] = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    return oracles.body_sha256(body)


# --------------------------------------------------------------------------- auditing


@dataclass
class Audit:
    """What an output folder holds, checked file by file."""

    done: list[str] = field(default_factory=list)  # verified request ids
    reported: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (status, reason)
    problems: list[str] = field(default_factory=list)  # broken promises, in words
    parts: list[Path] = field(default_factory=list)  # leftover .part files

    @property
    def ok(self) -> bool:
        return not self.problems


def audit(folder: Path, *, expect_parts: bool = False, interrupted: bool = False) -> Audit:
    """Check every request the manifest knows: a done one's video must be present, a
    complete H.264 MP4, and match the manifest and its sidecar (size, sha256); any other
    must carry a reason. A manifest that breaks its format is a problem too.

    `interrupted`: the run was stopped (killed, disk full) — a sidecar not yet written
    is then allowed (the next run writes it from the manifest), a wrong one never.
    """
    result = Audit()
    try:
        states = oracles.read_manifest(folder)
    except oracles.ManifestCorrupt as exc:
        result.problems.append(f"the manifest is corrupt: {exc}")
        return result
    for rid, state in sorted(states.items()):
        if state.status != "done":
            if not state.reason and state.status != "pending":
                result.problems.append(f"{rid}: {state.status} without a reason")
            result.reported[rid] = (state.status, state.reason or "")
            continue
        assert state.output is not None
        video = folder / state.output
        if not video.is_file():
            result.problems.append(f"{rid}: done but {state.output} is missing")
            continue
        digest = oracles.sha256_of(video)
        size = video.stat().st_size
        if digest != state.sha256 or size != state.size:
            result.problems.append(f"{rid}: {state.output} does not match the manifest")
            continue
        problem = oracles.mp4_problem(video)
        if problem is not None:
            result.problems.append(f"{rid}: {state.output} {problem}")
            continue
        sidecar = video.with_suffix(".json")
        if interrupted and not sidecar.exists():
            result.done.append(rid)
            continue
        try:
            side = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            result.problems.append(f"{rid}: sidecar {sidecar.name} unreadable: {exc}")
            continue
        if side.get("sha256") != digest or side.get("id") != rid or side.get("size") != size:
            result.problems.append(f"{rid}: sidecar {sidecar.name} disagrees with the video")
            continue
        result.done.append(rid)
    result.parts = sorted(folder.rglob("*.part"))
    if result.parts and not expect_parts:
        result.problems.append(f"leftover partial files: {[p.name for p in result.parts]}")
    return result


def duplicates(stats: Mapping[str, Any]) -> int:
    """Accepted POSTs whose body had been accepted before (each a second payment)."""
    return int(stats["duplicate_submissions"])


# --------------------------------------------------------------------------- crashes


def manifest_events(folder: Path) -> list[dict[str, Any]]:
    """Return the complete records (a torn tail is not a record)."""
    return list(oracles.read_log(folder).records)


def moment(folder: Path, events: list[dict[str, Any]]) -> str:
    """Name what a run was doing from what it left (`events`: this run's records only):
    the phase a kill interrupted."""
    if any(folder.rglob("*.part")):
        return "download"
    open_posts = {e["id"] for e in events if e["event"] == "submitting"} - {
        e["id"] for e in events if e["event"] in ("submitted", "unknown", "failed", "forgotten")
    }
    if open_posts:
        return "submit"
    if not events:
        return "start"
    return "poll" if events[-1]["event"] in ("submitted", "completed") else "record"


@dataclass
class CrashStats:
    """What a crash campaign did and found."""

    kills: dict[str, int] = field(default_factory=dict)  # phase -> SIGKILLs landed there
    runs: int = 0
    unreadable: int = 0  # manifest could not be read after a kill (must stay 0)
    broken: int = 0  # done records whose file was missing, partial or wrong (must stay 0)
    problems: list[str] = field(default_factory=list)  # what `broken` counted, in words
    unknown: int = 0  # requests left unknown by a kill during their POST
    unknown_accepted: int = 0  # ... of which the server had accepted (paid, no id)
    resubmitted: int = 0  # unknowns the server never saw, resubmitted as a user would
    final: Audit | None = None

    @property
    def total_kills(self) -> int:
        return sum(self.kills.values())


def holds_lock(folder: Path, pid: int) -> bool:
    """Tell whether the run with `pid` has taken the spec's lock (it wrote its pid)."""
    try:
        info = json.loads((folder / ".lock").read_text() or "{}")
    except (OSError, ValueError):
        return False
    return isinstance(info, dict) and info.get("pid") == pid


def kill_at_random(
    command: Sequence[str], cwd: Path, folder: Path, rng: random.Random, *,
    env: Mapping[str, str] | None = None, within: float = 1.5,
    on_sample: Callable[[], None] | None = None,
) -> tuple[bool, str]:
    """Run `command` and SIGKILL it a random delay in [0, `within`] s after it took the
    spec's lock (the moment its work starts: Python's start-up before it is skipped).

    Until the kill, the manifest is read over and over (`on_sample`): it must be
    readable at every instant. Returns (killed, phase it was in); not killed when the
    run ended first.
    """
    delay = rng.uniform(0.0, within)
    earlier = len(manifest_events(folder))  # what earlier runs wrote: not this run's phase
    process = subprocess.Popen(
        list(command), cwd=cwd, env=dict(env or child_env()),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    working_since: float | None = None
    deadline = time.monotonic() + RUN_TIMEOUT
    try:
        while process.poll() is None and time.monotonic() < deadline:
            if working_since is None and holds_lock(folder, process.pid):
                working_since = time.monotonic()
            if working_since is not None and time.monotonic() - working_since >= delay:
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=10)
                return True, moment(folder, manifest_events(folder)[earlier:])
            if on_sample is not None:
                on_sample()
            time.sleep(0.002)
        return False, "ended"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def crash_campaign(
    spec: Path, server: SandboxProcess, out: Path, rng: random.Random, *,
    kills: int, concurrency: int = 3, within: float = 1.5, max_runs: int = 200,
) -> CrashStats:
    """Kill `runner run` `kills` times at random moments, resuming each time, then let
    it finish; act as a user on requests left unknown (resubmit only those the server
    never received). Return the tally and the final audit."""
    folder = out / spec.stem
    cwd = spec.parent
    stats = CrashStats()
    command = run_command(spec, server.base_url, out, concurrency=concurrency)

    def sample() -> None:
        try:
            oracles.read_manifest(folder)
        except oracles.ManifestCorrupt:
            stats.unreadable += 1

    while stats.total_kills < kills and stats.runs < max_runs:
        stats.runs += 1
        killed, phase = kill_at_random(command, cwd, folder, rng, within=within, on_sample=sample)
        if not killed:
            # The run finished before the kill; start over from nothing for more kills.
            break
        stats.kills[phase] = stats.kills.get(phase, 0) + 1
        after = audit(folder, expect_parts=True, interrupted=True)  # .part: killed mid-download
        stats.broken += len(after.problems)
        stats.problems += after.problems
    stats.runs += 1
    final = run_runner(command, cwd)
    if final.returncode not in (0, 1) or "Traceback" in final.stderr:
        msg = f"the resumed run failed: {final.returncode}\n{final.stdout}\n{final.stderr}"
        raise AssertionError(msg)
    accepted = server.stats()["submissions_by_body"]
    unknown = {rid: e for rid, e in oracles.read_manifest(folder).items()
               if e.status == "unknown"}
    stats.unknown = len(unknown)
    for rid, entry in unknown.items():
        if accepted.get(sent_body_sha256(entry, cwd), 0):
            stats.unknown_accepted += 1  # paid, id lost: the user's dashboard has it
            continue
        stats.resubmitted += 1
        stats.runs += 1
        again = run_runner([*command, "--resubmit-unknown", "--only", f"id={rid}"], cwd)
        if again.returncode != 0:
            msg = f"resubmitting {rid} failed:\n{again.stdout}\n{again.stderr}"
            raise AssertionError(msg)
    stats.final = audit(folder)
    return stats


# --------------------------------------------------------------------------- fault scenarios


@dataclass(frozen=True)
class Scenario:
    """One kind of trouble the server makes, and what a run must still achieve."""

    name: str
    faults: Mapping[str, float | dict[str, float]]
    knobs: Mapping[str, Any] = field(default_factory=dict)
    all_done: bool = True  # transient trouble within the retry budget: every video arrives
    reported: Mapping[str, int] = field(default_factory=dict)  # status -> exact count


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("429 storm with Retry-After", {"rate_limit": {"first": 6, "rate": 0.1}}),
    Scenario("503 on submit", {"unavailable": {"first": 4}}),
    Scenario("5xx on polls", {"poll_error": 0.4}),
    # The answer is lost, but the usage logs name the generation: found, collected.
    Scenario("connection dropped after accepted POST", {"drop_after_accept": {"first": 1}}),
    Scenario("truncated downloads", {"truncated_download": {"first": 2}}),
    Scenario("expiring URLs", {"short_url": {"first": 3}}),
    Scenario(
        "failed generations", {"failed_generation": {"first": 1}},
        all_done=False, reported={"failed": 1},
    ),
    Scenario("slow server", {"slow": 1.0}, knobs={"slow_seconds": 0.4}),
    Scenario(
        "everything at once",
        {
            "rate_limit": 0.15, "unavailable": 0.1, "poll_error": 0.2, "truncated_download": 0.1,
            "short_url": 0.1, "failed_generation": 0.1, "drop_after_accept": 0.05, "slow": 0.1,
        },
        knobs={"slow_seconds": 0.2},
        all_done=False,
    ),
)


@dataclass(frozen=True)
class ScenarioResult:
    """How one scenario's run ended and what the server saw."""

    returncode: int
    seconds: float
    audit: Audit
    stats: Mapping[str, Any]
    rerun_submissions: int  # POSTs accepted by a second run of the same spec (must be 0)
    output: str  # the runner's stdout + stderr
    paid_not_once: tuple[str, ...] = ()  # done requests whose body was not accepted once

    @property
    def injected(self) -> int:
        return sum(self.stats["faults_injected"].values())


def run_scenario(
    server: SandboxProcess, scenario: Scenario, folder: Path, seeds: Sequence[int],
    *, tag: str = "",
) -> ScenarioResult:
    """Run one spec of `len(seeds)` requests through `scenario`'s faults, then run it
    again without faults (a nightly rerun): that must submit nothing new."""
    server.set_faults(**scenario.faults)
    if scenario.knobs:
        server.configure(**scenario.knobs)
    server.reset_stats()
    name = "".join(c if c.isalnum() else "-" for c in scenario.name.lower()).strip("-")
    spec = write_spec(folder, name, seeds, f"fault campaign: {scenario.name} {tag}".strip())
    out = folder / "outputs"
    command = run_command(spec, server.base_url, out)
    started = time.monotonic()
    run = run_runner(command, folder)
    seconds = time.monotonic() - started
    if "Traceback" in run.stderr:  # a crashed runner is a bug, not a fault outcome
        raise AssertionError(run.stderr)
    stats = server.stats()
    server.set_faults()
    rerun = run_runner(command, folder)
    after = server.stats()
    checked = audit(out / name)
    return ScenarioResult(
        returncode=run.returncode,
        seconds=seconds,
        audit=checked,
        stats=stats,
        rerun_submissions=after["submissions"] - stats["submissions"],
        output=run.stdout + run.stderr + rerun.stdout + rerun.stderr,
        paid_not_once=paid_not_once(out / name, checked.done, after, folder),
    )


def paid_not_once(
    folder: Path, done: Sequence[str], stats: Mapping[str, Any], cwd: Path
) -> tuple[str, ...]:
    """Return the done requests whose body (rebuilt from the manifest) the server did
    not accept exactly once: none was skipped, none was paid for twice."""
    entries = oracles.read_manifest(folder)
    accepted = stats["submissions_by_body"]
    return tuple(
        rid for rid in done if accepted.get(sent_body_sha256(entries[rid], cwd), 0) != 1
    )
