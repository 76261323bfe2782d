"""The gallery benchmark runs end to end at a tiny size, its Chromium on loopback only."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from workflow.browser import off_machine  # pytest puts tests/ (no package) on sys.path

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.browser
def test_gallery_bench_tiny_prints_every_figure(tmp_path: Path) -> None:
    """12 requests: build and rebuild times, page size, both page variants' load timings."""
    command = [sys.executable, "benchmarks/gallery_bench.py", "--requests", "12",
               "--repeat", "1", "--loads", "1", "--trace-dir", str(tmp_path)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0] == "requests: 12"
    assert lines[1].startswith("first build (decode 12 posters, 1 input thumbnail): ")
    assert lines[2].startswith("rebuild, posters present: median ")
    for name in ("page (lazy <img> posters)", "variant (<video preload=none poster>)"):
        (timings,) = [line for line in lines if line.startswith(f"{name}: DOMContentLoaded")]
        assert "n/a" not in timings.split("LCP")[0], timings  # every timing was measured
    assert any("12 <video>" in line for line in lines)  # the variant really has them
    for trace in ("page.trace", "variant.trace"):
        assert off_machine((tmp_path / trace).read_text(encoding="utf-8")) == []
