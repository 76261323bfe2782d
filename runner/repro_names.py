"""Where reproductions live: `seed-1.mp4` → `seed-1.repro-1.mp4`, `seed-1.repro-2.mp4` …

A reproduction is written beside its original, never over it; these names are how the
gallery, `runner reproduce` and `runner prune` find the reproductions of a video.
"""

from __future__ import annotations

from pathlib import PurePosixPath

REPRO_INFIX = ".repro-"
# The reproductions' own manifest folder inside outputs/<name>/ (see runner.reproduce).
REPRO_DIR = ".reproductions"


def repro_output(original: str, number: int) -> str:
    """Return the POSIX path of reproduction `number` of the video at `original`."""
    path = PurePosixPath(original)
    return str(path.with_name(f"{path.stem}{REPRO_INFIX}{number}{path.suffix}"))


def repro_number(original_name: str, candidate_name: str) -> int | None:
    """Return N when file `candidate_name` is reproduction N of file `original_name`."""
    original = PurePosixPath(original_name)
    prefix = f"{original.stem}{REPRO_INFIX}"
    if not (candidate_name.startswith(prefix) and candidate_name.endswith(original.suffix)):
        return None
    number = candidate_name[len(prefix) : len(candidate_name) - len(original.suffix)]
    return int(number) if number.isdigit() and number[0] != "0" else None


def split_repro(name: str) -> tuple[str, int] | None:
    """Return (original file name, N) when `name` is a reproduction's file name."""
    head, infix, tail = name.rpartition(REPRO_INFIX)
    if not infix or not head:
        return None
    digits, dot, suffix = tail.partition(".")
    if not digits.isdigit() or digits[0] == "0":
        return None
    return f"{head}{dot}{suffix}", int(digits)
