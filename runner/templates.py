"""Jinja templates for spec values, rendered in a sandbox with bounded output.

Spec files come from pull requests and run in CI, so a template is untrusted code:

- `ImmutableSandboxedEnvironment`: no access to Python internals (`__class__`, ...),
  no mutation of lists and dicts; `StrictUndefined`: an unknown name is an error.
- A string that is exactly one `{{ expression }}` keeps the value's type
  (`"{{ seed }}"` renders the int 7, not "7").
- Bounded work: statements that loop or recurse (`for`, `macro`, `call`, `include`,
  ...) are refused; every operation that can grow a value (`*`, `**`, `+`, `%`, `~`,
  `join`, `replace`, `format`, ...) is checked *before* it runs against a per-render
  budget, so `'x' * 10**10` or doubling a string 40 times fails at once instead of
  exhausting memory. Rendered values are at most `MAX_RENDERED` characters.
- Deterministic: `random` and `lipsum` are removed; the same inputs render the same.

Rendering is a pure function of the names a template references, so results are
cached by those values: a 100,000-request matrix renders a prompt that only uses
`creature` once.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.filters import make_attrgetter
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_RENDERED = 100_000  # characters in one rendered value
MAX_WORK = 1_000_000  # characters/items all growing operations of one render may make
MAX_INT_BITS = 4096  # integers beyond ~1200 digits are never a sensible spec value
SURROGATE = re.compile("[\ud800-\udfff]")  # half of a UTF-16 pair: not a character
MAX_TEMPLATE = 20_000  # characters of template source
MAX_DEPTH = 32  # nested brackets, parentheses and filters: Python's own parser recurses on them
MAX_SECONDS = 1.0  # of CPU-bound template work per render, whatever it does
MAX_SPEC_SECONDS = 20.0  # of all renders of one spec together
# Filters that walk their input item by item: each item is counted against the budget,
# so a chain of maps over a large range costs what it does (n items x k filters).
_ITERATING_FILTERS = (
    "map", "select", "reject", "selectattr", "rejectattr", "sort", "unique", "list", "sum",
    "min", "max", "join", "groupby", "dictsort", "reverse", "first", "last", "count",
    "length", "items",
)

_WHOLE_EXPRESSION = re.compile(r"^\s*\{\{(?P<expr>.*)\}\}\s*$", re.DOTALL)
_FORMAT_WIDTH = re.compile(r"%[-#0 +]*(\d+|\*)?(?:\.(\d+|\*))?")
_FORBIDDEN_STATEMENTS: dict[type[nodes.Node], str] = {
    nodes.For: "for loops",
    nodes.Macro: "macros",
    nodes.CallBlock: "call blocks",
    nodes.FilterBlock: "filter blocks",
    nodes.Include: "include",
    nodes.Import: "import",
    nodes.FromImport: "import",
    nodes.Extends: "extends",
    nodes.Block: "blocks",
}
_SAFE_STR_METHODS = frozenset(
    [
        "lower",
        "upper",
        "title",
        "capitalize",
        "casefold",
        "swapcase",
        "strip",
        "lstrip",
        "rstrip",
        "startswith",
        "endswith",
        "split",
        "rsplit",
        "splitlines",
        "count",
        "find",
        "rfind",
        "removeprefix",
        "removesuffix",
        "isdigit",
        "isalpha",
        "isalnum",
        "isspace",
        "islower",
        "isupper",
        "isnumeric",
        "isdecimal",
    ]
)
_SAFE_FILTERS = frozenset(
    [
        "abs",
        "attr",
        "capitalize",
        "count",
        "d",
        "default",
        "dictsort",
        "e",
        "escape",
        "first",
        "float",
        "forceescape",
        "groupby",
        "int",
        "items",
        "join",
        "last",
        "length",
        "list",
        "lower",
        "map",
        "max",
        "min",
        "reject",
        "rejectattr",
        "replace",
        "reverse",
        "round",
        "select",
        "selectattr",
        "sort",
        "string",
        "sum",
        "title",
        "tojson",
        "trim",
        "truncate",
        "unique",
        "upper",
        "urlencode",
        "wordcount",
        "format",
    ]
)
_SAFE_TESTS_REMOVED = ("in",)  # `select('in', big)` over a big range is quadratic
_OFFERED_TESTS = tuple(sorted(set(jinja2.tests.TESTS) - set(_SAFE_TESTS_REMOVED)))


class TemplateProblem(Exception):
    """A template that cannot be compiled or rendered; the message says why."""


class _Budget:
    """Work and time left for the current render (one render at a time per environment)."""

    def __init__(self) -> None:
        self.left = MAX_WORK
        self.deadline = time.monotonic() + MAX_SECONDS

    def tick(self, what: str) -> None:
        """Count one item of iteration work (and look at the clock now and then)."""
        self.spend(1, what)

    def spend(self, items: int, what: str) -> None:
        """Count `items` items of iteration work."""
        before = self.left
        self.left -= items
        if self.left < 0:
            msg = (
                f"{what} would walk more than {MAX_WORK:,} items in one value; templates are "
                "bounded — work on fewer items"
            )
            raise TemplateProblem(msg)
        if before >> 10 != self.left >> 10 and time.monotonic() > self.deadline:
            self._late(what)  # looked at every 1,024 items

    def _late(self, what: str) -> None:
        msg = (
            f"{what} ran for more than {MAX_SECONDS:g} s in one value; templates are bounded "
            "— simplify the expression"
        )
        raise TemplateProblem(msg)

    def charge(self, amount: int, what: str) -> None:
        if time.monotonic() > self.deadline:
            self._late(what)
        if amount > MAX_RENDERED or amount > self.left:
            msg = (
                f"{what} would build a value of {amount:,} characters or items; "
                f"templates are limited to {MAX_RENDERED:,} — make the value smaller"
            )
            raise TemplateProblem(msg)
        self.left -= amount


def _size(value: Any) -> int:
    """Return a cheap size estimate: characters of a string, items of a collection."""
    if isinstance(value, str | list | tuple | dict | range):
        return len(value)
    return 1


class _BoundedCodeGenerator(CodeGenerator):
    """Compile `a ~ b` through the environment so concatenation is budgeted."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.bounded_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class SpecEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox spec templates render in."""

    code_generator_class = _BoundedCodeGenerator
    intercepted_binops = frozenset(["+", "*", "**", "%"])

    def __init__(self) -> None:
        super().__init__(
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
            cache_size=0,  # we cache compiled templates ourselves
        )
        self.budget = _Budget()
        self.filters = {name: func for name, func in self.filters.items() if name in _SAFE_FILTERS}
        for name in _ITERATING_FILTERS:
            if name in self.filters:
                self.filters[name] = self._counted(name, self.filters[name])
        self.filters["join"] = self._counted("join", self._join)
        self.filters["replace"] = self._replace
        self.filters["format"] = self._format
        for name in _SAFE_TESTS_REMOVED:
            self.tests.pop(name, None)
        self.globals.pop("lipsum", None)

    # -- budgeted operations -------------------------------------------------------

    def _counted(self, name: str, func: Callable[..., Any]) -> Callable[..., Any]:
        """Wrap a filter so every item it reads, and every item it yields, is counted."""
        env = self

        @functools.wraps(func)  # keeps jinja's pass_context / pass_environment marks
        def counted(*args: Any, **kwargs: Any) -> Any:
            walked = []
            for arg in args:
                if isinstance(arg, Iterator):
                    arg = env._metered(arg, name)  # a lazy result of an earlier filter
                elif isinstance(arg, list | tuple | range | dict):
                    env.budget.spend(len(arg), name)
                walked.append(arg)
            result = func(*walked, **kwargs)
            if isinstance(result, Iterator):
                return env._metered(result, name)
            return result

        return counted

    def _metered(self, items: Iterable[Any], name: str) -> Iterator[Any]:
        for item in items:
            self.budget.tick(name)
            yield item

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            if isinstance(left, int) and isinstance(right, int):
                self._check_bits(left.bit_length() + right.bit_length(), "*")
            elif isinstance(right, int) and isinstance(left, str | list | tuple):
                self.budget.charge(len(left) * max(right, 0), "'*'")
            elif isinstance(left, int) and isinstance(right, str | list | tuple):
                self.budget.charge(len(right) * max(left, 0), "'*'")
        elif operator == "**":
            if isinstance(left, int) and isinstance(right, int) and right > 0:
                self._check_bits(max(left.bit_length(), 1) * right, "**")
        elif operator == "+":
            if isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
                self.budget.charge(len(left) + len(right), "'+'")
        elif operator == "%" and isinstance(left, str):
            self._check_format(left, right)
        return super().call_binop(context, operator, left, right)

    def bounded_concat(self, parts: tuple[Any, ...]) -> str:
        texts = [str(part) for part in parts]
        self.budget.charge(sum(len(text) for text in texts), "'~'")
        return "".join(texts)

    def _join(self, value: Any, d: str = "", attribute: Any = None) -> str:
        items = [str(item) for item in value] if attribute is None else None
        if items is None:
            getter = make_attrgetter(self, attribute)
            items = [str(getter(item)) for item in value]
        self.budget.charge(sum(map(len, items)) + len(d) * len(items), "join")
        return str(d).join(items)

    def _replace(self, s: Any, old: str, new: str, count: int | None = None) -> str:
        text = str(s)
        hits = text.count(old) if old else len(text) + 1
        if count is not None and count >= 0:
            hits = min(hits, count)
        self.budget.charge(len(text) + hits * max(len(new) - len(old), 0), "replace")
        return text.replace(old, new, -1 if count is None else count)

    def _format(self, value: str, *args: Any, **kwargs: Any) -> str:
        if args and kwargs:
            msg = "format takes positional or keyword arguments, not both — pick one"
            raise TemplateProblem(msg)
        self._check_format(str(value), args or kwargs)
        return str(value) % (kwargs or args)

    def _check_format(self, text: str, args: Any) -> None:
        self.budget.charge(len(text) + sum(_size(a) for a in _as_tuple(args)), "'%'")
        for match in _FORMAT_WIDTH.finditer(text):
            for number in match.groups():
                if number == "*" or (number is not None and int(number) > 100):
                    msg = "%-format widths and precisions over 100 are refused — use a smaller one"
                    raise TemplateProblem(msg)

    def _check_bits(self, bits: int, op: str) -> None:
        if bits > MAX_INT_BITS:
            msg = (
                f"'{op}' would build an integer of about {bits:,} bits; the limit is "
                f"{MAX_INT_BITS:,} — use smaller numbers"
            )
            raise TemplateProblem(msg)

    # -- attribute policy ----------------------------------------------------------

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, str) and callable(value):
            return attr in _SAFE_STR_METHODS  # no growing methods: center, zfill, format...
        return bool(super().is_safe_attribute(obj, attr, value))

    def wrap_str_format(self, value: Any) -> None:
        return None  # str.format/format_map are refused by is_safe_attribute instead


