"""The model registry: every video model the runner knows, and how to talk to it.

The one place that names a model's fields. It reads `schemas/models/catalog.json`, which
`scripts/vendor_models.py` generates from a snapshot of the provider's docs (see
docs/MODELS.md), and each route's body schema in `schemas/models/`.

    Catalog ── Model ── Route (the first is the default) ── FieldTarget per portable name
         │          └── OutputSize (where known)        └── ImageFields, SeedRange
         └── Excluded (models that need inputs the runner does not send, with the reason)

A *route* is one endpoint a model is served at, with its own body schema and wire field
names: Runway's models keep the documented legacy path as their default route (request
ids hash its bodies) and add the unified `/v2/video/generations` route. A *portable*
name (`ratio`, `image`, ...) is what a spec may write once for every model;
`Route.to_wire` moves it to the route's wire field (`aspect_ratio`, `tail_image_url`,
Luma's `keyframes.frame0`, ...). Raw wire fields pass through untouched.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from runner.schemas import load_schema

CATALOG_FILE = "models/catalog.json"  # relative to schemas/
FORMAT_VERSION = 1

# What a spec may write once for every model, in display order.
PORTABLE_NAMES = ("prompt", "image", "last_image", "ratio", "duration", "seed", "negative_prompt")


class PortableConflict(ValueError):
    """Raised when params give a portable name and the wire field it maps to."""


@dataclass(frozen=True, slots=True)
class FieldTarget:
    """Where a portable parameter goes in one route's body."""

    path: tuple[str, ...]  # ("aspect_ratio",), or nested: ("keyframes", "frame0")
    wrap: Mapping[str, Any] | None = None  # Luma: the value becomes {"type": "image", ...}
    key: str | None = None  # ... under this key ("url")

    @property
    def wire(self) -> str:
        """Return the target as a dotted path (`keyframes.frame0`)."""
        return ".".join(self.path)

    def place(self, body: dict[str, Any], value: Any) -> None:
        """Put `value` at this target in `body`, creating nested mappings as needed."""
        here = body
        for part in self.path[:-1]:
            nested = here.get(part, {})
            if not isinstance(nested, Mapping):
                msg = f"{part} is not a mapping, so {self.wire} cannot be set inside it"
                raise PortableConflict(msg)
            here[part] = dict(nested)  # a copy: the caller's params stay as they were
            here = here[part]
        if self.wrap is not None and self.key is not None:
            value = {**self.wrap, self.key: value}
        here[self.path[-1]] = value

    def present(self, body: Mapping[str, Any]) -> bool:
        """Return whether `body` already sets this target."""
        here: Any = body
        for part in self.path:
            if not isinstance(here, Mapping) or part not in here:
                return False
            here = here[part]
        return True


@dataclass(frozen=True, slots=True)
class ImageFields:
    """Which body fields carry images, as dotted paths (`*` = every item of a list)."""

    first: str | None  # the first frame
    last: str | None  # the last frame
    other: tuple[str, ...]  # references, image lists, masks

    def all(self) -> tuple[str, ...]:
        """Return every image path, first frame first."""
        return tuple(p for p in (self.first, self.last, *self.other) if p is not None)

    def top_level(self) -> tuple[str, ...]:
        """Return the image fields that are plain top-level string fields."""
        return tuple(p for p in self.all() if "." not in p)


@dataclass(frozen=True, slots=True)
class SeedRange:
    """The body field that carries the seed, and its documented range (None: unstated)."""

    field: str
    minimum: int | None
    maximum: int | None


@dataclass(frozen=True, slots=True)
class Parameter:
    """One body parameter of a route, as `runner models MODEL` shows it."""

    name: str  # the wire field
    type: str  # "integer", "string", "array of string", "string or array", ...
    enum: tuple[Any, ...] | None
    default: Any  # None when the schema states none
    required: bool
    portable: tuple[str, ...]  # the portable names that map to it
    minimum: float | None
    maximum: float | None
    description: str


