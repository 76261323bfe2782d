"""Expand a schema-valid spec's jobs into `Request`s, and check their output paths.

Per job: expand the matrix (`runner.matrix`, capped), render params (`runner.templates`),
fill params from axes named like request parameters, resolve images (`runner.images`),
give every request a seed (derived from its identity when the spec gives none), validate
the body against the model's schema, compute the id (`runner.identity`), render the
output path (or the readable default), and refuse two requests with one output path and
the same request twice. Problems go to the spec file being loaded (`SpecFile`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from runner.catalog import (
    PORTABLE_NAMES,
    Model,
    PortableConflict,
    Route,
    SeedRange,
    load_catalog,
)
from runner.identity import Identities, canonical_json
from runner.images import ImageProblem, ImageResolver
from runner.layout import fold, output_clashes
from runner.matrix import Combination, MatrixError, MatrixTooLarge, expand, holds_float
from runner.request import LocalImage, Request, replaced
from runner.schema_errors import BodyValidator, dotted, short
from runner.templates import Renderer, Template, TemplateProblem
from runner.yamlpos import Document
from runner.yamlpos import Path as DocPath

DEFAULT_JOB = "default"
MAX_OUTPUT_PATH = 1024
MAX_OUTPUT_COMPONENT = 200


class SpecFile(Protocol):
    """What expansion needs from the spec file being loaded (`runner.spec`)."""

    path: Path
    display: str
    doc: Document

    def at(self, path: DocPath, message: str) -> None: ...

    def at_key(self, path: DocPath, message: str) -> None: ...


@dataclass(frozen=True)
class Job:
    """One job with the top-level defaults merged in, and where each setting came from."""

    name: str
    path: DocPath  # ("jobs", name) or () for the implicit job
    provider: str  # where requests go (the sandbox under --sandbox)
    model: str | None  # the job's model; None when a matrix axis `model` names it
    model_path: DocPath
    vars: dict[str, Any]
    params: dict[str, tuple[Any, DocPath]]  # key -> (raw value, where it was written)
    output: tuple[str, DocPath] | None
    matrix: Mapping[str, Any] | None
    matrix_path: DocPath
    # The provider the spec names: derived seeds come from it, so a --sandbox try-out
    # sends the very seed the real run will (only where a request goes changes its id).
    declared_provider: str = ""
    var_paths: Mapping[str, DocPath] = field(default_factory=dict)  # where each var was written
    endpoint: str | None = None  # a route name (`endpoint: unified`); None: each model's default
    endpoint_path: DocPath = ()
    skip_unsupported: bool = False  # `unsupported: skip`: drop what a model of the matrix lacks


# --------------------------------------------------------------------------- expansion


class Expander:
    """Expand the jobs of one schema-valid spec into requests."""

    def __init__(self, spec: SpecFile, name: str, jobs: list[Job], limit: int) -> None:
        self.spec = spec
        self.name = name
        self.jobs = jobs
        self.limit = limit
        self.renderer = Renderer()
        self.images = ImageResolver(spec.path)
        self.found_images: dict[str, LocalImage] = {}
        self.requests: list[Request] = []
        self.by_id: dict[str, tuple[str, Mapping[str, Any]]] = {}
        self.by_output: dict[str, tuple[str, Mapping[str, Any]]] = {}
        # Per job, where its output template is written (None: it has none), to point at;
        # not the job expanders themselves, whose back-reference would make a cycle that
        # keeps 100,000 requests' indexes for the garbage collector instead of freeing them.
        self.output_sites: dict[str, tuple[DocPath | None, Job]] = {}
        # A spec's image value -> its label, and for a local image the image and its
        # sha256: reference (made once), which the body holds instead (None: sent as is).
        self.image_cache: dict[str, tuple[str, tuple[LocalImage, str] | None]] = {}
        self.identities = Identities()
        self.validators: dict[str, BodyValidator] = {}
        self.catalog = load_catalog()

    def run(self) -> None:
        """Expand every job into `self.requests`, reporting problems to the spec file."""
        left = self.limit
        for job in self.jobs:
            try:
                combos = expand(job.matrix, job.matrix_path, left)
            except MatrixTooLarge as exc:
                message = exc.message
                if left < self.limit:
                    message += (
                        f" (max_requests {self.limit:,} covers the whole spec; earlier jobs "
                        f"use {self.limit - left:,})"
                    )
                self.spec.at_key(exc.path, message)
                continue
            except MatrixError as exc:
                self.spec.at_key(exc.path, exc.message)
                continue
            left -= len(combos)
            expander = _JobExpander(self, job)
            self.output_sites[job.name] = (expander.output[1] if expander.output else None, job)
            expander.run(combos)
        self._refuse_clashes()

    def _refuse_clashes(self) -> None:
        """Refuse outputs that clash with each other's folders or the runner's own files."""
        outputs = [request.output for request in self.requests]
        for index, problem in sorted(output_clashes(outputs).items()):
            request = self.requests[index]
            template, job = self.output_sites[request.job]
            site = template or (job.matrix_path if request.matrix else job.path)
            self.spec.at(site, f"output path {short(request.output)} {problem}")

    def validator(self, model: Model, route: Route) -> BodyValidator:
        found = self.validators.get(route.schema_file)
        if found is None:
            found = BodyValidator(model, route)
            self.validators[route.schema_file] = found
        return found


class _JobExpander:
    """Build the requests of one job, one matrix combination at a time."""

    def __init__(self, parent: Expander, job: Job) -> None:
        self.parent = parent
        self.spec = parent.spec
        self.job = job
        self.targets: dict[str, _Target | None] = {}  # by model name, None when refused
        self.base_context = {**job.vars, "job": job.name, "spec": parent.name}
        self.broken = False  # a params template does not compile
        self.var_templates = self._compile_vars()
        # Where to point when a parameter is missing: the params mapping, else the job.
        written = [p for p in ((*job.path, "params"), ("params",)) if p in parent.spec.doc.values]
        self.params_origin: DocPath = written[0] if written else job.path
        self.output_broken = False
        self.params: list[tuple[str, Any, DocPath]] = []
        for key, (raw, origin) in job.params.items():
            compiled = self._compile_tree(raw, origin)
            if compiled is not None:
                self.params.append((key, compiled, origin))
        self.output: tuple[Template, DocPath] | None = None
        if job.output is not None:
            source, origin = job.output
            try:
                self.output = (parent.renderer.compile(source), origin)
            except TemplateProblem as exc:
                self.spec.at(origin, f"output: {exc}")
                self.output_broken = True

    def _compile_vars(self) -> list[tuple[str, Any, DocPath]]:
        """Compile the vars that are templates; return them in the order they render in.

        A var may read matrix values and other vars (`shot: "{{ subject }} at dawn"`); it
        is rendered per request before the params, after the vars it reads. A cycle is
        refused: literal braces must never reach a paid body.
        """
        compiled: dict[str, tuple[Any, DocPath]] = {}
        for name, raw in self.job.vars.items():
            origin = self.job.var_paths.get(name, ("vars", name))
            tree = self._compile_tree(raw, origin)
            if tree is not None and not _is_constant(tree):
                compiled[name] = (tree, origin)
        reads = {name: _names_in(tree) & set(compiled) for name, (tree, _) in compiled.items()}
        ordered: list[tuple[str, Any, DocPath]] = []
        done: set[str] = set()
        while len(done) < len(compiled):
            ready = [n for n in compiled if n not in done and reads[n] <= done]
            if not ready:
                for name in sorted(set(compiled) - done):
                    others = ", ".join(sorted(reads[name] - done))
                    self.spec.at(
                        compiled[name][1],
                        f"vars.{name} reads {others}, which reads it back — a var cannot "
                        "depend on itself; write one of them out",
                    )
                self.broken = True
                return []
            for name in ready:
                done.add(name)
                ordered.append((name, *compiled[name]))
        return ordered

    def _compile_tree(self, raw: Any, origin: DocPath) -> Any:
        """Compile every string in a params value; None when a template is broken."""
        try:
            return _map_strings(raw, self.parent.renderer.compile)
        except TemplateProblem as exc:
            self.spec.at(origin, f"{dotted(origin)}: {exc}")
            self.broken = True
            return None

    def run(self, combos: list[Combination]) -> None:
        if self.broken:
            return
        # Params without templates are the same for every combination: settle them once.
        self.fixed: dict[str, Any] = {}
        self.dynamic: list[tuple[str, Any, DocPath]] = []
        for key, compiled, origin in self.params:
            if _is_constant(compiled):
                self.fixed[key] = _normalize(_map_templates(compiled, lambda t: t.source))
            else:
                self.dynamic.append((key, compiled, origin))
        self.param_keys = frozenset(key for key, _, _ in self.params) | {"model"}
        # Only a matrix holding a float anywhere at the top needs normalising per request.
        self.floats = holds_float(self.job.matrix)
        for combo in combos:
            request = self._request(combo)
            if request is not None:
                self.parent.requests.append(request)

    def _origins(self, combo: Combination, target: _Target) -> dict[str, DocPath]:
        """Return where each body key came from (only needed to report a problem)."""
        origins: dict[str, DocPath] = {"model": combo.origins.get("model", self.job.model_path)}
        origins.update({key: origin for key, _, origin in self.params})
        for key in target.fill_keys(combo.values, self.param_keys):
            origins[key] = combo.origins[key]
        # A portable name moved to its wire field: point at what the user wrote.
        for name in list(origins):
            wire = target.route.wire_name(name)
            if wire is not None and wire not in origins:
                origins[wire.split(".")[0]] = origins[name]
        return origins

    def _unsupported(self, combo: Combination, target: _Target, name: str) -> None:
        """Report a matrix value (or a param) the combination's model cannot take."""
        model = target.model.name
        where = combo.origins.get(name) or self._origins(combo, target).get(name)
        if name == "seed":
            what = (
                f"{model} takes no seed, so seeds would only repeat one request (every run "
                "of it gives another video)"
            )
        else:
            what = f"{model} takes no {name}, so its requests would differ in nothing"
        self.spec.at(
            where or self.params_origin,
            f"{what} — exclude it for this model (`exclude: [{{model: {model}}}]` with the "
            f"{name} values) or set `unsupported: skip`",
        )

    def _target(self, combo: Combination) -> _Target | None:
        """Return the model and route of one combination (None after reporting why not)."""
        name = combo.values.get("model", self.job.model)
        key = name if isinstance(name, str) else repr(name)
        if key in self.targets:
            return self.targets[key]
        where = combo.origins.get("model", self.job.model_path)
        target = None
        catalog = self.parent.catalog
        model = catalog.get(name) if isinstance(name, str) else None
        if model is None:
            excluded = catalog.excluded.get(name) if isinstance(name, str) else None
            if excluded is not None:
                message = (
                    f"model {name!r} is not supported: {excluded.reason} — "
                    "`runner models` lists the ones that are"
                )
            else:
                close = catalog.suggest(str(name))
                hint = (
                    f"did you mean {close!r}?" if close
                    else "`runner models` lists the models"
                )
                message = f"unknown model {name!r} — {hint}"
            self.spec.at(where, message)
        else:
            route = model.route(self.job.endpoint)
            if route is None:
                offered = ", ".join(r.name for r in model.routes)
                self.spec.at(
                    self.job.endpoint_path,
                    f"{model.name} is not served at endpoint {self.job.endpoint!r} — use one "
                    f"of: {offered}",
                )
            else:
                target = _Target(model, route, self.parent.validator(model, route))
        self.targets[key] = target
        return target

    def _request(self, combo: Combination) -> Request | None:
        values = combo.values
        if self.floats and any(isinstance(v, float) for v in values.values()):
            # `seed: [1.0, 1e3]` are the seeds 1 and 1000 everywhere: in the body (which
            # the API reads as integers), the output path and the recorded matrix.
            combo = Combination({k: _normalize(v) for k, v in values.items()}, combo.origins)
            values = combo.values
        context = self.base_context.copy()
        context.update(values)
        context["matrix"] = values
        render = self.parent.renderer.render
        for name, compiled, origin in self.var_templates:
            if name in values:
                continue  # a matrix value of the same name wins, as for plain vars
            try:
                context[name] = _normalize(_map_templates(compiled, lambda t: render(t, context)))
            except TemplateProblem as exc:
                self.spec.at(origin, f"{dotted(origin)}: {exc}")
                return None
        target = self._target(combo)
        if target is None:
            return None
        route = target.route
        written = self.fixed.copy()
        failed: set[str] = set()  # keys already reported; their other problems would repeat
        for key, compiled, origin in self.dynamic:
            try:
                if type(compiled) is Template:
                    value = render(compiled, context)
                    written[key] = value if type(value) is str else _normalize(value)
                else:
                    written[key] = _normalize(
                        _map_templates(compiled, lambda t: render(t, context))
                    )
            except TemplateProblem as exc:
                self.spec.at(origin, f"{dotted(origin)}: {exc}")
                failed.add(key)
        for key in target.fill_keys(values, self.param_keys):
            value = values[key]
            written[key] = value if type(value) is str or type(value) is int else _normalize(value)
        # What the keys alone decide (unsupported axes, moving portable names) is the same
        # for every combination of this shape: worked out once per shape.
        layout = (tuple(values), tuple(written))
        shape = target.shapes.get(layout) if not failed else None
        if shape is None:
            shape = self._shape(values, written, target)
            if not failed:
                target.shapes[layout] = shape
        ignored, moves = shape
        if ignored and not self.job.skip_unsupported:
            self._unsupported(combo, target, ignored[0])
            return None
        try:
            body = route.to_wire(written) if moves else written
        except PortableConflict as exc:
            self.spec.at(self.params_origin, f"{target.model.name}: {exc}")
            return None
        body["model"] = target.model.name
        shown: dict[str, Any] = {}
        images = self.parent.image_cache
        for at, value in (target.top_images(body) if target.flat_images
                          else list(route.image_values(body))):
            top = str(at[0])
            found = images.get(value)
            if found is None:
                try:
                    resolved, label = self.parent.images.resolve_labelled(value)
                except ImageProblem as exc:
                    self.spec.at(self._origins(combo, target).get(top, self.params_origin),
                                 f"{top}: {exc}")
                    failed.add(top)
                    continue
                local = (resolved, resolved.ref) if isinstance(resolved, LocalImage) else None
                found = images[value] = (label, local)
            label, local = found
            shown.setdefault(top, label)
            if local is not None:
                image, ref = local
                self.parent.found_images[image.sha256] = image
                body = _placed(body, at, ref)
        provider, model, endpoint = self.job.provider, target.model.name, route.endpoint
        identities = self.parent.identities
        seed_derived = route.seed is not None and route.seed.field not in body
        if seed_derived and route.seed is not None:
            declared = self.job.declared_provider or provider
            derived = identities.derive_seed(declared, model, endpoint, body)
            body[route.seed.field] = _within(derived, route.seed)
        issues = target.validator.check(body)
        if failed:
            issues = [i for i in issues if not failed.intersection(i.keys)]
        if issues and self.job.skip_unsupported and _only_axes(issues, values, target):
            return None  # `unsupported: skip`: a value of the matrix this model lacks
        if issues or failed:
            origins = self._origins(combo, target)
            for issue in issues:
                origin = origins.get(issue.key or "", self.params_origin)
                if issue.at_key:
                    self.spec.at_key(origin, issue.message)
                else:
                    self.spec.at((*origin, *issue.subpath), issue.message)
            self._output(context, body, shown, "0" * 16, combo)  # report its problems too
            return None
        rid = identities.request_id(provider, model, endpoint, body)
        output = self._output(context, body, shown, rid, combo)
        if output is None:
            return None
        if not self._unique(rid, output, combo):
            return None
        return Request(
            id=rid,
            spec=self.spec.display,
            spec_name=self.parent.name,
            job=self.job.name,
            provider=provider,
            model=model,
            endpoint=endpoint,
            body=body,
            output=output,
            matrix=values,
            seed_derived=seed_derived,
        )

    def _shape(
        self, values: Mapping[str, Any], written: Mapping[str, Any], target: _Target
    ) -> tuple[list[str], bool]:
        """Return the axes the model cannot take, and whether portable names need moving."""
        route = target.route
        ignored = [
            axis for axis in values
            if axis in PORTABLE_NAMES and axis not in written and not route.accepts(axis)
        ]
        if "seed" in written and route.seed is None:
            ignored.append("seed")
        return ignored, bool(target.moves.intersection(written))

    def _output(
        self,
        context: dict[str, Any],
        body: Mapping[str, Any],
        shown: Mapping[str, Any],
        rid: str,
        combo: Combination,
    ) -> str | None:
        if self.output_broken:
            return None
        if self.output is None:
            path = _default_output(
                self.job.name if self.job.path else None, combo.values, self.parent.name
            )
            origin = self.job.matrix_path if combo.values else self.job.path
        else:
            template, origin = self.output
            # Only the names the template reads: later sources win (shown images by stem).
            full: dict[str, Any] = {}
            for name in template.names:
                if name in shown:
                    full[name] = shown[name]
                elif name in body:
                    full[name] = body[name]
                elif name in context:
                    full[name] = context[name]
            if "id" in template.names:
                full["id"] = rid
            try:
                rendered = self.parent.renderer.render(template, full)
            except TemplateProblem as exc:
                self.spec.at(origin, f"output: {exc}")
                return None
            path = str(rendered)
        problem = _output_problem(path)
        if problem is not None:
            self.spec.at(origin, f"output path {short(path)} {problem}")
            return None
        return path

    def _unique(self, rid: str, output: str, combo: Combination) -> bool:
        here = (self.job.name, combo.values)
        twin = self.parent.by_id.get(rid)
        if twin is not None and self.job.skip_unsupported:
            return False  # an axis this model ignores: the request is already there once
        if twin is not None:
            self.spec.at_key(
                self.job.matrix_path if combo.values else self.job.path,
                f"{_describe(twin)} and {_describe(here)} make the identical request "
                f"(id {rid}); it would be paid for twice — vary a parameter (e.g. a seed axis) "
                "or remove one",
            )
            return False
        # Caseless and normalisation-insensitive (NFD(casefold(NFD))): on macOS and Windows
        # "Café.mp4" (NFC) and "cafe\u0301.mp4" (NFD) name one file.
        folded = fold(output)
        other = self.parent.by_output.get(folded)
        if other is not None:
            origin = self.output[1] if self.output else self.job.matrix_path
            self.spec.at(
                origin,
                f"{_describe(other)} and {_describe(here)} both write {output!r} — make the "
                "output template use a value that differs between them (e.g. {{ seed }})",
            )
            return False
        self.parent.by_id[rid] = here
        self.parent.by_output[folded] = here
        return True


