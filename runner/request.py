"""The unit of work: one fully expanded request, and the local images it refers to.

A `Request` is pure data produced by expanding a spec (no network, no manifest). Its
`body` is the exact JSON object that will be POSTed, except that local images appear
as `sha256:<hex>` references; `materialize()` swaps in the `data:` URIs at submit time,
so a 100,000-request plan never holds 100,000 copies of an image in memory.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

IMAGE_REF_PREFIX = "sha256:"


@dataclass(frozen=True, slots=True)
class LocalImage:
    """An image file referenced by a spec, identified by its content hash."""

    sha256: str
    path: Path
    mime: str  # e.g. "image/png"
    width: int
    height: int
    size: int  # bytes
    # The bytes of an image written in the spec as a literal data: URI (then `path` is
    # the spec file); None for image files, which are read when needed.
    data: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def ref(self) -> str:
        return IMAGE_REF_PREFIX + self.sha256

    def data_uri(self) -> str:
        """Read the file (or use the literal bytes) and return a base64 `data:` URI."""
        raw = self.data if self.data is not None else self.path.read_bytes()
        encoded = base64.b64encode(raw).decode("ascii")
        return f"data:{self.mime};base64,{encoded}"


# Not frozen, though never changed once built: a plan builds one per request (100,000
# and more), and a frozen dataclass sets each field through object.__setattr__, which
# doubles the cost of building it (2.6 µs more per object here, benchmarks/plan_parts.py).
@dataclass(slots=True)
class Request:
    """One generation request, with its stable content-derived identity (read-only by
    convention: its id is a hash of the other fields)."""

    id: str  # content hash: provider, model, endpoint, body (images by hash)
    spec: str  # the spec file as the user named it
    spec_name: str  # names the output folder outputs/<spec_name>/
    job: str  # job name ("default" for a spec without `jobs:`)
    provider: str  # aimlapi | apilaplas | sandbox
    model: str
    endpoint: str  # POST path, e.g. /v2/generate/video/runway/generation
    body: Mapping[str, Any]  # exact POST body, local images as sha256: references
    output: str  # POSIX path of the video, relative to outputs/<spec_name>/
    matrix: Mapping[str, Any]  # this request's matrix combination (axis -> value)
    seed_derived: bool  # True when the spec gave no seed and the runner derived it

    @property
    def seed(self) -> int | None:
        """The body's seed; None for a model that takes none."""
        value = self.body.get("seed")
        return int(value) if value is not None else None


def materialize(body: Mapping[str, Any], images: Mapping[str, LocalImage]) -> dict[str, Any]:
    """Return the body to POST: every sha256: reference replaced by its data: URI.

    References may sit at the top level (`image_url`) or inside (`keyframes.frame0.url`,
    `image_urls[2]`): every string that is a reference to a known image is replaced.
    """
    out: dict[str, Any] = _swap(body, images)
    return out


def image_refs(body: Mapping[str, Any]) -> Iterator[str]:
    """Yield every `sha256:` reference a body holds, at any depth."""
    for value in body.values():
        yield from _refs(value)


def _refs(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        if value.startswith(IMAGE_REF_PREFIX):
            yield value
    elif isinstance(value, list):
        for item in value:
            yield from _refs(item)
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _refs(item)


def _swap(value: Any, images: Mapping[str, LocalImage]) -> Any:
    if isinstance(value, str):
        if value.startswith(IMAGE_REF_PREFIX):
            image = images.get(value[len(IMAGE_REF_PREFIX) :])
            return image.data_uri() if image is not None else value
        return value
    if isinstance(value, list):
        return [_swap(item, images) for item in value]
    if isinstance(value, Mapping):
        return {key: _swap(item, images) for key, item in value.items()}
    return value


def replaced(value: Any, path: tuple[str | int, ...], new: Any) -> Any:
    """Return a copy of `value` with the item at `path` replaced by `new`."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, list) and isinstance(head, int):
        copy = list(value)
        copy[head] = replaced(copy[head], rest, new)
        return copy
    if isinstance(value, Mapping):
        copy_map = dict(value)
        copy_map[head] = replaced(copy_map[head], rest, new)
        return copy_map
    return value
