"""The store benchmark runs end to end at a tiny size (its figures are not checked)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_store_bench_tiny_writes_json_and_tables(tmp_path: Path) -> None:
    """Both stores, both sizes, inventory and memory each report a figure; tables are printed."""
    out = tmp_path / "store.json"
    command = [
        sys.executable, "benchmarks/store_bench.py", "--small-n", "2", "--large-n", "1",
        "--large-mb", "9", "--inventory", "20", "--memory-mb", "9", "--json-out", str(out),
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    document = json.loads(out.read_text())
    backends = {"s3 (moto, loopback)", "file:// (temp folder)"}
    assert {(row["backend"], row["size_bytes"]) for row in document["rows"]} == {
        (backend, size) for backend in backends for size in (30_000, 9_000_000)
    }
    figures = ("put_s", "put_again_s", "get_s", "put_mb_s", "get_mb_s")
    assert all(row[name] > 0 for row in document["rows"] for name in figures)
    assert set(document["inventory"]["seconds"]) == backends
    assert all(f["wall_s"] > 0 for f in document["inventory"]["seconds"].values())
    assert set(document["memory"]["peak_bytes"]) == backends
    assert "| store | video | n | put (new) s/video |" in done.stdout