@dataclass
class _Target:
    """One model and route a job's requests go to, with what expansion reuses for it."""

    model: Model
    route: Route
    validator: BodyValidator
    fills: dict[tuple[str, ...], tuple[str, ...]] = field(default_factory=dict)
    # (axes, body keys) -> the axes the model cannot take, and whether to move names.
    shapes: dict[tuple[tuple[str, ...], tuple[str, ...]], tuple[list[str], bool]] = field(
        default_factory=dict
    )

    def __post_init__(self) -> None:
        # Portable names that are not already the wire field (ratio -> aspect_ratio ...):
        # only bodies holding one of these need moving (`Route.to_wire`).
        self.moves = frozenset(
            name for name, target in self.route.fields.items()
            if target.path != (name,) or target.wrap is not None
        )
        accepted = set(self.route.params) | set(self.route.fields)
        self.accepted = frozenset(accepted - {"model"})
        self.image_fields = self.route.images.all()
        # Every image field a plain top-level one: found without walking the body.
        self.flat_images = self.image_fields == self.route.images.top_level()

    def top_images(self, body: Mapping[str, Any]) -> list[tuple[tuple[str | int, ...], Any]]:
        """Return (path, value) of each image a body holds, for flat image fields only."""
        return [((name,), body[name]) for name in self.image_fields
                if isinstance(body.get(name), str)]

    def fill_keys(self, values: Mapping[str, Any], written: frozenset[str]) -> tuple[str, ...]:
        """Return the axes that fill request parameters (named like one, not in params)."""
        names = tuple(values)
        keys = self.fills.get(names)
        if keys is None:
            keys = tuple(k for k in names if k in self.accepted and k not in written)
            self.fills[names] = keys
        return keys


