"""Saved plans: `runner plan --out plan.json`, reviewed, then `runner run --plan plan.json`.

Terraform's habit for paid work: a plan you can read in review, then exactly that plan
applied. The file holds the decision for every request (the `plan --json` rows), what the
plan was made with (spec paths, flags, output root, store, base URL, sandbox) and a
fingerprint of its inputs: the sha256 of each spec file, of its images, of its lock file
and of its manifest. Applying it checks the fingerprint, then decides again (read only,
with the same decision table) and compares request by request; any difference refuses
the run with exit 2 (`StalePlan`) before anything is written or sent.

    {"format": "runner-plan", "format_version": 1, "runner": "0.2.0", "created_at": …,
     "made_with": {"paths": [...], "sandbox": false, "output_dir": "outputs", …},
     "inputs": [{"spec", "sha256", "images": {path: sha256}, "lock", "manifest"}],
     <the plan --json summary>, "requests": [<plan --json rows>]}
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runner import __version__
from runner.decide import Flags
from runner.durable import NotRegular, read_regular, write_atomic
from runner.errors import StalePlan, UsageError
from runner.layout import MANIFEST, display_path, lockfile_of, spec_folder
from runner.planning import Plan
from runner.spec import LoadedSpec

FORMAT = "runner-plan"
FORMAT_VERSION = 1
MAX_PLAN_BYTES = 1 << 31  # a million requests is about 600 MB of rows
AGAIN = "make the plan again (runner plan --out) and review it"


@dataclass(frozen=True, slots=True)
class MadeWith:
    """What a plan was made with; `run --plan` runs with exactly these."""

    paths: tuple[str, ...]
    sandbox: bool = False
    output_dir: str = "outputs"
    # The store URL in effect (flag, environment or runner.toml). The file keeps only its
    # sha256: the URL may be a CI secret, and a plan is an artifact people read.
    store: str | None = None
    base_url: str | None = None
    only: tuple[str, ...] = ()
    force: bool = False
    retry_failed: bool = False
    resubmit_unknown: bool = False
    regenerate_lost: bool = False

    @property
    def flags(self) -> Flags:
        """The decision flags of `runner.decide`."""
        return Flags(self.force, self.retry_failed, self.resubmit_unknown, self.regenerate_lost)

    def to_json(self) -> dict[str, Any]:
        """Return what the plan file says (the store by its digest only)."""
        return {**asdict(self), "store": store_digest(self.store)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MadeWith:
        """Read the `made_with` object of a plan file (ValueError when malformed); the
        store stays None: the run names it again and `check_store` compares."""
        fields = cls.__dataclass_fields__
        unknown = set(data) - set(fields)
        if unknown or not isinstance(data.get("paths"), list):
            msg = f"made_with holds {sorted(unknown) or 'no paths'}"
            raise ValueError(msg)
        values = dict(data)
        values["paths"] = tuple(str(p) for p in data["paths"])
        values["only"] = tuple(str(o) for o in data.get("only") or ())
        values["store"] = None
        return cls(**values)


def store_digest(url: str | None) -> str | None:
    """Name a store URL without writing it down."""
    return None if url is None else "sha256:" + hashlib.sha256(url.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class SavedPlan:
    """A plan file, read back."""

    path: Path
    runner: str
    made_with: MadeWith
    store: str | None  # the digest of the store URL the plan read (`store_digest`)
    inputs: tuple[Mapping[str, Any], ...]
    decisions: tuple[tuple[str, str, str], ...]  # (id, action, output or id) in plan order
    submissions: int
    estimated_usd: float


def fingerprint(specs: Sequence[LoadedSpec], output_root: Path) -> list[dict[str, Any]]:
    """Return what a plan of `specs` depends on: each spec's, image's, lock's and
    manifest's sha256 (None where there is no such file)."""
    inputs = []
    for spec in specs:
        folder = spec_folder(output_root, spec.name, sandbox=spec.sandbox)
        inputs.append({
            "spec": spec.display,
            "sha256": _sha256(spec.path),
            "images": {
                display_path(image.path): sha for sha, image in sorted(spec.images.items())
            },
            "lock": None if spec.sandbox else _sha256(lockfile_of(spec.path)),
            "manifest": _sha256(folder / MANIFEST),
        })
    return inputs


def write_plan(
    path: Path, plan: Plan, made_with: MadeWith, specs: Sequence[LoadedSpec], output_root: Path
) -> None:
    """Write `plan` to `path` (atomically: a reviewer never sees half a plan)."""
    head = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "runner": __version__,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "made_with": made_with.to_json(),
        "inputs": fingerprint(specs, output_root),
    }
    pieces = list(plan.iter_json())
    pieces[0] = json.dumps(head, indent=2, ensure_ascii=False)[:-2] + ",\n" + pieces[0][2:]
    try:
        write_atomic(path, "".join(pieces).encode("utf-8"))
    except OSError as exc:
        msg = f"cannot write the plan to {path} ({exc.strerror}) — check the path"
        raise UsageError(msg) from None


