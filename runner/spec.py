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

Steps 1-3 and the per-job defaults live here; the expansion (4-5) is `runner.expand`, and
the wording of schema errors is `runner.schema_errors`.

Nothing here touches the network or writes a file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.durable import NotRegular, read_regular
from runner.errors import Problem, SpecError, UsageError
from runner.expand import DEFAULT_JOB, Expander, Job
from runner.heap import collector_paused
from runner.request import LocalImage, Request
from runner.schema_errors import explain_schema_error
from runner.schemas import validator_for
from runner.templates import SURROGATE
from runner.yamlpos import Document, Mark, YamlProblem, load
from runner.yamlpos import Path as DocPath

DEFAULT_MAX_REQUESTS = 10_000  # per spec; a spec may raise it with `max_requests:`
MAX_SPEC_BYTES = 1_048_576  # a spec is a page of YAML; anything bigger is a mistake
MAX_PROBLEMS = 50  # per file; past this the rest is noise
SPEC_SUFFIXES = (".yaml", ".yml")
KEY_ENV_VARS = ("AIMLAPI_API_KEY", "APILAPLAS_API_KEY")
SANDBOX = "sandbox"

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
    sandbox: bool = False  # its requests go to the embedded sandbox (outputs/_sandbox/<name>/)
    budget: float | None = None  # USD this spec's submissions may cost in one run (`budget:`)


@collector_paused()  # a large spec's requests: runner.heap says why
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
        elif given.exists():
            msg = f"{given} is not a regular file (a pipe, a device?) — point at a spec file"
            raise UsageError(msg)
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
        if self._refuse_surrogates(data):
            return None  # such text cannot be hashed or sent: expanding it would crash
        before = len(self.problems)
        self._check_schema(data)
        if len(self.problems) > before:
            return None  # expanding an invalid spec would only repeat these problems
        name = self._name(data)
        before = len(self.problems)
        jobs = list(self._jobs(data))
        self._refuse_mixed_sandbox(jobs, data)
        if len(self.problems) > before:
            return None
        expander = Expander(self, name, jobs, data.get("max_requests", self.max_requests))
        expander.run()
        if self.problems:
            return None
        return LoadedSpec(
            path=self.path,
            display=self.display,
            name=name,
            requests=tuple(expander.requests),
            images=dict(expander.found_images),
            sandbox=bool(jobs) and jobs[0].provider == SANDBOX,
            budget=data.get("budget"),
        )

    def _read(self) -> str:
        try:
            raw = read_regular(self.path, MAX_SPEC_BYTES)
        except NotRegular:
            self.problem(
                Mark(1, 1), "this is not a regular file (a pipe, a device?) — specs are files"
            )
            raise _Stop from None
        except OSError as exc:
            self.problem(Mark(1, 1), f"cannot read the spec ({exc.strerror}) — check the file")
            raise _Stop from None
        if len(raw) > MAX_SPEC_BYTES:
            size = self.path.stat().st_size
            self.problem(
                Mark(1, 1),
                f"the spec is {size:,} bytes; the limit is {MAX_SPEC_BYTES:,} — "
                "split it into several specs",
            )
            raise _Stop
        try:
            return raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = raw.count(b"\n", 0, exc.start) + 1
            col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
            self.problem(Mark(line, col), "the spec is not UTF-8 text — save it as UTF-8")
            raise _Stop from None

    def _refuse_surrogates(self, data: Any) -> bool:
        """Report text holding a lone surrogate escape (`"\\ud800"`); return if any did."""
        found = False
        for where, text, is_key in _strings(data, ()):
            if SURROGATE.search(text):
                found = True
                message = (
                    "this text holds a lone surrogate escape (\\ud800-\\udfff), which is not "
                    "a character and cannot be sent as UTF-8 — write the character itself"
                )
                (self.at_key if is_key else self.at)(where, message)
        return found

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

    def _refuse_mixed_sandbox(self, jobs: list[Job], data: Mapping[str, Any]) -> None:
        """Refuse a spec whose jobs mix the sandbox with a paid provider.

        Sandbox results live in their own tree (`outputs/_sandbox/<name>/`) so they can
        never replace or pass for paid ones; one spec has one folder.
        """
        kinds = {job.provider == SANDBOX for job in jobs}
        if len(kinds) < 2:
            return
        job = next(j for j in jobs if j.provider == SANDBOX)
        own = "provider" in data.get("jobs", {}).get(job.name, {})
        where = (*job.path, "provider") if own else ("provider",)
        self.at(
            where,
            "this spec mixes provider sandbox with a paid provider — sandbox results are kept "
            "apart from paid ones, so put the sandbox jobs in a spec of their own (or use "
            "--sandbox to try the whole spec)",
        )

    def _check_schema(self, data: dict[str, Any]) -> None:
        validator = validator_for("spec.schema.json")
        for error in validator.iter_errors(data):
            for path, key_level, message in explain_schema_error(error):
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

    def _jobs(self, data: dict[str, Any]) -> Iterator[Job]:
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
            matrix_source = job if path else data
            matrix = matrix_source.get("matrix")
            if model_name is None and not _has_model_axis(matrix):
                self.at_key(
                    path,
                    f"{where} has no model — add model: (e.g. runway/gen4_turbo; `runner "
                    "models` lists them) or a matrix axis model: [...] to compare models",
                )
                continue
            if provider is None:
                continue
            endpoint, endpoint_path = _pick("endpoint", job, path, data)
            unsupported, _ = _pick("unsupported", job, path, data)
            params = dict(top_params)
            params.update({k: (v, (*path, "params", k)) for k, v in job.get("params", {}).items()})
            output = (job["output"], (*path, "output")) if "output" in job else top_output
            yield Job(
                name=name,
                path=path,
                provider=self.provider_override or provider,
                declared_provider=provider,
                model=model_name,
                model_path=model_path,
                endpoint=endpoint,
                endpoint_path=endpoint_path,
                skip_unsupported=unsupported == "skip",
                vars={**data.get("vars", {}), **job.get("vars", {})},
                var_paths={
                    **{name: ("vars", name) for name in data.get("vars", {})},
                    **{name: (*path, "vars", name) for name in job.get("vars", {})},
                },
                params=params,
                output=output,
                matrix=matrix,
                matrix_path=(*path, "matrix"),
            )


def _has_model_axis(matrix: Any) -> bool:
    """Whether a matrix names the model itself (an axis or an include entry `model:`)."""
    if not isinstance(matrix, Mapping):
        return False
    includes = matrix.get("include") or []
    return "model" in matrix or any(isinstance(e, Mapping) and "model" in e for e in includes)


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
