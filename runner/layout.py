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
    <spec file>.lock                 beside the spec, committed to git (runner.lockfile)

The local tree and the object store (runner.store) share these rules: the store keys
videos by content, and everything it gives back lands at the paths named here.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

DEFAULT_ROOT = Path("outputs")
SANDBOX_DIR = "_sandbox"  # spec names start with a letter or digit, so this never clashes
MANIFEST = "manifest.jsonl"
RUN_LOCK = ".lock"
OWNER = ".spec"
GALLERY = "index.html"
GALLERY_STATE = ".gallery.json"  # what the previous gallery showed (new/changed badges)
POSTERS = ".posters"
REPRODUCTIONS = ".reproductions"
PART_SUFFIX = ".part"
SIDECAR_SUFFIX = ".json"
LOCKFILE_SUFFIX = ".lock"
REPRO_INFIX = ".repro-"
# Names at the top of a spec's folder that belong to the runner, not to any video.
RUNNER_FILES = frozenset(
    {MANIFEST, RUN_LOCK, OWNER, GALLERY, GALLERY_STATE, POSTERS, REPRODUCTIONS}
)


def spec_folder(root: Path, name: str, *, sandbox: bool) -> Path:
    """Return the folder of spec `name`: sandbox results always under `<root>/_sandbox/`.

    Whatever `--output-dir` says, emulator videos never land beside (or over) paid ones.
    """
    return root / SANDBOX_DIR / name if sandbox else root / name


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


def poster_of(folder: Path, request_id: str) -> Path:
    """Return the poster of request `request_id` in a spec's folder."""
    return folder / POSTERS / f"{request_id}.jpg"


def manifest_of(folder: Path) -> Path:
    """Return the manifest of a spec's folder."""
    return folder / MANIFEST


def files_of(output: str) -> tuple[str, ...]:
    """Return every file path (POSIX, relative to the spec's folder) one request writes."""
    video = PurePosixPath(output)
    return (output, str(video.with_suffix(SIDECAR_SUFFIX)))


def is_reproduction_name(name: str) -> bool:
    """Return whether a file name has the shape of a reproduction (`x.repro-3.mp4`)."""
    head, infix, tail = name.rpartition(REPRO_INFIX)
    digits = tail.partition(".")[0]
    return bool(infix and head and digits.isdigit())
