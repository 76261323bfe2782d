"""Load spec files into `LoadedSpec`s: validated, expanded, identified requests.

For each file, in order, collecting every problem with its file:line:col:

1. read and parse the YAML with positions (`runner.yamlpos`; alias bombs fail here);
2. refuse anything that looks like an API key (keys come from the environment);
3. validate against `schemas/spec.schema.json` (typos get "did you mean");
4. per job (or the single implicit job `default`): merge top-level defaults, expand the
   matrix (`runner.matrix`, capped), render params (`runner.templates`), fill params from
   axes named like request parameters, resolve images (`runner.images`), give every
   request a seed (derived from its identity when the spec gives none), validate the body
   against the model's schema, compute the id (`runner.identity`), render the output path;
5. refuse two requests with one output path, and the same request twice.

Nothing here touches the network or writes a file.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from runner.errors import Problem, SpecError, UsageError
from runner.identity import canonical_json, derive_seed, request_id
from runner.images import ImageProblem, ImageResolver
from runner.matrix import Combination, MatrixError, MatrixTooLarge, expand
from runner.models import ModelInfo, catalog, get_model
from runner.request import LocalImage, Request
from runner.schemas import validator_for
from runner.templates import Renderer, Template, TemplateProblem
from runner.yamlpos import Document, Mark, YamlProblem, load
from runner.yamlpos import Path as DocPath

DEFAULT_MAX_REQUESTS = 10_000  # per spec; a spec may raise it with `max_requests:`
MAX_SPEC_BYTES = 1_048_576  # a spec is a page of YAML; anything bigger is a mistake
MAX_PROBLEMS = 50  # per file; past this the rest is noise
SPEC_SUFFIXES = (".yaml", ".yml")
DEFAULT_JOB = "default"
IMAGE_STAND_IN = "data:image/png;base64,iVBORw0KGgo="  # validates like any data: URI
KEY_ENV_VARS = ("AIMLAPI_API_KEY", "APILAPLAS_API_KEY")
MAX_OUTPUT_PATH = 1024
MAX_OUTPUT_COMPONENT = 200

_KEY_PATTERNS = (
    re.compile(r"\bsk-[A-Za-z0-9_\-]{16,}"),
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/\-]{16,}"),
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass(frozen=True)
class LoadedSpec:
    """One spec file, expanded into requests."""

    path: Path
    display: str  # the path as the user named it
    name: str  # names the output folder outputs/<name>/
    requests: tuple[Request, ...]
    images: Mapping[str, LocalImage]  # by sha256 hex


def load_specs(
    paths: Sequence[Path],
    *,
    provider_override: str | None = None,
    max_requests: int = DEFAULT_MAX_REQUESTS,
) -> list[LoadedSpec]:
    """Load every spec under `paths` (files or folders); raise `SpecError` with all problems.

    `provider_override` (e.g. "sandbox" for --sandbox) replaces every job's provider
    before ids are computed. `max_requests` caps each spec unless it sets its own.
    """
    problems: list[Problem] = []
    specs: list[LoadedSpec] = []
    names: dict[str, str] = {}
    for path, display in discover(paths):
        loader = _SpecFile(path, display, provider_override, max_requests)
        spec = loader.load()
        problems.extend(loader.problems)
        if spec is None:
            continue
        other = names.get(spec.name)
        if other is not None:
            mark = loader.name_mark
            problems.append(
                Problem(
                    display,
                    mark.line,
                    mark.col,
                    f"spec name {spec.name!r} is also used by {other} — names pick the "
                    "output folder; set a different name: in one of them",
                )
            )
            continue
        names[spec.name] = display
        specs.append(spec)
    if problems:
        raise SpecError(problems)
    return specs


def discover(paths: Sequence[Path]) -> list[tuple[Path, str]]:
    """Return (path, display) of every spec file named or found under a folder."""
    found: list[tuple[Path, str]] = []
    seen: set[Path] = set()
    for given in paths:
        if given.is_dir():
            inside = sorted(_walk(given))
            if not inside:
                msg = (
                    f"no spec files (*.yaml, *.yml) in {given} — point at a spec or a folder "
                    "of specs"
                )
                raise UsageError(msg)
            candidates = [(given / rel, str(given / rel)) for rel in inside]
        elif given.is_file():
            candidates = [(given, str(given))]
        else:
            msg = f"no such spec file or folder: {given} — check the path"
            raise UsageError(msg)
        for path, display in candidates:
            key = path.resolve()
            if key not in seen:
                seen.add(key)
                found.append((path, display))
    return found


def _walk(folder: Path) -> Iterator[str]:
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if name.endswith(SPEC_SUFFIXES) and not name.startswith("."):
                yield os.path.relpath(os.path.join(root, name), folder)


# ----------------------------------------------------------------------------- one file


class _Stop(Exception):
    """Stop checking this file: later steps would only repeat earlier problems."""


@dataclass(frozen=True)
class _Job:
    """One job with the top-level defaults merged in, and where each setting came from."""

    name: str
    path: DocPath  # ("jobs", name) or () for the implicit job
    provider: str
    model: ModelInfo
    model_path: DocPath
    vars: dict[str, Any]
    params: dict[str, tuple[Any, DocPath]]  # key -> (raw value, where it was written)
    output: tuple[str, DocPath] | None
    matrix: Mapping[str, Any] | None
    matrix_path: DocPath


class _SpecFile:
    """Check and expand one spec file, collecting problems instead of stopping."""

    def __init__(
        self, path: Path, display: str, provider_override: str | None, max_requests: int
    ) -> None:
        self.path = path
        self.display = display
        self.provider_override = provider_override
        self.max_requests = max_requests
        self.problems: list[Problem] = []
        self.secrets: set[str] = set()
        self.doc = Document(None, {}, {})
        self.name_mark = Mark(1, 1)

    # -- problems ------------------------------------------------------------------

    def problem(self, mark: Mark, message: str) -> None:
        for secret in self.secrets:
            message = message.replace(secret, "***")
        entry = Problem(self.display, mark.line, mark.col, message)
        if entry not in self.problems:
            self.problems.append(entry)
        if len(self.problems) >= MAX_PROBLEMS:
            raise _Stop

    def at(self, path: DocPath, message: str) -> None:
        self.problem(self.doc.at(path), message)

    def at_key(self, path: DocPath, message: str) -> None:
        self.problem(self.doc.key_at(path), message)

    # -- steps ---------------------------------------------------------------------

    def load(self) -> LoadedSpec | None:
        try:
            spec = self._load()
        except _Stop:
            spec = None
        self.problems.sort(key=lambda p: (p.line, p.col))
        if len(self.problems) >= MAX_PROBLEMS:
            self.problems.append(
                Problem(
                    self.display, 1, 1, f"stopped after {MAX_PROBLEMS} problems — fix these first"
                )
            )
        return None if self.problems else spec

    def _load(self) -> LoadedSpec | None:
        text = self._read()
        try:
            self.doc = load(text)
        except YamlProblem as exc:
            self.problem(exc.mark, exc.message)
            return None
        data = self.doc.data
        if not isinstance(data, dict):
            self.problem(
                Mark(1, 1),
                "a spec is a mapping (version, name, provider, model, matrix, params, ...) — "
                "see schemas/spec.schema.json",
            )
            return None
        self._refuse_secrets(data, ())
        before = len(self.problems)
        self._check_schema(data)
        if len(self.problems) > before:
            return None  # expanding an invalid spec would only repeat these problems
        name = self._name(data)
        before = len(self.problems)
        jobs = list(self._jobs(data))
        if len(self.problems) > before:
            return None
        return _Expander(self, name, jobs, data.get("max_requests", self.max_requests)).run()

    def _read(self) -> str:
        try:
            size = self.path.stat().st_size
            if size > MAX_SPEC_BYTES:
                self.problem(
                    Mark(1, 1),
                    f"the spec is {size:,} bytes; the limit is {MAX_SPEC_BYTES:,} — "
                    "split it into several specs",
                )
                raise _Stop
            raw = self.path.read_bytes()
        except OSError as exc:
            self.problem(Mark(1, 1), f"cannot read the spec ({exc.strerror}) — check the file")
            raise _Stop from None
        try:
            return raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = raw.count(b"\n", 0, exc.start) + 1
            col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
            self.problem(Mark(line, col), "the spec is not UTF-8 text — save it as UTF-8")
            raise _Stop from None

    def _refuse_secrets(self, value: Any, path: DocPath) -> None:
        env_keys = [v for v in (os.environ.get(k, "").strip() for k in KEY_ENV_VARS) if len(v) >= 8]
        for where, text, is_key in _strings(value, path):
            found = [m[0] for pattern in _KEY_PATTERNS for m in pattern.finditer(text)]
            found += [key for key in env_keys if key in text]
            if not found:
                continue
            self.secrets.update(found)
            self.secrets.add(text)
            message = (
                "this value looks like an API key — keys come from the environment "
                "(AIMLAPI_API_KEY or APILAPLAS_API_KEY), never from spec files; remove it "
                "(and rotate the key if it was committed)"
            )
            if is_key:
                self.at_key(where, message)
            else:
                self.at(where, message)

    def _check_schema(self, data: dict[str, Any]) -> None:
        validator = validator_for("spec.schema.json")
        for error in validator.iter_errors(data):
            for path, key_level, message in _explain_schema_error(error):
                if key_level:
                    self.at_key(path, message)
                else:
                    self.at(path, message)

    def _name(self, data: dict[str, Any]) -> str:
        if "name" in data:
            self.name_mark = self.doc.at(("name",))
            return str(data["name"])
        stem = self.path.stem
        if not _NAME.match(stem):
            self.problem(
                Mark(1, 1),
                f"the file name {stem!r} cannot name the output folder — add name: with "
                "letters, digits, '.', '_' and '-'",
            )
        return stem

    def _jobs(self, data: dict[str, Any]) -> Iterator[_Job]:
        top_params = {k: (v, ("params", k)) for k, v in data.get("params", {}).items()}
        top_output = (data["output"], ("output",)) if "output" in data else None
        raw_jobs: list[tuple[str, dict[str, Any], DocPath]]
        if "jobs" in data:
            raw_jobs = [(name, job, ("jobs", name)) for name, job in data["jobs"].items()]
        else:
            raw_jobs = [(DEFAULT_JOB, {}, ())]
        for name, job, path in raw_jobs:
            provider, _ = _pick("provider", job, path, data)
            model_name, model_path = _pick("model", job, path, data)
            where = f"job {name!r}" if path else "the spec"
            if provider is None:
                self.at_key(
                    path,
                    f"{where} has no provider — add provider: aimlapi (or apilaplas, sandbox)",
                )
            if model_name is None:
                models = ", ".join(sorted(catalog()))
                self.at_key(path, f"{where} has no model — add model: (one of {models})")
                continue
            model = get_model(model_name)
            if model is None:
                known = sorted(catalog())
                close = difflib.get_close_matches(model_name, known, n=1, cutoff=0.5)
                hint = f"did you mean {close[0]!r}?" if close else f"use one of: {', '.join(known)}"
                self.at(model_path, f"unknown model {model_name!r} — {hint}")
                continue
            if provider is None:
                continue
            params = dict(top_params)
            params.update({k: (v, (*path, "params", k)) for k, v in job.get("params", {}).items()})
            output = (job["output"], (*path, "output")) if "output" in job else top_output
            matrix_source = job if path else data
            yield _Job(
                name=name,
                path=path,
                provider=self.provider_override or provider,
                model=model,
                model_path=model_path,
                vars={**data.get("vars", {}), **job.get("vars", {})},
                params=params,
                output=output,
                matrix=matrix_source.get("matrix"),
                matrix_path=(*path, "matrix"),
            )


def _pick(
    key: str, job: Mapping[str, Any], path: DocPath, data: Mapping[str, Any]
) -> tuple[Any, DocPath]:
    if key in job:
        return job[key], (*path, key)
    return data.get(key), (key,)


def _strings(value: Any, path: DocPath) -> Iterator[tuple[DocPath, str, bool]]:
    """Yield (path, text, is_key) for every string and mapping key in a YAML value."""
    if isinstance(value, str):
        yield path, value, False
    elif isinstance(value, dict):
        for key, item in value.items():
            yield (*path, key), key, True
            yield from _strings(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, (*path, i))


# ------------------------------------------------------------------------ schema errors


def _explain_schema_error(error: Any) -> Iterator[tuple[DocPath, bool, str]]:
    """Turn one jsonschema error on a spec into (path, point-at-key?, message) items."""
    path: DocPath = tuple(error.absolute_path)
    where = _where(path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    keyword = error.validator
    instance = error.instance
    if keyword == "additionalProperties" and isinstance(instance, dict):
        allowed = sorted(schema.get("properties", {}))
        for key in instance:
            if key in schema.get("properties", {}):
                continue
            close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}?" if close else f"allowed here: {', '.join(allowed)}"
            yield (*path, key), True, f"unknown key {key!r} {where} — {hint}"
        return
    if "propertyNames" in error.relative_schema_path and isinstance(instance, str):
        # jsonschema reports a bad key name with the key as the instance, at its mapping
        rule = schema.get("x-hint") or "rename it"
        yield (*path, instance), True, f"{instance!r} is not a valid name {where} — {rule}"
        return
    if keyword in ("anyOf", "oneOf") and isinstance(instance, dict) and error.context:
        # An axis written as a mapping: explain what is wrong with it as a range.
        for sub in sorted(error.context, key=lambda e: len(e.absolute_path), reverse=True):
            if sub.validator != "type":
                yield from _explain_schema_error(sub)
                return
    advice = schema.get("x-hint")
    what = _what(keyword, instance, schema, error)
    if keyword == "not" and advice:
        yield path, True, f"{_where_key(path)} is not allowed here — {advice}"
        return
    if keyword == "required":
        missing = error.message.split("'")[1] if "'" in error.message else "a key"
        yield path, True, f"{where}: {missing!r} is required — {advice or 'add it'}"
        return
    yield path, False, f"{_where_key(path)}: {what} — {advice or 'see schemas/spec.schema.json'}"


def _what(keyword: str, instance: Any, schema: Mapping[str, Any], error: Any) -> str:
    shown = _short(instance)
    if keyword == "enum":
        return f"{shown} is not allowed"
    if keyword == "const":
        return f"{shown} is not allowed (must be {_short(schema.get('const'))})"
    if keyword == "type":
        return f"expected {_kind_name(schema.get('type'))}, got {_kind(instance)} {shown}"
    if keyword == "pattern":
        return f"{shown} is not allowed"
    if keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return f"{shown} is out of range"
    if keyword in ("minItems", "maxItems", "minProperties", "minLength"):
        return f"{shown} has the wrong size"
    if keyword in ("anyOf", "oneOf"):
        return f"{_kind(instance)} {shown} is not valid here"
    return str(error.message)


def _where(path: DocPath) -> str:
    return f"in {_dotted(path)}" if path else "at the top level"


def _where_key(path: DocPath) -> str:
    return _dotted(path) if path else "the spec"


def _dotted(path: DocPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _short(value: Any, limit: int = 60) -> str:
    if isinstance(value, str):
        text = repr(value)
    else:
        try:
            text = canonical_json(value).decode("utf-8")
        except (TypeError, ValueError):
            text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return "null"


def _kind_name(kind: Any) -> str:
    names = {
        "object": "a mapping",
        "array": "a list",
        "string": "text",
        "integer": "a whole number",
        "number": "a number",
        "boolean": "true or false",
    }
    if isinstance(kind, list):
        return " or ".join(names.get(str(k), str(k)) for k in kind)
    return names.get(str(kind), str(kind))


# --------------------------------------------------------------------------- expansion


class _Expander:
    """Expand the jobs of one schema-valid spec into requests."""

    def __init__(self, spec: _SpecFile, name: str, jobs: list[_Job], limit: int) -> None:
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
        self.validators: dict[str, _BodyValidator] = {}

    def run(self) -> LoadedSpec | None:
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
            _JobExpander(self, job).run(combos)
        if self.spec.problems:
            return None
        return LoadedSpec(
            path=self.spec.path,
            display=self.spec.display,
            name=self.name,
            requests=tuple(self.requests),
            images=dict(self.found_images),
        )

    def validator(self, model: ModelInfo) -> _BodyValidator:
        found = self.validators.get(model.schema_file)
        if found is None:
            found = _BodyValidator(model)
            self.validators[model.schema_file] = found
        return found


class _JobExpander:
    """Build the requests of one job, one matrix combination at a time."""

    def __init__(self, parent: _Expander, job: _Job) -> None:
        self.parent = parent
        self.spec = parent.spec
        self.job = job
        self.model = job.model
        self.model_params = frozenset(job.model.params) - {"model"}
        self.image_fields = frozenset(job.model.image_fields)
        self.base_context = {**job.vars, "job": job.name, "spec": parent.name}
        self.validator = parent.validator(job.model)
        # Where to point when a parameter is missing: the params mapping, else the job.
        written = [p for p in ((*job.path, "params"), ("params",)) if p in parent.spec.doc.values]
        self.params_origin: DocPath = written[0] if written else job.path
        self.broken = False  # a params template does not compile
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

    def _compile_tree(self, raw: Any, origin: DocPath) -> Any:
        """Compile every string in a params value; None when a template is broken."""
        try:
            return _map_strings(raw, self.parent.renderer.compile)
        except TemplateProblem as exc:
            self.spec.at(origin, f"{_dotted(origin)}: {exc}")
            self.broken = True
            return None

    def run(self, combos: list[Combination]) -> None:
        if self.broken:
            return
        # Params without templates are the same for every combination: settle them once.
        self.fixed: dict[str, Any] = {"model": self.model.name}
        self.dynamic: list[tuple[str, Any, DocPath]] = []
        for key, compiled, origin in self.params:
            if _is_constant(compiled):
                self.fixed[key] = _normalize(_map_templates(compiled, lambda t: t.source))
            else:
                self.dynamic.append((key, compiled, origin))
        self.param_keys = frozenset(key for key, _, _ in self.params) | {"model"}
        self.fills: dict[tuple[str, ...], tuple[str, ...]] = {}
        for combo in combos:
            request = self._request(combo)
            if request is not None:
                self.parent.requests.append(request)

    def _origins(self, combo: Combination) -> dict[str, DocPath]:
        """Return where each body key came from (only needed to report a problem)."""
        origins: dict[str, DocPath] = {"model": self.job.model_path}
        origins.update({key: origin for key, _, origin in self.params})
        for key in self._fill_keys(combo.values):
            origins[key] = combo.origins[key]
        return origins

    def _fill_keys(self, values: Mapping[str, Any]) -> tuple[str, ...]:
        """Return the axes that fill request parameters (named like one, not in params)."""
        names = tuple(values)
        keys = self.fills.get(names)
        if keys is None:
            keys = tuple(
                k for k in names if k in self.model_params and k not in self.param_keys
            )
            self.fills[names] = keys
        return keys

    def _request(self, combo: Combination) -> Request | None:
        values = combo.values
        context = self.base_context.copy()
        context.update(values)
        context["matrix"] = values
        body = self.fixed.copy()
        render = self.parent.renderer.render
        failed: set[str] = set()  # keys already reported; their other problems would repeat
        for key, compiled, origin in self.dynamic:
            try:
                body[key] = _normalize(_map_templates(compiled, lambda t: render(t, context)))
            except TemplateProblem as exc:
                self.spec.at(origin, f"{_dotted(origin)}: {exc}")
                failed.add(key)
        for key in self._fill_keys(values):
            body[key] = _normalize(values[key])
        shown: dict[str, Any] = {}
        for key in self.model.image_fields:
            value = body.get(key)
            if not isinstance(value, str):
                continue  # absent, or a wrong type the body schema reports
            try:
                resolved, shown[key] = self.parent.images.resolve_labelled(value)
            except ImageProblem as exc:
                self.spec.at(self._origins(combo)[key], f"{key}: {exc}")
                failed.add(key)
                continue
            if isinstance(resolved, LocalImage):
                self.parent.found_images[resolved.sha256] = resolved
                body[key] = resolved.ref
        provider, model, endpoint = self.job.provider, self.model.name, self.model.endpoint
        seed_derived = "seed" not in body
        if seed_derived:
            body["seed"] = derive_seed(provider, model, endpoint, body)
        issues = [i for i in self.validator.check(body) if not failed.intersection(i.keys)]
        if issues or failed:
            origins = self._origins(combo)
            for issue in issues:
                origin = origins.get(issue.key or "", self.params_origin)
                if issue.at_key:
                    self.spec.at_key(origin, issue.message)
                else:
                    self.spec.at((*origin, *issue.subpath), issue.message)
            self._output(context, body, shown, "0" * 16, combo)  # report its problems too
            return None
        rid = request_id(provider, model, endpoint, body)
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
                for source in (context, body, shown):
                    if name in source:
                        full[name] = source[name]
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
            self.spec.at(origin, f"output path {_short(path)} {problem}")
            return None
        return path

    def _unique(self, rid: str, output: str, combo: Combination) -> bool:
        here = (self.job.name, combo.values)
        twin = self.parent.by_id.get(rid)
        if twin is not None:
            self.spec.at_key(
                self.job.matrix_path if combo.values else self.job.path,
                f"{_describe(twin)} and {_describe(here)} make the identical request "
                f"(id {rid}); it would be paid for twice — vary a parameter (e.g. a seed axis) "
                "or remove one",
            )
            return False
        folded = output.casefold()
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


def _describe(where: tuple[str, Mapping[str, Any]]) -> str:
    job, values = where
    pairs = ", ".join(f"{k}: {_short(v, 30)}" for k, v in values.items())
    return f"job {job!r} {{{pairs}}}" if job != DEFAULT_JOB else f"{{{pairs}}}"


def _map_strings(value: Any, func: Any) -> Any:
    if isinstance(value, str):
        return func(value)
    if isinstance(value, list):
        return [_map_strings(v, func) for v in value]
    if isinstance(value, dict):
        return {k: _map_strings(v, func) for k, v in value.items()}
    return value


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
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


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


# ---------------------------------------------------------------------- body validation


@dataclass(frozen=True)
class _Issue:
    """One problem with a request body, tied to the body key that caused it."""

    key: str | None  # the body key (None: the body as a whole)
    subpath: DocPath  # inside the value, for nested values
    message: str
    at_key: bool  # point at the key rather than the value
    missing: str | None = None  # for a missing required parameter: which

    @property
    def keys(self) -> set[str]:
        return {k for k in (self.key, self.missing) if k is not None}


_SEPARABLE = frozenset(
    [
        "$schema",
        "$id",
        "title",
        "description",
        "type",
        "required",
        "additionalProperties",
        "properties",
        "x-runner",
        "$comment",
        "examples",
    ]
)


class _BodyValidator:
    """Validate request bodies against a model schema, caching per parameter value.

    Model schemas are flat (`properties` + `required` + `additionalProperties: false`),
    so each parameter can be checked on its own and the result reused: a 100,000-seed
    sweep validates its prompt once, not 100,000 times. A schema that is not flat is
    validated whole for every body.
    """

    def __init__(self, model: ModelInfo) -> None:
        self.model = model
        self.images = frozenset(model.image_fields)
        self.full = validator_for(model.schema_file)
        schema = self.full.schema
        self.properties: Mapping[str, Any] = schema.get("properties", {})
        self.separable = set(schema) <= _SEPARABLE and schema.get("additionalProperties") is False
        self.by_keys: dict[frozenset[str], list[_Issue]] = {}
        self.by_value: dict[tuple[Any, ...], list[_Issue]] = {}
        self.sub = {key: self.full.evolve(schema=sub) for key, sub in self.properties.items()}

    def check(self, body: Mapping[str, Any]) -> list[_Issue]:
        """Return every problem with `body` (images may be sha256: references)."""
        standin = dict(body)
        for key in self.images.intersection(body):
            if str(body[key]).startswith("sha256:"):
                standin[key] = IMAGE_STAND_IN
        if not self.separable:
            return [self._issue(e) for e in self.full.iter_errors(standin)]
        keys = frozenset(standin)
        issues = self.by_keys.get(keys)
        if issues is None:  # which keys are there: once per distinct set of keys
            issues = [self._issue(e) for e in self.full.iter_errors(standin) if not e.path]
            self.by_keys[keys] = issues
        found = list(issues)
        by_value = self.by_value
        for key, value in standin.items():
            scalar = type(value) in _SCALARS
            cache_key = (key, type(value), value) if scalar else (key, _freeze(value))
            cached = by_value.get(cache_key)
            if cached is None:
                sub = self.sub.get(key)
                errors = [] if sub is None else list(sub.iter_errors(value))
                # One problem per value: "5" (text) needs no second line saying 5|10.
                cached = [self._issue(e, key) for e in errors[:1]]
                by_value[cache_key] = cached
            if cached:
                found.extend(cached)
        return found

    def _issue(self, error: Any, key: str | None = None) -> _Issue:
        path = tuple(error.absolute_path)
        if key is None and path:
            key, path = str(path[0]), path[1:]
        return _body_issue(self.model, key, path, error)


_SCALARS = frozenset([str, int, float, bool, type(None)])


def _freeze(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return (type(value), value)
    return canonical_json(value)


def _body_issue(model: ModelInfo, key: str | None, subpath: DocPath, error: Any) -> _Issue:
    keyword = error.validator
    schema = error.schema if isinstance(error.schema, dict) else {}
    instance = error.instance
    name = model.name
    params = [p for p in model.params if p != "model"]
    if keyword == "additionalProperties" and isinstance(instance, dict):
        extras = [k for k in instance if k not in model.params]
        extra = extras[0] if extras else "?"
        close = difflib.get_close_matches(extra, params, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}?" if close else f"its parameters: {', '.join(params)}"
        return _Issue(extra, (), f"{name} has no parameter {extra!r} — {hint}", True)
    if keyword == "required":
        missing = error.message.split("'")[1] if "'" in error.message else "a parameter"
        example = "images/first-frame.png" if missing in model.image_fields else "..."
        message = f"{name} needs {missing} — add it under params (e.g. {missing}: {example})"
        return _Issue(None, (), message, True, missing)
    label = key or "the request"
    shown = _short(instance)
    if keyword == "enum":
        options = ", ".join(str(o) for o in schema.get("enum", []))
        message = f"{label} {shown} is not accepted by {name} — use one of: {options}"
        if isinstance(instance, int) and key == "ratio":
            message += ' (quote ratios in YAML: "16:9")'
    elif keyword == "type":
        message = (
            f"{label} must be {_kind_name(schema.get('type'))} for {name}, not "
            f"{_kind(instance)} {shown}"
        )
        if isinstance(instance, str) and schema.get("type") in ("integer", "number"):
            message += " — write the number without quotes"
    elif keyword in ("minimum", "maximum"):
        low, high = schema.get("minimum"), schema.get("maximum")
        message = f"{label} {shown} is out of range for {name} — use {low}..{high}"
    elif keyword == "maxUtf16Length":
        message = (
            f"{label} {error.message} for {name} — shorten it (emoji and some symbols count "
            "as two units)"
        )
    elif keyword == "pattern" and key in model.image_fields:
        message = f"{label} must be a local image path, an https:// URL or a data: URI"
    else:
        message = f"{label}: {error.message} ({name})"
    return _Issue(key, subpath, message, False)