def _placed(body: dict[str, Any], at: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    """Return `body` with the item at path `at` (keys and list indexes) set to `value`."""
    if len(at) == 1:
        body[str(at[0])] = value
        return body
    return dict(replaced(body, at, value))


def _within(derived: int, seed: SeedRange) -> int:
    """Fit a derived seed into a model's seed range.

    Runway documents 0..4294967295, the full 32 bits a derived seed has, so its seeds are
    the derived ones (as before the catalog). A model that states no range gets one in
    0..2**31-1, which every signed 32-bit field holds.
    """
    low = seed.minimum if seed.minimum is not None else 0
    high = seed.maximum if seed.maximum is not None else 2**31 - 1
    if low <= derived <= high:
        return derived
    return low + derived % (high - low + 1)


def _only_axes(issues: list[Any], values: Mapping[str, Any], target: _Target) -> bool:
    """Whether every problem is about a value a matrix axis gave (for `unsupported: skip`)."""
    axes = {target.route.wire_name(k) or k for k in values} | set(values)
    return all(issue.key is not None and issue.key in axes for issue in issues)


def _describe(where: tuple[str, Mapping[str, Any]]) -> str:
    job, values = where
    pairs = ", ".join(f"{k}: {short(v, 30)}" for k, v in values.items())
    return f"job {job!r} {{{pairs}}}" if job != DEFAULT_JOB else f"{{{pairs}}}"


def _map_strings(value: Any, func: Any) -> Any:
    if isinstance(value, str):
        return func(value)
    if isinstance(value, list):
        return [_map_strings(v, func) for v in value]
    if isinstance(value, dict):
        return {k: _map_strings(v, func) for k, v in value.items()}
    return value


def _names_in(value: Any) -> set[str]:
    """Return the variables every template inside a compiled value reads."""
    if isinstance(value, Template):
        return set(value.names)
    if isinstance(value, list):
        return set().union(*(_names_in(v) for v in value)) if value else set()
    if isinstance(value, dict):
        return set().union(*(_names_in(v) for v in value.values())) if value else set()
    return set()


def _is_constant(value: Any) -> bool:
    if isinstance(value, Template):
        return value.is_constant
    if isinstance(value, list):
        return all(_is_constant(v) for v in value)
    if isinstance(value, dict):
        return all(_is_constant(v) for v in value.values())
    return True


def _map_templates(value: Any, func: Any) -> Any:
    if isinstance(value, Template):
        return func(value)
    if isinstance(value, list):
        return [_map_templates(v, func) for v in value]
    if isinstance(value, dict):
        return {k: _map_templates(v, func) for k, v in value.items()}
    return value


def _normalize(value: Any) -> Any:
    """Return JSON-equal data with integral floats as ints (5.0 and 5 are one request)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_normalize(v) for v in value]
    if isinstance(value, dict):
        return {k: _normalize(v) for k, v in value.items()}
    return value


# ------------------------------------------------------------------------ output paths

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _slug(value: Any) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = value
        if "/" in value or "." in value:
            stem = PurePosixPath(value.split("?", 1)[0]).stem
            if stem and re.search(r"\.(png|jpe?g|webp|gif)$", value.split("?", 1)[0], re.I):
                text = stem
    elif isinstance(value, int | float):
        text = str(value)
    else:
        text = canonical_json(value).decode("utf-8")
    slug = _UNSAFE.sub("-", text.replace(":", "x")).strip("-.") or "empty"
    if len(slug) > 40:  # long values (prompts): a readable start plus a hash keeps it unique
        digest = hashlib.sha256(canonical_json(value)).hexdigest()[:8]
        slug = f"{slug[:31].rstrip('-.')}-{digest}"
    return slug


def _default_output(job: str | None, values: Mapping[str, Any], spec_name: str) -> str:
    """Return the default output path: the matrix values, readable (seed-1_ratio-16x9.mp4)."""
    stem = "_".join(f"{key}-{_slug(value)}" for key, value in values.items()) or spec_name
    return f"{job}/{stem}.mp4" if job else f"{stem}.mp4"


_PLAIN_PATH = re.compile(
    r"^(?:[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}/)*[A-Za-z0-9_-][A-Za-z0-9._-]{0,195}\.mp4$"
)
# C0/C1 controls and invisible format characters (bidi overrides such as U+202E can make
# "clip\u202egpm.mp4" display as "clip4pm.mpg"; zero-width ones hide in names).
_CONTROL = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]"
)


def _output_problem(path: str) -> str | None:
    """Return why `path` cannot be an output path, or None when it is fine."""
    if len(path) <= MAX_OUTPUT_PATH and _PLAIN_PATH.match(path):
        return None  # the common case, checked in one pass
    if not path or not path.strip():
        return "is empty — give a file name ending in .mp4"
    if len(path) > MAX_OUTPUT_PATH:
        return f"is longer than {MAX_OUTPUT_PATH} characters — shorten the template"
    if _CONTROL.search(path):
        return "contains control characters — remove them"
    if "\\" in path:
        return "contains a backslash — use / between folders"
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        return "is absolute — it must stay inside the spec's output folder (write a relative path)"
    parts = path.split("/")
    if any(part == ".." for part in parts):
        return "leaves the output folder ('..') — write a path inside it"
    if any(part in ("", ".") for part in parts):
        return "has an empty or '.' folder name — remove the extra '/'"
    if any(part.startswith(".") for part in parts):
        return "has a name starting with '.' (hidden files are reserved) — rename it"
    if any(len(part) > MAX_OUTPUT_COMPONENT for part in parts):
        return f"has a name longer than {MAX_OUTPUT_COMPONENT} characters — shorten it"
    if not path.endswith(".mp4"):
        return "does not end in .mp4 — add the extension"
    return None
