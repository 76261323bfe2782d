"""`runner reproduce`: submit a recorded request again and keep the result beside it.

The record is the video's sidecar (or, for an id, the manifest): the exact body that was
POSTed with its images as `sha256:` references, and the `images` map naming the file
each reference was read from. The images are read again and their hashes checked, so a
reproduction really sends the same bytes; a changed image is an error, not a new video.

The request goes through the engine unchanged (`runner.engine.execute`): the same
submit → poll → download path, the same crash safety. Its manifest is a separate one in
`outputs/<name>/.reproductions/`, keyed `<id>.repro-<N>`, so the spec's own manifest
(and `plan`, `prune`, the gallery) never mistake a reproduction for the original, and a
reproduction interrupted after its POST is resumed by running the same command again
instead of being paid for twice. The video lands at `<stem>.repro-<N><suffix>` beside
the original; the new sidecar names its original in `reproduction_of`, and the
original's sidecar lists it under `reproductions`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import io
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

from PIL import Image, UnidentifiedImageError

from runner.clock import Clock
from runner.engine import RunOptions, execute
from runner.errors import ApiError, StorageError, UsageError
from runner.images import MIME_BY_FORMAT
from runner.layout import SANDBOX_DIR
from runner.manifest import MANIFEST_NAME, RequestState, read_state, sha256_file
from runner.progress import Reporter
from runner.providers import get_provider
from runner.repro_names import REPRO_DIR, repro_number, repro_output
from runner.request import IMAGE_REF_PREFIX, LocalImage, Request
from runner.sidecar import read_sidecar, sidecar_for, sidecar_path, write_sidecar

MIN_ID_PREFIX = 6  # like git: a short, unique prefix of an id is enough
_DATA_URI = re.compile(r"data:image/[\w.+-]+;base64,([A-Za-z0-9+/=\s]+)")


@dataclass(frozen=True, slots=True)
class Original:
    """The recorded request a reproduction repeats."""

    folder: Path  # outputs/<spec name>/
    record: Mapping[str, Any]  # sidecar-shaped: id, payload, images, provider, output, …

    @property
    def id(self) -> str:
        return str(self.record["id"])

    @property
    def output(self) -> str:
        return str(self.record["output"])


@dataclass(frozen=True, slots=True)
class Reproduction:
    """A finished reproduction."""

    original: Path  # the original video
    video: Path  # the new video beside it
    sidecar: Path
    identical: bool  # same bytes as the original (the sandbox is deterministic)
    resumed: bool  # collected a generation an interrupted reproduce had submitted
    seeded: bool = True  # the model took the recorded seed (without one, another take)


@dataclass(frozen=True, slots=True)
class _Spec:
    """The engine's view of the one-request "spec" a reproduction runs as."""

    name: str
    display: str
    requests: Sequence[Request]
    images: Mapping[str, LocalImage]
    budget: float | None = None  # a reproduction pays for one known request


def run_reproduce(
    target: str,
    *,
    output_dir: Path = Path("outputs"),
    sandbox: bool = False,
    provider: str | None = None,
    base_url: str | None = None,
    resubmit_unknown: bool = False,
    reporter: Reporter | None = None,
    environ: Mapping[str, str] | None = None,
) -> Reproduction:
    """Reproduce `target` (`runner reproduce`), starting the embedded sandbox if needed."""
    if sandbox and provider is not None:
        msg = "--sandbox and --provider both choose the provider — give one of them"
        raise UsageError(msg)
    original = find_original(target, output_dir)
    chosen = "sandbox" if sandbox else provider
    effective = get_provider(chosen or str(original.record["provider"]))
    kwargs: dict[str, Any] = {
        "provider": chosen, "base_url": base_url, "resubmit_unknown": resubmit_unknown,
        "reporter": reporter, "environ": environ,
    }
    if base_url is not None or effective.base_url is not None:
        return asyncio.run(reproduce(original, **kwargs))
    from runner.sandbox import IN_PROCESS, start_in_thread

    # The same fast emulator `runner run --sandbox` starts.
    with start_in_thread(IN_PROCESS) as running:
        return asyncio.run(reproduce(original, sandbox_url=running.base_url, **kwargs))


def find_original(target: str, output_dir: Path) -> Original:
    """Return the record of `target`: a video (or sidecar) path, or a request id."""
    path = Path(target)
    if path.is_file():
        return _original_from_file(path)
    if path.suffix in (".mp4", ".json", ".mov", ".webm") or "/" in target:
        msg = f"{target}: no such file — give a video from outputs/, its sidecar, or a request id"
        raise UsageError(msg)
    return _original_from_id(target, output_dir)