_BLOCK = re.compile(r"\{[{%](.*?)(?:[}%]\}|$)", re.DOTALL)


def _nesting(source: str) -> int:
    """Return how deeply brackets and filter chains nest in a template's expressions.

    A chain `x|f|g|h` compiles to f(g(h(x))), so each filter counts as a level too; text
    outside `{{ }}` and `{% %}` is not code and does not count.
    """
    deepest = 0
    for block in _BLOCK.finditer(source):
        depth = level = 0
        for char in block[1]:
            if char in "([{":
                depth += 1
                level = max(level, depth)
            elif char in ")]}":
                depth = max(depth - 1, 0)
        deepest = max(deepest, level + block[1].count("|"))
    return deepest


def _as_tuple(args: Any) -> tuple[Any, ...]:
    if isinstance(args, tuple):
        return args
    if isinstance(args, Mapping):
        return tuple(args.values())
    return (args,)


CACHE_LIMIT = 4096  # whole results kept per template before it is joined from its pieces
PIECE_LIMIT = 65_536  # results kept per expression of a text template


class _Cache:
    """One template's rendered results by the values of the names it reads."""

    __slots__ = ("entries", "whole")

    def __init__(self) -> None:
        self.entries: dict[Any, Any] = {}
        # False once a text template has shown that its values hardly repeat (an output
        # path reading the seed): then it is joined from its pieces' caches each time.
        self.whole = True


