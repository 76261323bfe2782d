"""What the gallery shows: one `GalleryItem` per request, read from an output folder.

Items come from the manifest (`runner.manifest.read_state`), and only the latest request
per output path is shown. Each item carries what its cell needs: the video and its poster
(`runner.poster`), the sidecar beside it, a thumbnail of its input image, its matrix
values (with `model` added as an axis when the requests of one job use several models),
and, for requests without a video, the status and the reason in words.

Every path an item holds is a POSIX path relative to the gallery's folder; the page turns
them into percent-encoded links (`runner.gallery`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

from runner.catalog import get_model
from runner.manifest import RequestState, read_state
from runner.poster import ensure_input_thumb, ensure_poster, input_thumb_path, poster_path
from runner.repro_names import split_repro
from runner.request import IMAGE_REF_PREFIX
from runner.sidecar import sidecar_path

MODEL_AXIS = "model"

# original file name -> [(N, reproduction file name)] in one folder
_ReproIndex = dict[str, list[tuple[int, str]]]


@dataclass(frozen=True, slots=True)
class GalleryItem:
    """One request as the gallery shows it."""

    id: str
    job: str
    status: str  # done | failed | unknown | pending | missing
    matrix: Mapping[str, Any]  # its axis values (`model` included when it varies in a job)
    prompt: str
    seed: int | None
    video: str | None = None  # POSIX path relative to the gallery's folder
    poster: str | None = None  # POSIX path relative to the gallery's folder
    reason: str | None = None  # why there is no video (failed, unknown, pending, missing)
    model: str = ""
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    reproductions: tuple[str, ...] = ()  # relative paths of reproduced videos
    output: str | None = None  # where the video goes, relative to the folder
    sha256: str | None = None  # of the video, as recorded when it was downloaded
    sidecar: str | None = None  # relative path of the JSON sidecar, when it is there
    image: str | None = None  # relative path of the input image's thumbnail
    image_source: str | None = None  # the input image as the run named it (for its title)
    badge: str | None = None  # "new" or "changed" since the previous gallery (gallery_history)


@dataclass
class _Lookups:
    """Directory scans and thumbnails shared by the items of one build."""

    repros: dict[Path, _ReproIndex]
    thumbs: dict[str, str | None]  # image sha256 hex -> thumbnail path (None: none at hand)


def items_for(folder: Path) -> list[GalleryItem]:
    """Return one gallery item per shown request in `folder`'s manifest, posters made."""
    lookups = _Lookups({}, {})
    items = [_item_from_state(folder, s, lookups) for s in _latest_per_output(read_state(folder))]
    return expose_model_axis(items)


def expose_model_axis(items: Sequence[GalleryItem]) -> list[GalleryItem]:
    """Add `model` to the matrix of every item of a job whose requests use several models.

    A spec sets the model per job, so a job with several models is a comparison across
    models: the gallery then lays out and filters by model like by any matrix axis.
    """
    models: dict[str, set[str]] = {}
    for item in items:
        models.setdefault(item.job, set()).add(item.model)
    return [
        replace(item, matrix={MODEL_AXIS: item.model, **item.matrix})
        if len(models[item.job]) > 1 and MODEL_AXIS not in item.matrix
        else item
        for item in items
    ]


def _latest_per_output(states: Mapping[str, RequestState]) -> list[RequestState]:
    """Keep, of the requests recorded at one output path, the most recently active one.

    After a prompt edit the new request writes where the old (now orphaned) one did;
    the gallery shows what is at that path now, not both, until `runner prune`.
    """
    latest: dict[str, RequestState] = {}
    for state in states.values():
        if state.output is None:
            continue
        held = latest.get(state.output)
        if held is None or _activity(state) > _activity(held):
            latest[state.output] = state
    return [s for s in states.values() if s.output is None or latest[s.output] is s]


def _activity(state: RequestState) -> str:
    """Return the last recorded timestamp of a request (ISO-8601 sorts as text)."""
    return max(state.downloaded_at or "", state.completed_at or "", state.submitted_at or "")