async def reproduce(
    original: Original,
    *,
    provider: str | None = None,
    base_url: str | None = None,
    sandbox_url: str | None = None,
    resubmit_unknown: bool = False,
    clock: Clock | None = None,
    reporter: Reporter | None = None,
    environ: Mapping[str, str] | None = None,
) -> Reproduction:
    """Submit `original`'s recorded request again and write the result beside it."""
    record = original.record
    images = load_images(record)
    repro_folder = original.folder / REPRO_DIR
    number, resumed = _next_number(original, read_state(repro_folder), resubmit_unknown)
    output = repro_output(original.output, number)
    request = Request(
        id=f"{original.id}.repro-{number}",
        spec=str(record.get("spec") or ""),
        spec_name=f"{original.folder.name}/{REPRO_DIR}",
        job=str(record.get("job") or "default"),
        provider=provider or str(record["provider"]),
        model=str(record["model"]),
        endpoint=str(record["endpoint"]),
        body=dict(record["payload"]),
        # Relative to the reproductions' manifest folder: the engine downloads the video
        # straight to its place beside the original, durably, as for any run.
        output=f"../{output}",
        matrix=dict(record.get("matrix") or {}),
        seed_derived=bool(record.get("seed_derived", False)),
    )
    spec = _Spec(
        name=f"{original.folder.name}/{REPRO_DIR}",
        display=f"reproduce {original.output}",
        requests=(request,),
        images=images,
    )
    options = RunOptions(output_dir=original.folder.parent, base_url=base_url, concurrency=1)
    summary = await execute(
        [(spec, [request])], options, clock=clock, reporter=reporter, environ=environ,
        sandbox_url=sandbox_url, folders={spec.name: repro_folder},
    )
    (result,) = summary.reports
    if result.outcome not in ("done", "already_done"):
        raise _not_reproduced(original, result.outcome, result.reason)
    return _link(original, read_state(repro_folder)[request.id], output, resumed)


def load_images(record: Mapping[str, Any]) -> dict[str, LocalImage]:
    """Read every image the recorded body references and check it is byte-identical."""
    recorded: Mapping[str, str] = record.get("images") or {}
    images: dict[str, LocalImage] = {}
    for key, value in record["payload"].items():
        if not (isinstance(value, str) and value.startswith(IMAGE_REF_PREFIX)):
            continue
        digest = value[len(IMAGE_REF_PREFIX) :]
        where = recorded.get(value)
        if where is None:
            msg = (
                f"the record names no file for {key} ({value[:19]}…) — it was made by an "
                f"older runner; run the spec again instead"
            )
            raise UsageError(msg)
        images[digest] = _image_with_hash(Path(where), digest, key)
    return images


def _image_with_hash(path: Path, digest: str, key: str) -> LocalImage:
    """Return the image at `path` (or a data: URI inside that spec) whose sha256 is `digest`."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        msg = (
            f"{path}: the {key} image this video was made from is missing — restore it "
            f"(e.g. `git checkout <commit> -- {path}`) and run reproduce again"
        )
        raise UsageError(msg) from None
    except OSError as exc:
        msg = f"{path}: cannot read the {key} image ({exc.strerror}) — check its permissions"
        raise UsageError(msg) from None
    actual = hashlib.sha256(data).hexdigest()
    if actual == digest:
        return _local_image(data, path, digest, literal=False)
    embedded = _embedded_image(data, digest)  # a spec that wrote the image as a data: URI
    if embedded is not None:
        return _local_image(embedded, path, digest, literal=True)
    msg = (
        f"{path}: the {key} image changed since this video was made (sha256 {actual[:12]}…, "
        f"recorded {digest[:12]}…) — restore the original (`git log -- {path}`) to reproduce "
        f"exactly, or run the spec to make a new video"
    )
    raise UsageError(msg)


def _embedded_image(text: bytes, digest: str) -> bytes | None:
    """Return the bytes of a base64 data: URI in `text` whose sha256 is `digest`."""
    for match in _DATA_URI.finditer(text.decode("utf-8", "replace")):
        try:
            data = base64.b64decode(re.sub(r"\s", "", match[1]), validate=True)
        except (binascii.Error, ValueError):
            continue
        if hashlib.sha256(data).hexdigest() == digest:
            return data
    return None


def _local_image(data: bytes, path: Path, digest: str, *, literal: bool) -> LocalImage:
    """Return a `LocalImage` for already hash-checked image bytes."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            mime = MIME_BY_FORMAT.get(img.format or "")
            width, height = img.size
    except (UnidentifiedImageError, OSError) as exc:
        msg = f"{path}: the recorded image cannot be read as an image ({exc})"
        raise UsageError(msg) from None
    if mime is None:
        msg = f"{path}: the recorded image is not PNG, JPEG or WebP"
        raise UsageError(msg)
    return LocalImage(digest, path, mime, width, height, len(data), data if literal else None)


def _original_from_file(path: Path) -> Original:
    """Return the record of the video (or sidecar) at `path`."""
    try:
        record = read_sidecar(path)
    except StorageError as exc:  # no sidecar, or not JSON: the user named the wrong file
        raise UsageError(str(exc)) from None
    where = path if path.suffix == ".json" else sidecar_path(path)
    for needed in ("id", "payload", "provider", "model", "endpoint", "output"):
        if not record.get(needed):
            msg = f"{where}: the sidecar has no {needed!r} — it cannot be reproduced"
            raise UsageError(msg)
    output = PurePosixPath(str(record["output"]))
    # The sidecar's `output` is relative to outputs/<name>/: climb that many folders.
    folder = where.resolve().parents[len(output.parts) - 1]
    if record.get("reproduction_of"):
        # Reproducing a reproduction repeats the same request: name it after the original.
        record = {**record, "output": record["reproduction_of"]}
    return Original(folder=folder, record=record)


