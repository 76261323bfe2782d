"""Explain jsonschema errors in words: on a spec file, and on the request bodies it makes.

`explain_schema_error` turns an error on a spec into (path, point-at-key?, message) items
that `runner.spec` positions as file:line:col problems. `BodyValidator` checks expanded
request bodies against a model's schema (cached per parameter value) and explains each
error as an `_Issue` tied to the body key that caused it. `dotted` and `short` render
document paths and values for messages.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from runner.catalog import PORTABLE_NAMES, Model, Route, get_model, load_catalog
from runner.identity import canonical_json
from runner.request import replaced
from runner.schemas import validator_for
from runner.yamlpos import Path as DocPath

IMAGE_STAND_IN = "data:image/png;base64,iVBORw0KGgo="  # validates like any data: URI


# ------------------------------------------------------------------------ schema errors


def explain_schema_error(error: Any) -> Iterator[tuple[DocPath, bool, str]]:
    """Turn one jsonschema error on a spec into (path, point-at-key?, message) items."""
    path: DocPath = tuple(error.absolute_path)
    where = _where(path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    keyword = error.validator
    instance = error.instance
    if keyword == "additionalProperties" and isinstance(instance, dict):
        allowed = sorted(k for k, v in schema.get("properties", {}).items() if v != _NEVER)
        target = _route_of(schema.get("x-route"))
        for key in instance:
            if key in schema.get("properties", {}):
                continue
            if target is not None:
                model, route = target
                message = _unknown_parameter(model, route, key, allowed)
                yield (*path, key), True, f"{message} ({where})"
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
    needs = [e for e in error.context or () if e.validator == "required"]
    if keyword == "anyOf" and schema.get("x-hint") and needs:
        # "model:, or a matrix axis model:" — say the first thing required, and the hint.
        missing = needs[0].message.split("'")[1] if "'" in needs[0].message else "a key"
        yield path, True, f"{where}: {missing!r} is required — {schema['x-hint']}"
        return
    if keyword in ("anyOf", "oneOf") and isinstance(instance, dict) and error.context:
        # An axis written as a mapping: explain what is wrong with it as a range.
        for sub in sorted(error.context, key=lambda e: len(e.absolute_path), reverse=True):
            if sub.validator != "type":
                yield from explain_schema_error(sub)
                return
    advice = schema.get("x-hint")
    top_or_job = path in (("model",),) or (len(path) == 3 and path[0] == "jobs")
    if top_or_job and path[-1] == "model" and keyword != "not" and isinstance(instance, str):
        suggestion = load_catalog().suggest(instance)
        if suggestion is not None:
            advice = f"did you mean {suggestion!r}? (`runner models` lists them)"
    what = _what(keyword, instance, schema, error)
    if keyword == "not" and advice:
        yield path, True, f"{_where_key(path)} is not allowed here — {advice}"
        return
    if keyword == "required":
        missing = error.message.split("'")[1] if "'" in error.message else "a key"
        yield path, True, f"{where}: {missing!r} is required — {advice or 'add it'}"
        return
    yield path, False, f"{_where_key(path)}: {what} — {advice or 'see schemas/spec.schema.json'}"


_NEVER = {"not": {}, "x-hint": "set model: at the top level or in the job, not inside params"}


def _route_of(mark: Any) -> tuple[Model, Route] | None:
    """Return the model and route a generated params schema names (`x-route`)."""
    if not isinstance(mark, str) or "@" not in mark:
        return None
    name, _, route_name = mark.rpartition("@")
    model = get_model(name)
    route = model.route(route_name) if model is not None else None
    return (model, route) if model is not None and route is not None else None


def _what(keyword: str, instance: Any, schema: Mapping[str, Any], error: Any) -> str:
    shown = short(instance)
    if keyword == "enum":
        return f"{shown} is not allowed"
    if keyword == "const":
        return f"{shown} is not allowed (must be {short(schema.get('const'))})"
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
    return f"in {dotted(path)}" if path else "at the top level"


def _where_key(path: DocPath) -> str:
    return dotted(path) if path else "the spec"


def dotted(path: DocPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def short(value: Any, limit: int = 60) -> str:
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


# A body key: its name, whether it holds an image, its texts' problems, its plain test.
_Step = tuple[str, bool, dict[str, list[_Issue]], Callable[[Any], bool] | None]


class BodyValidator:
    """Validate request bodies against one model route's schema, caching per parameter value.

    Model schemas are flat (`properties` + `required` + `additionalProperties: false`),
    so each parameter can be checked on its own and the result reused: a 100,000-seed
    sweep validates its prompt once, not 100,000 times. A schema that is not flat is
    validated whole for every body.
    """

    TEXTS = 65_536  # remembered texts per key; past that a text is checked every time

    def __init__(self, model: Model, route: Route) -> None:
        self.model = model
        self.route = route
        self.images = frozenset(route.images.top_level())
        self.nested_images = route.images.top_level() != route.images.all()
        self.full = validator_for(route.schema_file)
        schema = self.full.schema
        self.properties: Mapping[str, Any] = schema.get("properties", {})
        self.separable = set(schema) <= _SEPARABLE and schema.get("additionalProperties") is False
        # Keys in body order -> the problems of which keys are there, and per key (whether
        # it holds an image, its texts' problems) for the loop over the values.
        self.by_keys: dict[tuple[str, ...], tuple[list[_Issue], tuple[_Step, ...]]] = {}
        self.by_text: dict[str, dict[str, list[_Issue]]] = {}  # key -> text -> its problems
        self.by_value: dict[tuple[Any, ...], list[_Issue]] = {}  # (key, type, value): the rest
        self.sub = {key: self.full.evolve(schema=sub) for key, sub in self.properties.items()}
        quick = {key: _quick_check(sub) for key, sub in self.properties.items()}
        self.quick = {key: check for key, check in quick.items() if check is not None}

    def check(self, body: Mapping[str, Any]) -> list[_Issue]:
        """Return every problem with `body` (images may be sha256: references)."""
        if self.nested_images or not self.separable:
            body = self._standin(body)
        if not self.separable:
            return [self._issue(e) for e in self.full.iter_errors(body)]
        keys = tuple(body)
        layout = self.by_keys.get(keys)
        if layout is None:  # which keys are there: once per distinct set of keys
            standin = self._standin(body)
            issues = [self._issue(e) for e in self.full.iter_errors(standin) if not e.path]
            steps = tuple(
                (key, key in self.images, self.by_text.setdefault(key, {}), self.quick.get(key))
                for key in keys
            )
            layout = self.by_keys[keys] = (issues, steps)
        issues, steps = layout
        found = list(issues)
        # body.values() follows the order of `keys`, which the steps were made from.
        for (key, image, texts, quick), value in zip(steps, body.values(), strict=True):
            if type(value) is str:  # most values: a text key holds a text, looked up alone
                if image and value.startswith("sha256:"):
                    value = IMAGE_STAND_IN  # a local image, sent as a data: URI
                cached = texts.get(value)
                if cached is None:
                    cached = self._value_issues(key, value)
                    if len(texts) < self.TEXTS:
                        texts[value] = cached
            elif quick is not None and quick(value):
                continue  # valid; a sweep's 100,000 seeds are not all remembered
            else:
                cached = self._cached_issues(key, value)
            if cached:
                found.extend(cached)
        return found

    def _cached_issues(self, key: str, value: Any) -> list[_Issue]:
        """Return the problems of a value that is not a text (nor passed by a plain test),
        remembered."""
        kind = type(value)
        cache_key = (key, kind, value) if kind in _SCALARS else (key, _freeze(value))
        cached = self.by_value.get(cache_key)
        if cached is None:
            cached = self.by_value[cache_key] = self._schema_issues(key, value)
        return cached

    def _value_issues(self, key: str, value: Any) -> list[_Issue]:
        """Return the problem with one parameter's value (none, or the first one)."""
        quick = self.quick.get(key)
        return [] if quick is not None and quick(value) else self._schema_issues(key, value)

    def _schema_issues(self, key: str, value: Any) -> list[_Issue]:
        """Return what jsonschema finds wrong with one parameter's value (its first problem:
        "5" as text needs no second line saying 5|10)."""
        sub = self.sub.get(key)
        errors = [] if sub is None else list(sub.iter_errors(value))
        return [self._issue(e, key) for e in errors[:1]]

    def _standin(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Return a copy of `body` with each sha256: image reference as a data: URI."""
        standin = dict(body)
        for key in self.images:
            if key in body and str(body[key]).startswith("sha256:"):
                standin[key] = IMAGE_STAND_IN
        if self.nested_images:  # keyframes.frame0.url, image_urls.*: stand in where they are
            for path, value in list(self.route.image_values(standin)):
                if value.startswith("sha256:"):
                    standin = replaced(standin, path, IMAGE_STAND_IN)
        return standin

    def _issue(self, error: Any, key: str | None = None) -> _Issue:
        path = tuple(error.absolute_path)
        if key is None and path:
            key, path = str(path[0]), path[1:]
        return _body_issue(self.model, self.route, key, path, error)


_SCALARS = frozenset([str, int, float, bool, type(None)])
# Keywords that never make a value invalid (annotations).
_ANNOTATIONS = frozenset(["description", "title", "default", "examples", "deprecated", "$comment"])


def _quick_check(schema: Any) -> Callable[[Any], bool] | None:
    """Return a plain test that a value is valid, for the simplest parameter schemas.

    An integer range (a seed) or a text with length bounds: values that pass are valid,
    as jsonschema would find; a value that fails goes to jsonschema, which says why. It
    spares the validator a jsonschema pass for each of a sweep's distinct seeds. None
    for any other schema.
    """
    if not isinstance(schema, dict):
        return None
    kind = schema.get("type")  # none (annotations only, or `const`...): left to jsonschema
    bounds = set(schema) - _ANNOTATIONS - {"type"}
    if kind == "integer" and bounds <= {"minimum", "maximum"}:
        low, high = schema.get("minimum"), schema.get("maximum")
        if not all(type(b) in (int, float) for b in (low, high) if b is not None):
            return None
        return lambda value: type(value) is int and (low is None or value >= low) and (
            high is None or value <= high
        )
    if kind == "string" and bounds <= {"minLength", "maxLength"}:
        shortest, longest = schema.get("minLength", 0), schema.get("maxLength")
        if type(shortest) is not int or (longest is not None and type(longest) is not int):
            return None
        return lambda value: type(value) is str and shortest <= len(value) and (
            longest is None or len(value) <= longest
        )
    return None


def _freeze(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return (type(value), value)
    return canonical_json(value)


def _body_issue(
    model: Model, route: Route, key: str | None, subpath: DocPath, error: Any
) -> _Issue:
    keyword = error.validator
    schema = error.schema if isinstance(error.schema, dict) else {}
    instance = error.instance
    name = model.name
    params = [p for p in route.params if p != "model"]
    portable = [p for p in route.fields if p not in params]
    if keyword == "additionalProperties" and isinstance(instance, dict):
        extras = [k for k in instance if k not in route.params]
        extra = extras[0] if extras else "?"
        return _Issue(extra, (), _unknown_parameter(model, route, extra, params + portable), True)
    if keyword == "required":
        missing = error.message.split("'")[1] if "'" in error.message else "a parameter"
        example = "images/first-frame.png" if missing in route.images.all() else "..."
        also = route.portable_for(missing)
        written = f"{missing} (or {', '.join(also)})" if also and missing not in also else missing
        message = f"{name} needs {written} — add it under params (e.g. {missing}: {example})"
        return _Issue(None, (), message, True, missing)
    label = key or "the request"
    alias = [p for p in route.portable_for(key) if p != key] if key else []
    if alias:
        label = f"{alias[0]} ({key})"
    shown = short(instance)
    if keyword == "enum":
        options = ", ".join(str(o) for o in schema.get("enum", []))
        message = f"{label} {shown} is not accepted by {name} — use one of: {options}"
        if isinstance(instance, int) and "ratio" in (key, *alias):
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
    elif keyword == "pattern" and key in route.images.all():
        message = f"{label} must be a local image path, an https:// URL or a data: URI"
    else:
        message = f"{label}: {error.message} ({name})"
    return _Issue(key, subpath, message, False)


def _unknown_parameter(model: Model, route: Route, extra: str, known: list[str]) -> str:
    """Say that `model` has no parameter `extra`, and what it has instead."""
    name = model.name
    if extra in ("image", "last_image", "image_url", "tail_image_url", "last_image_url"):
        if route.images.first is None:
            return (
                f"{name} takes no image: it is text-to-video — remove {extra}, or choose an "
                "image-to-video model (`runner models --capability image-to-video`)"
            )
        if extra in ("last_image", "tail_image_url", "last_image_url"):
            return f"{name} takes no last frame — remove {extra}"
    if extra == "seed":
        return (
            f"{name} takes no seed, so a seed changes nothing and every run gives another "
            "video — remove seed for it"
        )
    if extra in PORTABLE_NAMES:
        return f"{name} has no {extra} — remove it (`runner models {name}` lists what it takes)"
    close = difflib.get_close_matches(extra, known, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}?" if close else f"its parameters: {', '.join(known)}"
    return f"{name} has no parameter {extra!r} — {hint}"