@dataclass(frozen=True)
class Template:
    """One compiled spec string: a constant, a typed expression, or a text template.

    A text template made only of text and `{{ expression }}`s (no statements) also has
    `pieces`: its text and its expressions, each expression a `Template` of its own that
    is rendered and cached by the few names it reads, so `"{{ subject }}/seed-{{ seed }}"`
    renders `subject` once per subject and `seed` not at all (a bare name is looked up).
    """

    source: str
    names: frozenset[str]  # the variables it reads (for caching)
    _render: Callable[[Mapping[str, Any]], Any] | None  # None: a constant
    pieces: tuple[str | Template, ...] | None = None
    direct: str | None = None  # the name, when the template is exactly one bare `{{ name }}`
    cache: _Cache = field(default_factory=_Cache, compare=False, repr=False)

    @cached_property
    def ordered(self) -> tuple[str, ...]:
        """The names it reads, in a fixed order (the cache key's order)."""
        return tuple(sorted(self.names))

    @property
    def is_constant(self) -> bool:
        return self._render is None


class Renderer:
    """Compile and render spec templates, caching both."""

    def __init__(self) -> None:
        self.env = SpecEnvironment()
        self._compiled: dict[str, Template] = {}
        self.spent = 0.0  # seconds all renders took (a spec's templates are bounded in sum)

    def compile(self, source: str) -> Template:
        """Return the compiled template for `source`; raise `TemplateProblem` if bad."""
        cached = self._compiled.get(source)
        if cached is None:
            cached = self._compile(source)
            self._compiled[source] = cached
        return cached

    def _compile(self, source: str) -> Template:
        if "{{" not in source and "{%" not in source and "{#" not in source:
            return Template(source, frozenset(), None)
        if len(source) > MAX_TEMPLATE:
            msg = (
                f"the template is {len(source):,} characters; the limit is {MAX_TEMPLATE:,} — "
                "shorten it"
            )
            raise TemplateProblem(msg)
        depth = _nesting(source)
        if depth > MAX_DEPTH:
            msg = (
                f"the template nests {depth} levels deep (brackets, parentheses and filters); "
                f"the limit is {MAX_DEPTH} — split it into simpler values"
            )
            raise TemplateProblem(msg)
        ast = self._guard(lambda: self.env.parse(source))
        for node_type, what in _FORBIDDEN_STATEMENTS.items():
            if ast.find(node_type) is not None:
                msg = (
                    f"{what} are not allowed in spec templates (they can run unbounded) — "
                    "use filters such as join, map or select instead"
                )
                raise TemplateProblem(msg)
        names = frozenset(self._guard(lambda: meta.find_undeclared_variables(ast)))
        whole = _WHOLE_EXPRESSION.match(source)
        if whole and "{{" not in whole["expr"] and "{%" not in whole["expr"]:
            expression = self._guard(
                lambda: self.env.compile_expression(whole["expr"], undefined_to_none=False)
            )

            def render_expression(context: Mapping[str, Any]) -> Any:
                value = expression(**context)
                if isinstance(value, jinja2.Undefined):
                    str(value)  # StrictUndefined raises UndefinedError with the name
                return _plain(value)

            return Template(source, names, render_expression, direct=_bare_name(ast))
        pieces = self._pieces(ast)
        if pieces is not None:

            def render_joined(context: Mapping[str, Any]) -> str:
                return self._joined(pieces, context)

            return Template(source, names, render_joined, pieces)
        template = self._guard(lambda: self.env.from_string(source))

        template_globals = dict(template.globals)

        def render_text(context: Mapping[str, Any]) -> str:
            # A shared context over our own dict: half the cost of generate(), which
            # copies the globals into a fresh parent dict on every render.
            variables = dict(template_globals)
            variables.update(context)
            pieces: list[str] = []
            total = 0
            frame = template.new_context(variables, shared=True)
            for piece in template.root_render_func(frame):
                total += len(piece)
                if total > MAX_RENDERED:
                    raise _text_too_long()
                pieces.append(piece)
            return "".join(pieces)

        return Template(source, names, render_text)

    def _pieces(self, ast: nodes.Template) -> tuple[str | Template, ...] | None:
        """Split a statement-free text template into its text and its expressions.

        Jinja renders such a template as the concatenation of its text and `str()` of each
        expression's value, so rendering the expressions one by one gives the same text.
        None when the template holds anything else (`{% set %}`, `{% if %}`, ...).
        """
        pieces: list[str | Template] = []
        for node in ast.body:
            if not isinstance(node, nodes.Output):
                return None
            for child in node.nodes:
                if isinstance(child, nodes.TemplateData):
                    pieces.append(child.data)
                    continue
                pieces.append(self._expression(child))
        return tuple(pieces)

    def _expression(self, node: nodes.Expr) -> Template:
        """Compile one `{{ expression }}` of a text template as a template of its own."""
        probe = nodes.Template([nodes.Output([node])])
        probe.set_environment(self.env)
        names = frozenset(meta.find_undeclared_variables(probe))
        # What Environment.compile_expression builds from source, here from the node.
        body = nodes.Template([nodes.Assign(nodes.Name("result", "store"), node, lineno=1)],
                              lineno=1)
        compiled = self._guard(lambda: self.env.from_string(body))
        expression = jinja2.environment.TemplateExpression(compiled, False)
        direct = node.name if isinstance(node, nodes.Name) else None
        return Template("", names, _as_text(expression), direct=direct)

    def _joined(self, pieces: tuple[str | Template, ...], context: Mapping[str, Any]) -> str:
        """Render a text template from its pieces, each expression cached on its own."""
        parts: list[str] = []
        total = 0
        fresh = True  # one budget for the whole text, as when Jinja renders it at once
        for piece in pieces:
            if isinstance(piece, str):
                text = piece
            elif (direct := piece.direct) is not None and direct in context:
                # What Jinja outputs for `{{ name }}`; spec values hold no lone surrogates.
                text = str(context[direct])
            else:
                entries = piece.cache.entries
                key = _key(piece.ordered, context)
                found = entries.get(key)
                if found is None:
                    assert piece._render is not None
                    found = self._evaluate(piece._render, context, fresh=fresh)
                    fresh = False
                    if len(entries) < PIECE_LIMIT:
                        entries[key] = found
                text = found
            total += len(text)
            if total > MAX_RENDERED:
                raise _text_too_long()
            parts.append(text)
        return "".join(parts)

    @staticmethod
    def _guard(build: Callable[[], Any]) -> Any:
        try:
            return build()
        except RecursionError:
            msg = "the template is nested too deeply to compile — split it into simpler values"
            raise TemplateProblem(msg) from None
        except jinja2.TemplateSyntaxError as exc:
            text = exc.message or "invalid template"
            if text.startswith("No filter named"):
                text += " (spec templates offer: " + ", ".join(sorted(_SAFE_FILTERS)) + ")"
            elif text.startswith("No test named"):
                text += " (spec templates offer the tests: " + ", ".join(_OFFERED_TESTS) + ")"
            msg = f"template syntax error: {text} — check the {{{{ }}}} and {{% %}} pairs"
            raise TemplateProblem(msg) from None

    def render(self, template: Template, context: Mapping[str, Any]) -> Any:
        """Render `template` with `context`; raise `TemplateProblem` with the reason."""
        render = template._render
        if render is None:
            return template.source
        direct = template.direct
        if direct is not None and direct in context:
            return _plain(context[direct])  # `{{ seed }}`: the value itself, nothing to render
        cache = template.cache
        key: Any = None
        if cache.whole:
            key = _key(template.ordered, context)
            cached = cache.entries.get(key, _MISSING)
            if cached is not _MISSING:
                return cached
        # A text template of pieces is joined from them, each checked on its own.
        value = render(context) if template.pieces is not None else self._evaluate(render, context)
        if cache.whole:
            if len(cache.entries) < CACHE_LIMIT:
                cache.entries[key] = value
            elif template.pieces is not None:
                cache.whole = False
                cache.entries.clear()
        return value

    def _evaluate(
        self, render: Callable[[Mapping[str, Any]], Any], context: Mapping[str, Any],
        *, fresh: bool = True,
    ) -> Any:
        """Run a compiled template within the budgets; translate what goes wrong."""
        if self.spent > MAX_SPEC_SECONDS:
            msg = (
                f"this spec's templates have taken more than {MAX_SPEC_SECONDS:g} s to render "
                "— make them simpler, or make them read fewer per-request values"
            )
            raise TemplateProblem(msg)
        if fresh:
            self.env.budget = _Budget()
        started = time.monotonic()
        try:
            value = render(context)
        except TemplateProblem:
            raise
        except jinja2.UndefinedError as exc:
            raise TemplateProblem(_undefined_message(exc, context)) from None
        except jinja2.TemplateError as exc:
            msg = f"template error: {exc.message or exc} — use variables, filters and plain values"
            raise TemplateProblem(msg) from None
        except RecursionError:
            msg = "the expression recurses too deeply — simplify it"
            raise TemplateProblem(msg) from None
        except (ArithmeticError, TypeError, ValueError, LookupError) as exc:
            msg = f"template error: {type(exc).__name__}: {exc} — fix the expression"
            raise TemplateProblem(msg) from None
        finally:
            self.spent += time.monotonic() - started
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        if SURROGATE.search(shown):  # '\\ud800' in a Jinja string: not UTF-8, cannot be sent
            msg = "the result holds a lone surrogate (\\ud800-\\udfff) — write the character itself"
            raise TemplateProblem(msg)
        return value


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING = _Missing()
_SCALARS = frozenset([str, int, float, bool, type(None)])


