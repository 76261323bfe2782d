"""A nightly re-run on a fresh machine: only the spec, its lock file and the store.

    python benchmarks/fresh_bench.py [--requests 10000] [--store file|s3] [--json-out F]

What it measures: `runner run` of a finished 10,000-request spec on a machine with no
`outputs/` at all (a fresh CI runner, a teammate's clone), where the lock file beside the
spec records every paid video and the store holds them. Target: at most 5 s, 0 API calls,
no video downloaded.

How the fixture is made: a finished output folder is laid down without running anything
(`benchmarks/bench_noop.build_finished`: the runner's own records of 10,000 finished
requests), each video made distinct by a trailing MP4 `free` box (10,000 different
objects in the store, as a real batch would be), the lock file written from that manifest
(`runner.lockfile`), every video put in the store, then `outputs/` deleted. The run is a
real `runner run` subprocess against a `runner sandbox serve` subprocess whose counters
show any call; `--store s3` uses moto's S3 server on loopback (what the tests use).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_noop import build_finished  # noqa: E402
from benchmarks.bench_specs import write_spec  # noqa: E402
from runner.layout import lockfile_of  # noqa: E402
from runner.lockfile import entry_from_state, render  # noqa: E402
from runner.manifest import Manifest, read_state  # noqa: E402
from runner.sandbox.render import RenderJob, render_clip  # noqa: E402
from runner.store import open_store  # noqa: E402


def free_box(number: int) -> bytes:
    """Return an MP4 `free` box holding `number`: ignored by players, changes the hash."""
    payload = f"{number:012d}".encode()
    return (8 + len(payload)).to_bytes(4, "big") + b"free" + payload


def lay_down(work: Path, requests: int, clip: Path) -> tuple[Path, Path, int]:
    """Write the spec, a finished folder with distinct videos and the lock; return them."""
    spec = write_spec(work, "nightly", requests, provider="aimlapi")
    outputs = work / "outputs"
    build_finished(spec, outputs, clip)
    (folder,) = [p.parent for p in outputs.glob("*/manifest.jsonl")]
    states = read_state(folder)
    # Make every video distinct (and record it), as a real batch's videos are.
    with Manifest.open(folder) as manifest, manifest.group():
        for number, state in enumerate(states.values()):
            assert state.output is not None
            video = folder / state.output
            with video.open("ab") as fh:
                fh.write(free_box(number))
            data = video.read_bytes()
            manifest.record_downloaded(
                state.id, output=state.output, size=len(data),
                sha256=hashlib.sha256(data).hexdigest(), mtime_ns=video.stat().st_mtime_ns,
                video=dict(state.video or {}), download_seconds=0.0,
            )
    lock = lockfile_of(spec)
    entries = [entry_from_state(s, lock.parent) for s in read_state(folder).values()]
    lock.write_bytes(render(e for e in entries if e is not None))
    return spec, folder, len(entries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--store", choices=("file", "s3"), default="file")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fresh-bench-") as tmp:
        work = Path(tmp)
        clip = work / "clip.mp4"
        clip.write_bytes(render_clip(RenderJob(
            model="runway/gen4_turbo", width=160, height=90, fps=8, duration=5, seed=1,
            prompt="", image_sha256="", image=None, mode="cheap")))
        built = time.perf_counter()
        spec, folder, count = lay_down(work, args.requests, clip)
        env = dict(os.environ, AIMLAPI_API_KEY="bench_key_not_secret")
        moto = None
        if args.store == "s3":
            from tests.store.moto_server import MotoServer

            moto = MotoServer(log=work / "moto.log").start()
            env.update(moto.env())
            os.environ.update(moto.env())
            url = f"s3://{moto.create_bucket('fresh-bench')}/videos"
        else:
            url = str(work / "store")
        store = open_store(url)
        for state in read_state(folder).values():
            assert state.output is not None and state.sha256 is not None
            store.put(folder / state.output, state.sha256, b"{}")
        fixture_seconds = time.perf_counter() - built
        shutil.rmtree(work / "outputs")  # the fresh machine

        server = subprocess.Popen(
            [sys.executable, "-m", "runner", "sandbox", "serve", "--port", "0"],
            stdout=subprocess.PIPE, text=True, cwd=ROOT,
        )
        try:
            assert server.stdout is not None
            base = server.stdout.readline().strip().removeprefix("serving on ")
            command = [
                sys.executable, "-m", "runner", "run", str(spec.relative_to(work)), "--store", url,
                "--base-url", base,
            ]
            started = time.perf_counter()
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)
            wall = time.perf_counter() - started
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            stats = httpx.get(f"{base}/_sandbox/stats").json()
        finally:
            server.terminate()
            server.wait(timeout=10)
            if moto is not None:
                moto.stop()
        videos = sum(1 for _ in (work / "outputs").rglob("*.mp4"))
        result = {
            "requests": count,
            "store": args.store,
            "fixture_seconds": round(fixture_seconds, 1),
            "exit_code": done.returncode,
            "wall_seconds": round(wall, 3),
            "cpu_seconds": round(
                (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 3
            ),
            "peak_rss_mb": round(after.ru_maxrss / 1024, 1),
            "api_calls": stats["requests"],
            "videos_downloaded": videos,
            "summary": done.stdout.strip().splitlines()[:2],
        }
    print(json.dumps(result, indent=2))
    print(
        "\n| requests | store | wall | API calls | videos downloaded | exit |\n"
        "|---|---|---|---|---|---|\n"
        f"| {count:,} | {args.store} | {result['wall_seconds']:.2f} s | {result['api_calls']} "
        f"| {videos} | {done.returncode} |"
    )
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
