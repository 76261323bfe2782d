"""The output tree: where every file the runner writes lives, in one place.

    <root>/                          outputs/ by default (--output-dir)
    <root>/<name>/                   one spec's results from a real (paid) provider
    <root>/_sandbox/<name>/          the same for the embedded sandbox, never mixed in
        <output>                     each video at the path the spec gives (…/seed-1.mp4)
        <stem>.json                  its sidecar                      (runner.sidecar)
        <stem>.repro-N.mp4 / .json   reproductions, beside the original (runner.reproduce)
        manifest.jsonl               the journal a run resumes from   (runner.manifest)
        .lock                        the run lock (flock)             (runner.lock)
        .spec                        which spec file owns the folder  (runner.ownership)
        index.html                   the gallery                      (runner.gallery)
        .posters/<id>.jpg            gallery posters                  (runner.poster)
        .reproductions/              the reproductions' own manifest
        *.<8 hex>.part               a writer's temp file: never a finished one, removed at start
    <root>/.timings.json             recent generation times per provider and model, the
                                     next run's poll schedule starts from (runner.priors)
    <spec file>.lock                 beside the spec, committed to git (runner.lockfile)

The local tree and the object store (runner.store) share these rules: the store keys
videos by content, and everything it gives back lands at the paths named here.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path

from runner.errors import UsageError

DEFAULT_ROOT = Path("outputs")
SANDBOX_DIR = "_sandbox"  # spec names start with a letter or digit, so this never clashes
MANIFEST = "manifest.jsonl"
RUN_LOCK = ".lock"
OWNER = ".spec"
GALLERY = "index.html"
GALLERY_STATE = ".gallery.json"  # what the previous gallery showed (new/changed badges)
TIMINGS = ".timings.json"  # at the root: generation times per provider and model (priors)
POSTERS = ".posters"
REPRODUCTIONS = ".reproductions"
PART_SUFFIX = ".part"
SIDECAR_SUFFIX = ".json"
VIDEO_SUFFIX = ".mp4"
LOCKFILE_SUFFIX = ".lock"
REPRO_INFIX = ".repro-"
# Names at the top of a spec's folder that belong to the runner, not to any video.
RUNNER_FILES = frozenset(
    {MANIFEST, RUN_LOCK, OWNER, GALLERY, GALLERY_STATE, POSTERS, REPRODUCTIONS}
)


def spec_folder(root: Path, name: str, *, sandbox: bool) -> Path:
    """Return the folder of spec `name`: sandbox results always under `<root>/_sandbox/`.

    Whatever `--output-dir` says, emulator videos never land beside (or over) paid ones,
    and paid ones never inside a sandbox tree, where they would pass for emulator output.
    """
    if sandbox:
        return root / SANDBOX_DIR / name
    if is_sandbox_root(root) or any(part == SANDBOX_DIR for part in root.parts):
        msg = (
            f"--output-dir {root} is inside a sandbox tree ({SANDBOX_DIR}/), which holds "
            "emulator results only — give the root of the output tree (e.g. outputs)"
        )
        raise UsageError(msg)
    return root / name


def is_sandbox_root(root: Path) -> bool:
    """Return whether `root` is itself a sandbox tree (`…/_sandbox`)."""
    return root.name == SANDBOX_DIR


def lockfile_of(spec: Path) -> Path:
    """Return the lock file committed beside `spec` (`specs/dragon.yaml.lock`)."""
    return spec.with_name(spec.name + LOCKFILE_SUFFIX)


def sidecar_of(video: Path) -> Path:
    """Return where the sidecar of `video` lives (`seed-1.mp4` → `seed-1.json`)."""
    if video.suffix == SIDECAR_SUFFIX:
        msg = f"{video}: a video named .json would collide with its own sidecar"
        raise ValueError(msg)
    return video.with_suffix(SIDECAR_SUFFIX)


def sidecar_name(output: str) -> str:
    """Return the sidecar of an output path, as a path relative to the same folder."""
    return _with_suffix(output, SIDECAR_SUFFIX)


def poster_of(folder: Path, request_id: str) -> Path:
    """Return the poster of request `request_id` in a spec's folder."""
    return folder / POSTERS / f"{request_id}.jpg"


def timings_of(root: Path) -> Path:
    """Return the history of generation times at the root of an output tree."""
    return root / TIMINGS


def manifest_of(folder: Path) -> Path:
    """Return the manifest of a spec's folder."""
    return folder / MANIFEST


def files_of(output: str) -> tuple[str, ...]:
    """Return every file path (POSIX, relative to the spec's folder) one request writes."""
    return (output, _with_suffix(output, SIDECAR_SUFFIX))


def is_reproduction_name(name: str) -> bool:
    """Return whether a file name has the shape of a reproduction (`x.repro-3.mp4`)."""
    head, infix, tail = name.rpartition(REPRO_INFIX)
    digits = tail.partition(".")[0]
    return bool(infix and head and digits.isdigit())