def _item_from_state(folder: Path, state: RequestState, lookups: _Lookups) -> GalleryItem:
    """Return the gallery item of one request: its video and poster if the file is there."""
    facts = state.video or {}
    prompt = state.body.get("prompt", "")
    image_ref = _first_frame_ref(state)
    item = GalleryItem(
        id=state.id,
        job=state.job or "default",
        status=state.status,
        matrix=state.matrix,
        prompt=prompt if isinstance(prompt, str) else json.dumps(prompt, ensure_ascii=False),
        seed=state.seed,
        reason=_reason(state),
        model=state.model or "",
        width=_int_or_none(facts.get("width")),
        height=_int_or_none(facts.get("height")),
        duration=_float_or_none(facts.get("duration")),
        output=state.output,
        sha256=state.sha256 if state.status == "done" else None,
        image=_thumbnail(folder, state, image_ref, lookups) if image_ref else None,
        image_source=state.images.get(image_ref) if image_ref else None,
    )
    if state.status != "done" or state.output is None:
        return item
    video = folder / state.output
    if not video.is_file():
        return replace(
            item,
            status="missing",
            sha256=None,
            reason=f"{state.output} is gone — `runner run` fetches it again",
        )
    poster = poster_path(folder, state.id)
    sidecar = sidecar_path(video)
    return replace(
        item,
        video=state.output,
        poster=poster.relative_to(folder).as_posix() if ensure_poster(video, poster) else None,
        sidecar=sidecar.relative_to(folder).as_posix() if sidecar.is_file() else None,
        reproductions=_reproductions(folder, state.output, lookups.repros),
    )


def _reason(state: RequestState) -> str | None:
    """Return, in words, why a request has no video yet (None when it has one)."""
    if state.status == "failed":
        stage = f" ({state.stage})" if state.stage else ""
        return f"{state.reason or 'failed'}{stage}"
    if state.status == "unknown":
        return (
            f"{state.reason or 'the submission has an unknown outcome'} — check the "
            "provider's dashboard, then `runner run --resubmit-unknown` to make it again"
        )
    if state.status == "pending":
        if state.completed_at is not None:
            return "generated, not downloaded yet — the next `runner run` downloads it"
        return "submitted, still generating — the next `runner run` polls it (never resubmits)"
    return state.reason


def _first_frame_ref(state: RequestState) -> str | None:
    """Return the `sha256:…` reference of the request's first-frame image, if it is local."""
    model = get_model(state.model or "")
    route = None
    if model is not None:
        route = model.route_at(state.endpoint) or model.default_route
    first = route.images.first if route is not None else "image_url"
    if first is None:
        return None  # text-to-video: no input image to show
    found = dict(route.image_values(state.body)) if route is not None else {}
    value = next((v for at, v in found.items() if ".".join(map(str, at)) == first), None)
    if value is None and route is None:
        value = state.body.get("image_url")
    if isinstance(value, str) and value.startswith(IMAGE_REF_PREFIX):
        return value
    return None


def _thumbnail(folder: Path, state: RequestState, ref: str, lookups: _Lookups) -> str | None:
    """Return the relative path of the thumbnail of image `ref`, making it when it can."""
    digest = ref[len(IMAGE_REF_PREFIX) :]
    if digest not in lookups.thumbs:
        thumb = input_thumb_path(folder, digest)
        # The manifest names the image relative to the folder the run was started in,
        # which is where the end-of-run gallery is built: the thumbnail is made then.
        source = state.images.get(ref)
        made = ensure_input_thumb(Path(source), digest, thumb) if source else thumb.exists()
        lookups.thumbs[digest] = thumb.relative_to(folder).as_posix() if made else None
    return lookups.thumbs[digest]


def _reproductions(
    folder: Path, output: str, listings: dict[Path, _ReproIndex]
) -> tuple[str, ...]:
    """Return the `<stem>.repro-N<suffix>` videos beside `output`, in N order."""
    video = folder / output
    if video.parent not in listings:
        listings[video.parent] = _repros_in(video.parent)
    names = sorted(listings[video.parent].get(video.name, ()))
    return tuple((PurePosixPath(output).parent / name).as_posix() for _, name in names)


def _repros_in(directory: Path) -> _ReproIndex:
    """Index the reproductions in `directory` by their original's file name (one scan)."""
    found: _ReproIndex = {}
    try:
        names = os.listdir(directory)
    except OSError:
        return found
    for name in names:
        parts = split_repro(name)
        if parts is not None:
            found.setdefault(parts[0], []).append((parts[1], name))
    return found


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) else None


def _float_or_none(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None