def read_plan(path: Path) -> SavedPlan:
    """Read a plan file; raise `UsageError` (exit 2) when it is missing or not a plan."""
    try:
        data = json.loads(read_regular(path, MAX_PLAN_BYTES))
    except FileNotFoundError:
        msg = f"no such plan file: {path} — make one with: runner plan --out {path} SPECS"
        raise UsageError(msg) from None
    except (OSError, NotRegular) as exc:
        msg = f"cannot read the plan {path} ({exc}) — check the path"
        raise UsageError(msg) from None
    except ValueError:
        msg = f"{path} is not JSON — a plan file is what `runner plan --out` writes"
        raise UsageError(msg) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        msg = f"{path} is not a runner plan (no \"format\": \"{FORMAT}\") — {AGAIN}"
        raise UsageError(msg)
    if data.get("format_version") != FORMAT_VERSION:
        msg = (f"{path} is a plan of format_version {data.get('format_version')!r}; this "
               f"runner reads {FORMAT_VERSION} — {AGAIN}")
        raise UsageError(msg)
    try:
        made_with = MadeWith.from_json(data["made_with"])
        decisions = tuple(
            (str(r["id"]), str(r["action"]), str(r.get("output") or r["id"]))
            for r in data["requests"]
        )
        inputs = tuple(dict(i) for i in data["inputs"])
        store = data["made_with"].get("store")
        return SavedPlan(
            path, str(data["runner"]), made_with, None if store is None else str(store),
            inputs, decisions,
            int(data["submissions"]), float(data["estimated_usd"] or 0.0),
        )
    except (KeyError, TypeError, ValueError) as exc:
        msg = f"{path} is a damaged plan ({type(exc).__name__}: {exc}) — {AGAIN}"
        raise UsageError(msg) from None


def check_store(saved: SavedPlan, url: str | None) -> None:
    """Refuse when the store in effect now is not the one the plan was made with."""
    if store_digest(url) != saved.store:
        then = "a store" if saved.store else "no store"
        now = "another store" if url and saved.store else ("a store" if url else "none")
        raise StalePlan(f"{saved.path} was made with {then}, this run has {now} (--store, "
                        f"RUNNER_STORE or runner.toml) — {AGAIN}")


def check_spec_files(saved: SavedPlan) -> None:
    """Refuse when this runner, or any spec file the plan read, is not what it was."""
    if saved.runner != __version__:
        msg = f"{saved.path} was made by runner {saved.runner}; this is {__version__} — {AGAIN}"
        raise StalePlan(msg)
    for item in saved.inputs:
        spec = str(item.get("spec"))
        if _sha256(Path(spec)) != item.get("sha256"):
            raise StalePlan(f"{spec} changed since {saved.path} was made — {AGAIN}")


def check_inputs(saved: SavedPlan, specs: Sequence[LoadedSpec], output_root: Path) -> None:
    """Refuse when the specs found, their images, lock files or manifests changed."""
    now = {item["spec"]: item for item in fingerprint(specs, output_root)}
    then = {str(item.get("spec")): item for item in saved.inputs}
    for spec in sorted(set(now) ^ set(then)):
        how = "is new" if spec in now else "is gone"
        raise StalePlan(f"{spec} {how} since {saved.path} was made — {AGAIN}")
    for spec, item in now.items():
        old = then[spec]
        images, old_images = item["images"], dict(old.get("images") or {})
        for image in sorted(set(images) | set(old_images)):
            if images.get(image) != old_images.get(image):
                raise StalePlan(
                    f"image {image} of {spec} changed since {saved.path} was made — {AGAIN}"
                )
        for key, what in (("lock", "lock file"), ("manifest", "manifest")):
            if item[key] != old.get(key):
                raise StalePlan(
                    f"the {what} of {spec} changed since {saved.path} was made (another run, "
                    f"a pull or a merge) — {AGAIN}"
                )


def check_decisions(saved: SavedPlan, plan: Plan) -> None:
    """Refuse when deciding again gives anything but the saved decisions."""
    now = [(e.id, e.action, e.output or e.id) for e in plan.entries]
    if now == list(saved.decisions):
        return
    then = {rid: (action, where) for rid, action, where in saved.decisions}
    for rid, action, where in now:
        before = then.pop(rid, None)
        if before is None:
            raise StalePlan(f"{where} is not in {saved.path} — {AGAIN}")
        if before[0] != action:
            raise StalePlan(
                f"{where}: the plan says {before[0]}, a run would now {action} "
                f"(files or the store changed) — {AGAIN}"
            )
    missing = next(iter(then.values()), ("", "a request"))[1]
    raise StalePlan(f"{missing} of {saved.path} is no longer planned — {AGAIN}")


def _sha256(path: Path) -> str | None:
    """Return the sha256 of the file at `path`, or None when there is none."""
    digest = hashlib.sha256()
    if not path.is_file():
        return None  # absent (or a FIFO, which opening would block on)
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        msg = f"cannot read {path} ({exc.strerror}) — check its permissions"
        raise UsageError(msg) from None
    return digest.hexdigest()