def _original_from_id(text: str, output_dir: Path) -> Original:
    """Find request `text` (an id or a unique prefix of one) in the manifests under outputs."""
    if len(text) < MIN_ID_PREFIX or not re.fullmatch(r"[0-9a-f]+", text):
        msg = (
            f"{text!r} is neither a file nor a request id — give a video path from "
            f"{output_dir}/ or at least {MIN_ID_PREFIX} hex characters of an id "
            f"(`runner status --json` lists them)"
        )
        raise UsageError(msg)
    found: list[tuple[Path, RequestState]] = []
    # Sandbox runs keep their own tree under outputs/_sandbox/ (see layout.spec_folder).
    manifests = [
        *output_dir.glob(f"*/{MANIFEST_NAME}"),
        *(output_dir / SANDBOX_DIR).glob(f"*/{MANIFEST_NAME}"),
    ]
    for manifest in sorted(manifests):
        for rid, state in read_state(manifest.parent).items():
            if rid.startswith(text):
                found.append((manifest.parent, state))
    if not found:
        msg = f"no request with id {text!r} in {output_dir}/*/{MANIFEST_NAME} — check the id"
        raise UsageError(msg)
    if len(found) > 1:
        names = ", ".join(state.id for _, state in found[:5])
        msg = f"id prefix {text!r} is ambiguous ({names}) — give more characters"
        raise UsageError(msg)
    folder, state = found[0]
    if state.output is None or not state.body:
        msg = f"request {state.id} has no recorded body — it cannot be reproduced"
        raise UsageError(msg)
    return Original(folder=folder, record=sidecar_for(state))


def _next_number(
    original: Original, repro_states: Mapping[str, RequestState], resubmit_unknown: bool
) -> tuple[int, bool]:
    """Return the reproduction number to use and whether it resumes an earlier attempt."""
    prefix = f"{original.id}.repro-"
    used = [0]
    for rid, state in repro_states.items():
        if not rid.startswith(prefix) or not rid[len(prefix) :].isdigit():
            continue
        number = int(rid[len(prefix) :])
        done_unlinked = state.status == "done" and not _linked(original.folder / REPRO_DIR, state)
        if state.status == "pending" or done_unlinked:
            # Submitted (or even downloaded) before an interruption: finish it, never repay.
            return number, True
        if state.status == "unknown" and not resubmit_unknown:
            msg = (
                f"an earlier reproduce of {original.output} stopped after sending its request "
                f"({state.reason}); it may have been accepted and billed — check the "
                f"provider's dashboard, then pass --resubmit-unknown to submit again"
            )
            raise UsageError(msg)
        used.append(number)
    video = original.folder / original.output
    try:
        names = os.listdir(video.parent)
    except FileNotFoundError:
        names = []
    used += [n for name in names if (n := repro_number(video.name, name)) is not None]
    return max(used) + 1, False


def _linked(repro_folder: Path, state: RequestState) -> bool:
    """Return whether a finished reproduction's sidecar already names its original."""
    if state.output is None:
        return False
    try:
        return bool(read_sidecar(repro_folder / state.output).get("reproduction_of"))
    except StorageError:
        return False


def _link(original: Original, state: RequestState, output: str, resumed: bool) -> Reproduction:
    """Write the reproduction's sidecar (`reproduction_of`) and list it in the original's."""
    folder = original.folder
    video = folder / output
    record = sidecar_for(replace(state, output=output), reproduction_of=original.output)
    record["id"] = original.id  # the same request: same identity as the original
    record["spec_name"] = folder.name
    sidecar = write_sidecar(video, record)
    original_video = folder / original.output
    original_sidecar = sidecar_path(original_video)
    if original_sidecar.exists():
        data = json.loads(original_sidecar.read_text(encoding="utf-8"))
        listed = [p for p in data.get("reproductions") or [] if p != output]
        data["reproductions"] = [*listed, output]
        write_sidecar(original_video, data)
    identical = original_video.is_file() and sha256_file(original_video) == state.sha256
    seeded = "seed" in (original.record.get("payload") or {})
    return Reproduction(original_video, video, sidecar, identical, resumed, seeded)


def _not_reproduced(original: Original, outcome: str, reason: str | None) -> ApiError:
    """Return the error for a reproduction that did not end with a video."""
    if outcome == "timed_out":
        msg = (
            f"the reproduction of {original.output} is still generating ({reason}) — run "
            f"the same reproduce command again to collect it (it will not be resubmitted)"
        )
    else:
        msg = f"the reproduction of {original.output} did not produce a video: {reason}"
    return ApiError(msg)
