"""Run a module as `__main__` and write the process's peak RSS to a file at exit.

    python -m benchmarks.bench_peak PEAK_FILE MODULE [ARGS…]

`ru_maxrss` from wait4() is polluted on Linux: exec() carries the parent's peak RSS
over into the child's, so a child of a 100 MB benchmark process never reports less than
100 MB. VmHWM in /proc/self/status belongs to the process's current memory map only,
so it is read here, at exit, from inside the measured process.
"""

from __future__ import annotations

import atexit
import runpy
import sys
from pathlib import Path


def peak_rss_kib() -> int:
    """Return this process's peak resident set size (VmHWM) in KiB."""
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    """Record the peak at exit, then run the module with the remaining arguments."""
    peak_file, module, *args = sys.argv[1:]
    atexit.register(lambda: Path(peak_file).write_text(f"{peak_rss_kib()}\n", encoding="ascii"))
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