def _key(names: tuple[str, ...], context: Mapping[str, Any]) -> Any:
    """Return the cache key of the values `names` have in `context`."""
    if len(names) == 1:
        value = context.get(names[0], _MISSING)
        return (type(value), value) if type(value) in _SCALARS else _freeze(value)
    return tuple([_freeze(context.get(name, _MISSING)) for name in names])


def _freeze(value: Any) -> Any:
    """Return a hashable key for a context value (types kept apart: 1, 1.0, True)."""
    if isinstance(value, str | int | float | bool | None | _Missing):
        return (type(value), value)
    return json.dumps(value, sort_keys=True, default=repr)


def _bare_name(ast: nodes.Template) -> str | None:
    """Return `name` when a template is exactly `{{ name }}`, else None."""
    if len(ast.body) == 1 and isinstance(ast.body[0], nodes.Output):
        children = [c for c in ast.body[0].nodes if not isinstance(c, nodes.TemplateData)]
        if len(children) == 1 and isinstance(children[0], nodes.Name):
            return str(children[0].name)
    return None


def _as_text(expression: Any) -> Callable[[Mapping[str, Any]], str]:
    """Return a function giving the text Jinja outputs for an expression in a context."""

    def evaluate(context: Mapping[str, Any]) -> str:
        return str(expression(**context))  # an Undefined value raises here, as in Jinja

    return evaluate