@dataclass(frozen=True, slots=True)
class Route:
    """One endpoint a model is served at, with its body schema and wire field names."""

    name: str  # what a spec's `endpoint:` says: "unified", "runway", "kling", ...
    endpoint: str  # POST path, also polled with GET ?generation_id=
    schema_file: str  # relative to schemas/
    source: str  # where the schema came from (a docs path)
    fields: Mapping[str, FieldTarget]  # portable name -> wire target
    images: ImageFields
    seed: SeedRange | None

    def schema(self) -> dict[str, Any]:
        """Return the route's body schema (JSON Schema 2020-12)."""
        return load_schema(self.schema_file)

    @property
    def params(self) -> tuple[str, ...]:
        """Return every top-level body field the route accepts (including `model`)."""
        return tuple(self.schema()["properties"])

    def wire_name(self, portable: str) -> str | None:
        """Return the dotted wire field a portable name maps to, or None."""
        target = self.fields.get(portable)
        return None if target is None else target.wire

    def portable_for(self, wire: str) -> tuple[str, ...]:
        """Return the portable names that map into a top-level wire field."""
        return tuple(name for name, target in self.fields.items() if target.path[0] == wire)

    def accepts(self, key: str) -> bool:
        """Return whether params may use `key` on this route (a wire field or portable name)."""
        return key in self.fields or key in self.schema()["properties"]

    def to_wire(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Return `params` with each portable name moved to its wire field.

        Raw wire fields pass through; a key that is both (Runway's legacy `ratio`) stays.
        Raises `PortableConflict` when params give a portable name and its wire field.
        """
        body = {k: v for k, v in params.items() if k not in self.fields or self._same(k)}
        for name, target in self.fields.items():
            if name not in params or self._same(name):
                continue
            if target.present(body):
                msg = (
                    f"{name} and {target.wire} set the same thing for this model — write "
                    f"one of them ({name} is the portable name of {target.wire})"
                )
                raise PortableConflict(msg)
            target.place(body, params[name])
        return body

    def _same(self, name: str) -> bool:
        target = self.fields.get(name)
        return target is not None and target.path == (name,) and target.wrap is None

    def image_values(self, body: Mapping[str, Any]) -> Iterator[tuple[tuple[str | int, ...], Any]]:
        """Yield (path, value) of every image `body` holds, lists expanded item by item."""
        for pattern in self.images.all():
            yield from _find(body, tuple(pattern.split(".")), ())

    def parameters(self) -> tuple[Parameter, ...]:
        """Return the route's body parameters (without `model`), in schema order."""
        schema = self.schema()
        required = set(schema.get("required", []))
        found: list[Parameter] = []
        for name, prop in schema["properties"].items():
            if name == "model":
                continue
            enum = prop.get("enum")
            found.append(
                Parameter(
                    name=name,
                    type=_type_name(prop),
                    enum=tuple(enum) if enum is not None else None,
                    default=prop.get("default"),
                    required=name in required,
                    portable=self.portable_for(name),
                    minimum=prop.get("minimum"),
                    maximum=prop.get("maximum"),
                    description=str(prop.get("description", "")),
                )
            )
        return tuple(found)


@dataclass(frozen=True, slots=True)
class OutputSize:
    """The video size a model renders for one ratio (and resolution, where it has one)."""

    ratio: str
    resolution: str | None
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class Note:
    """Something the docs got wrong or said twice, and what the catalog did about it."""

    source: str  # the docs path
    kind: str  # string-default, duplicate, example, ...
    text: str
    field: str | None


@dataclass(frozen=True, slots=True)
class Model:
    """One video model: what it is, what it accepts, where it is served."""

    name: str  # the body's `model` value
    family: str  # Runway, Kling, Veo, Wan, MiniMax, Luma, PixVerse, Seedance, Sora, ...
    vendor: str  # the docs folder it comes from
    title: str
    capabilities: tuple[str, ...]  # image-to-video, text-to-video, seed, last-frame, ...
    image_required: bool
    ratios: tuple[str, ...] | None
    default_ratio: str | None
    durations: tuple[Any, ...] | None
    default_duration: Any
    resolutions: tuple[str, ...] | None
    default_resolution: str | None
    sizes: tuple[OutputSize, ...] | None  # None: the docs do not say
    # Where the sizes come from: "api-facts.md", "docs" (a description states them),
    # "derived" (the docs say a resolution names the short side; the ratio gives the other).
    sizes_source: str | None
    docs_path: str
    notes: tuple[Note, ...]
    routes: tuple[Route, ...]  # the first is the default

    @property
    def default_route(self) -> Route:
        """Return the route a spec gets when it names no `endpoint:`."""
        return self.routes[0]

    def route(self, name: str | None = None) -> Route | None:
        """Return the route called `name` (the default for None), or None when unknown."""
        if name is None:
            return self.routes[0]
        return next((r for r in self.routes if r.name == name), None)

    @property
    def expected_duration(self) -> int | None:
        """Seconds a request that names no duration gets: the stated default, else the
        shortest documented choice; None when the docs say neither."""
        for value in (self.default_duration, *(sorted(self.durations or ()))[:1]):
            seconds = seconds_of(value)
            if seconds is not None:
                return seconds
        return None

    def route_at(self, endpoint: str | None) -> Route | None:
        """Return the route served at POST path `endpoint`, or None."""
        return next((r for r in self.routes if r.endpoint == endpoint), None)

    @property
    def takes_seed(self) -> bool:
        """Return whether the default route accepts a seed."""
        return self.routes[0].seed is not None

    def size(self, ratio: str, resolution: str | None = None) -> tuple[int, int] | None:
        """Return (width, height) for a ratio (and resolution), or None when unknown."""
        for size in self.sizes or ():
            if size.ratio == ratio and size.resolution == resolution:
                return (size.width, size.height)
        return None


@dataclass(frozen=True, slots=True)
class Excluded:
    """A model in the docs that the runner leaves out, and why."""

    name: str
    family: str
    docs_path: str
    reason: str


@dataclass(frozen=True, slots=True)
class Catalog:
    """Every model, the ones left out, and the docs commit they came from."""

    docs_repository: str
    docs_commit: str
    models: Mapping[str, Model]
    excluded: Mapping[str, Excluded]
    capabilities: tuple[str, ...]  # every capability name, in display order
    source_notes: tuple[Note, ...]  # about docs files rather than one model

    def get(self, name: str) -> Model | None:
        """Return the model called `name`, or None."""
        return self.models.get(name)

    def suggest(self, name: str) -> str | None:
        """Return the model name closest to `name` (for "did you mean"), or None."""
        close = difflib.get_close_matches(name, list(self.models), n=1, cutoff=0.6)
        return close[0] if close else None

    @property
    def families(self) -> tuple[str, ...]:
        """Return every family, sorted."""
        return tuple(sorted({m.family for m in self.models.values()}))

    @property
    def route_names(self) -> tuple[str, ...]:
        """Return every route name, sorted ("unified" and the legacy vendor paths)."""
        return tuple(sorted({r.name for m in self.models.values() for r in m.routes}))

    def select(
        self, capabilities: Iterable[str] = (), family: str | None = None
    ) -> list[Model]:
        """Return the models with all `capabilities` (and of `family`), by name."""
        wanted = set(capabilities)
        chosen = []
        for model in self.models.values():
            if not wanted <= set(model.capabilities):
                continue
            if family is not None and model.family.lower() != family.lower():
                continue
            chosen.append(model)
        return sorted(chosen, key=lambda m: m.name)


def seconds_of(value: Any) -> int | None:
    """Read a duration as whole seconds (5, "5", "5s"); None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value) if value > 0 else None
    if isinstance(value, str):
        digits = value.strip().removesuffix("s").strip()
        return int(digits) if digits.isdigit() and int(digits) > 0 else None
    return None


@cache
def load_catalog() -> Catalog:
    """Return the catalog (read once from schemas/models/catalog.json)."""
    data = load_schema(CATALOG_FILE)
    if data.get("format_version") != FORMAT_VERSION:
        msg = (
            f"schemas/{CATALOG_FILE} has format_version {data.get('format_version')!r}; this "
            f"runner reads {FORMAT_VERSION} — regenerate it with scripts/vendor_models.py"
        )
        raise RuntimeError(msg)
    models = {entry["name"]: _model(entry) for entry in data["models"]}
    excluded = {
        e["name"]: Excluded(e["name"], e["family"], e["docs_path"], e["reason"])
        for e in data["excluded"]
    }
    return Catalog(
        docs_repository=data["docs"]["repository"],
        docs_commit=data["docs"]["commit"],
        models=models,
        excluded=excluded,
        capabilities=tuple(data["capabilities"]),
        source_notes=tuple(_note(n) for n in data["source_notes"]),
    )


def get_model(name: str) -> Model | None:
    """Return the catalog's model called `name`, or None."""
    return load_catalog().get(name)


# --------------------------------------------------------------------------- reading


def _model(entry: Mapping[str, Any]) -> Model:
    sizes = entry["sizes"]
    return Model(
        name=entry["name"],
        family=entry["family"],
        vendor=entry["vendor"],
        title=entry["title"],
        capabilities=tuple(entry["capabilities"]),
        image_required=entry["image_required"],
        ratios=_tuple(entry["ratios"]),
        default_ratio=entry["default_ratio"],
        durations=_tuple(entry["durations"]),
        default_duration=entry["default_duration"],
        resolutions=_tuple(entry["resolutions"]),
        default_resolution=entry["default_resolution"],
        sizes=None if sizes is None else tuple(
            OutputSize(s["ratio"], s["resolution"], s["width"], s["height"]) for s in sizes
        ),
        sizes_source=entry["sizes_source"],
        docs_path=entry["docs_path"],
        notes=tuple(_note(n) for n in entry["notes"]),
        routes=tuple(_route(r) for r in entry["routes"]),
    )


def _route(entry: Mapping[str, Any]) -> Route:
    images = entry["images"]
    seed = entry["seed"]
    return Route(
        name=entry["name"],
        endpoint=entry["endpoint"],
        schema_file=entry["schema"],
        source=entry["source"],
        fields={name: _target(spec) for name, spec in entry["fields"].items()},
        images=ImageFields(images["first"], images["last"], tuple(images["other"])),
        seed=None if seed is None else SeedRange(seed["field"], seed["minimum"], seed["maximum"]),
    )


def _target(spec: str | Mapping[str, Any]) -> FieldTarget:
    if isinstance(spec, str):
        return FieldTarget(tuple(spec.split(".")))
    return FieldTarget(tuple(spec["path"].split(".")), dict(spec["wrap"]), spec["key"])


def _note(entry: Mapping[str, Any]) -> Note:
    return Note(entry["source"], entry["kind"], entry["text"], entry.get("field"))


def _tuple(value: list[Any] | None) -> tuple[Any, ...] | None:
    return None if value is None else tuple(value)


def _find(
    value: Any, pattern: tuple[str, ...], at: tuple[str | int, ...]
) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    if not pattern:
        if isinstance(value, str):
            yield at, value
        return
    head, rest = pattern[0], pattern[1:]
    if head == "*":
        if isinstance(value, list):
            for i, item in enumerate(value):
                yield from _find(item, rest, (*at, i))
    elif isinstance(value, Mapping) and head in value:
        yield from _find(value[head], rest, (*at, head))


def _type_name(prop: Mapping[str, Any]) -> str:
    kind = prop.get("type")
    if isinstance(kind, list):
        return " or ".join(str(k) for k in kind)
    if kind == "array" and isinstance(prop.get("items"), Mapping):
        return f"array of {_type_name(prop['items'])}"
    if kind is not None:
        return str(kind)
    branches = prop.get("anyOf") or prop.get("oneOf")
    if branches:
        names = dict.fromkeys(_type_name(b) for b in branches)
        return " or ".join(names)
    if "const" in prop:
        return "constant"
    return "any"
