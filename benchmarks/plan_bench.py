"""Plan a 100,000-request spec and print wall time and peak memory.

    python benchmarks/plan_bench.py [--requests N] [--json]

Writes a spec (seed range x a prompt template x an output template, one drawn image)
into a temporary folder, then measures, in this fresh process:
  load   load_specs(): parse, validate, expand, render, hash, check every request
  plan   build_plan(): join with the (empty) manifest state
  json   (with --json) serialize the plan as `runner plan --json` does
and the peak resident set size of the whole process. Target on a 2-core machine:
<= 5 s and <= 500 MB for 100,000 requests. Not a test: timings are reported, not asserted.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runner.planning import build_plan  # noqa: E402
from runner.spec import load_specs  # noqa: E402

SPEC = """\
version: 1
name: bench
provider: aimlapi
model: runway/gen4_turbo
max_requests: {count}
vars:
  creature: dragon
matrix:
  seed: {{range: [1, {count}]}}
params:
  image_url: images/frame.png
  prompt: "A menacing evil {{{{ creature }}}} rushes toward the camera"
  ratio: "16:9"
  duration: 5
output: "{{{{ ratio | replace(':', 'x') }}}}/seed-{{{{ seed }}}}.mp4"
"""


def main() -> None:
    """Run the benchmark and print one line per phase."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--json", action="store_true", help="also time the JSON rendering")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "images").mkdir()
        Image.new("RGB", (640, 360), (90, 120, 160)).save(folder / "images" / "frame.png")
        spec = folder / "bench.yaml"
        spec.write_text(SPEC.format(count=args.requests), encoding="utf-8")

        start = time.perf_counter()
        (loaded,) = load_specs([spec])
        loaded_at = time.perf_counter()
        plan = build_plan([loaded], folder / "outputs")
        planned_at = time.perf_counter()
        print(f"requests: {len(plan.entries):,} ({plan.counts['new']:,} new)")
        print(f"load: {loaded_at - start:.2f} s")
        print(f"plan: {planned_at - loaded_at:.2f} s")
        print(f"load+plan: {planned_at - start:.2f} s")
        if args.json:
            size = 0
            with open(os.devnull, "w", encoding="utf-8") as sink:
                for piece in plan.iter_json():  # what `runner plan --json` writes
                    sink.write(piece)
                    size += len(piece)
            done = time.perf_counter()
            print(f"json: {done - planned_at:.2f} s ({size / 1e6:.0f} MB of JSON)")
            print(f"total: {done - start:.2f} s")
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(f"peak RSS: {peak_kb / 1024:.0f} MB")


if __name__ == "__main__":
    main()