def _text_too_long() -> TemplateProblem:
    """The error for a rendered text past `MAX_RENDERED` characters (whole or by pieces)."""
    return TemplateProblem(f"the rendered text passes {MAX_RENDERED:,} characters — shorten it")


def _too_many_items() -> TemplateProblem:
    """The error for a list or mapping value of more than `MAX_RENDERED` items."""
    return TemplateProblem(f"the value has more than {MAX_RENDERED:,} items — make it smaller")


def _plain(value: Any) -> Any:
    """Return a typed expression's value as JSON data, or raise if it is not data."""
    if isinstance(value, str | bool | int | float) or value is None:
        if isinstance(value, str) and len(value) > MAX_RENDERED:
            msg = f"the value passes {MAX_RENDERED:,} characters — shorten it"
            raise TemplateProblem(msg)
        return value
    if isinstance(value, list | tuple | range):
        if len(value) > MAX_RENDERED:
            raise _too_many_items()
        return [_plain(item) for item in value]
    if isinstance(value, Mapping):
        if len(value) > MAX_RENDERED:
            raise _too_many_items()
        return {str(k): _plain(v) for k, v in value.items()}
    msg = (
        f"the expression gives a {type(value).__name__}, not data — make it give text, a "
        "number, a list or a mapping"
    )
    raise TemplateProblem(msg)


def _undefined_message(exc: jinja2.UndefinedError, context: Mapping[str, Any]) -> str:
    text = exc.message or str(exc)
    match = re.match(r"'([^']+)' is undefined", text)
    if match is None:
        return f"template error: {text} — define it under vars or as a matrix axis"
    name = match[1]
    known = sorted(k for k in context if not k.startswith("_"))
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {close[0]!r}?" if close else "define it under vars or as a matrix axis"
    return f"{name!r} is undefined — {hint} (known: {', '.join(known) or 'none'})"