def output_clashes(outputs: Sequence[str]) -> dict[int, str]:
    """Return, by index, why an output path cannot coexist with the others or the runner's
    own files (checked before anything is paid for: such a video could never be written).

    Paths are compared caselessly and after Unicode normalisation, as macOS and Windows
    would: a video path that is also another's folder (`x.mp4` and `x.mp4/y.mp4`), a
    folder named like another video's sidecar (`a.mp4` and `a.json/b.mp4`), a path
    through the runner's files (`manifest.jsonl/b.mp4`), or a name the runner keeps for
    reproductions (`a.repro-1.mp4`).
    """
    # Folder prefixes repeat across a sweep (100,000 videos in 120 folders): each distinct
    # one is folded and looked up once, and only an output in a new folder walks them.
    files: dict[str, str] = {}
    folders: dict[str, str] = {}
    folded: dict[str, str] = {}  # a folder prefix as written -> folded
    parents: set[str] = set()
    clashes: dict[int, str] = {}
    # Each output's file names as folded: the video's and its sidecar's.
    names = [_folded_files(output) for output in outputs]
    for index, (output, (video, sidecar)) in enumerate(zip(outputs, names, strict=True)):
        files.setdefault(video, output)
        files.setdefault(sidecar, output)
        parent = output.rpartition("/")[0]
        if parent not in parents:  # its prefixes are new to `folded` only in a new folder
            parents.add(parent)
            end = output.find("/")
            while end != -1:
                prefix = output[:end]
                if prefix not in folded:
                    folded[prefix] = fold(prefix)
                    folders.setdefault(folded[prefix], output)
                end = output.find("/", end + 1)
        head, slash, _ = output.partition("/")
        first = folded[head] if slash else video
        if head in RUNNER_FILES or first in _RUNNER_FOLDED:
            clashes[index] = f"runs through the runner's own {head!r} — choose another name"
        elif REPRO_INFIX in output and is_reproduction_name(output.rpartition("/")[2]):
            clashes[index] = (
                f"is named like a reproduction ({REPRO_INFIX}N) — that name is kept for "
                "`runner reproduce`; rename it"
            )
        elif PART_SUFFIX in output and any(_PART.fullmatch(p) for p in output.split("/")):
            clashes[index] = "is named like one of the runner's temporary .part files — rename it"
    # A file and a folder clash only through a name that is both, which a sweep seldom
    # has: without one, no output needs its folders walked.
    if folders.keys().isdisjoint(files):
        return clashes
    through: dict[str, str | None] = {}  # a folder prefix -> the output that is a file there
    for index, output in enumerate(outputs):
        if index in clashes:
            continue  # a name of the runner's own is said first
        video, sidecar = names[index]
        for path, what in ((video, "is"), (sidecar, "has a sidecar that is")):
            other = folders.get(path)
            if other is not None:
                clashes[index] = f"{what} also a folder of {other!r} — rename one of them"
                break
        else:
            end = output.find("/")
            while end != -1:
                folder = output[:end]
                if folder in through:
                    other = through[folder]
                else:
                    other = through[folder] = files.get(folded[folder])
                if other is not None and other != output:
                    clashes[index] = (
                        f"runs through {folder!r}, a file of {other!r} (a video or its "
                        "sidecar) — rename one of them"
                    )
                    break
                end = output.find("/", end + 1)
    return dict(sorted(clashes.items()))


def _folded_files(output: str) -> tuple[str, str]:
    """Return the folded names of an output's video and its sidecar."""
    if output.isascii():  # folding is lowering, which moves no dot: the suffix goes after
        video = output.lower()
        return video, _with_suffix(video, SIDECAR_SUFFIX)
    return fold(output), fold(_with_suffix(output, SIDECAR_SUFFIX))


def _with_suffix(path: str, suffix: str) -> str:
    """Return `str(PurePosixPath(path).with_suffix(suffix))` for a relative file path."""
    size = len(VIDEO_SUFFIX)
    if path.endswith(VIDEO_SUFFIX) and len(path) > size and path[-size - 1] != "/":
        return path[:-size] + suffix  # a video's name (every output's), the common case
    head, slash, name = path.rpartition("/")
    dot = name.rfind(".")
    stem = name[:dot] if 0 < dot < len(name) - 1 else name
    return head + slash + stem + suffix


def fold(path: str) -> str:
    """Return a path as caseless, normalisation-blind file systems see it."""
    if path.isascii():
        return path.lower()  # what NFD(casefold(NFD(...))) gives for ASCII, 10 times faster
    return unicodedata.normalize("NFD", unicodedata.normalize("NFD", path).casefold())


_RUNNER_FOLDED = frozenset(fold(name) for name in RUNNER_FILES)
_PART = re.compile(r".+\.[0-9a-f]{8}" + re.escape(PART_SUFFIX))


def display_path(path: Path) -> str:
    """Show a path relative to the working folder when it lies below it (as typed)."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.as_posix()
