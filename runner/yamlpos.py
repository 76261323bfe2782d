"""Load YAML while keeping the file:line:col of every key and value.

Spec errors must point at the line that produced them, so loading returns plain
Python data (dicts, lists, scalars: what JSON Schema validates) plus two position
tables keyed by the path to each value.

The loader is deliberately stricter and safer than `yaml.safe_load`:

- YAML 1.2 core scalars: `16:9` stays the string "16:9" (YAML 1.1 reads it as the
  base-60 integer 969) and `no`/`on` stay strings; only true/false are booleans and
  timestamps are not parsed.
- Duplicate keys, non-text keys, unknown tags and non-finite numbers are problems.
- Alias bombs ("billion laughs") fail while composing: every node counts with its
  aliases expanded, and composing stops as soon as the total passes `max_nodes`,
  before any Python object is built. Nesting depth is bounded the same way.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

Path = tuple[str | int, ...]

MAX_NODES = 100_000  # expanded nodes per file; a real spec has a few hundred
MAX_DEPTH = 64  # nesting levels; a real spec has fewer than ten

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_MERGE = "tag:yaml.org,2002:merge"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_KINDS = {_INT: "a number", _FLOAT: "a number", _BOOL: "a boolean", _NULL: "null"}


@dataclass(frozen=True, slots=True)
class Mark:
    """A 1-based line and column in a file."""

    line: int
    col: int


@dataclass(frozen=True)
class Document:
    """A loaded YAML file: its data and where each key and value was written."""

    data: Any
    values: dict[Path, Mark] = field(repr=False)  # path -> where the value starts
    keys: dict[Path, Mark] = field(repr=False)  # path -> where its mapping key starts

    def at(self, path: Path) -> Mark:
        """Return where the value at `path` (or its nearest written parent) starts."""
        for end in range(len(path), -1, -1):
            mark = self.values.get(path[:end])
            if mark is not None:
                return mark
        return Mark(1, 1)

    def key_at(self, path: Path) -> Mark:
        """Return where the key naming the value at `path` starts (else the value)."""
        mark = self.keys.get(path)
        return mark if mark is not None else self.at(path)


class YamlProblem(Exception):
    """A problem in the YAML itself, at a position."""

    def __init__(self, mark: Mark, message: str) -> None:
        super().__init__(message)
        self.mark = mark
        self.message = message


class _Core12Resolver(BaseResolver):
    """Implicit tags of the YAML 1.2 core schema (no base-60, no yes/no, no dates)."""


_Core12Resolver.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Core12Resolver.add_implicit_resolver(
    _INT,
    re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
    list("-+0123456789"),
)
_Core12Resolver.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+.0123456789"),
)
_Core12Resolver.add_implicit_resolver(
    _NULL, re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)
_Core12Resolver.add_implicit_resolver(_MERGE, re.compile(r"^(?:<<)$"), ["<"])


class _BoundedComposer(Composer):
    """A composer that counts nodes with aliases expanded and bounds depth."""

    max_nodes = MAX_NODES
    max_depth = MAX_DEPTH
    # Provided by yaml.parser.Parser, which comes before this class in _Loader's bases.
    check_event: Any
    peek_event: Any

    def __init__(self) -> None:
        super().__init__()
        self._expanded = 0
        self._depth = 0
        self._sizes: dict[int, int] = {}  # id(node) -> expanded size, once composed

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        if self.check_event(AliasEvent):
            event = self.peek_event()
            target = self.anchors.get(event.anchor)
            if target is not None:
                size = self._sizes.get(id(target))
                if size is None:
                    raise YamlProblem(
                        _mark(event.start_mark),
                        f"alias *{event.anchor} refers to a node that contains it — "
                        "remove the self-reference",
                    )
                self._count(size, event.start_mark)
            return self._compose(parent, index)
        event = self.peek_event()
        self._depth += 1
        if self._depth > self.max_depth:
            raise YamlProblem(
                _mark(event.start_mark),
                f"nesting is deeper than {self.max_depth} levels — flatten the structure",
            )
        before = self._expanded
        node = self._compose(parent, index)
        self._depth -= 1
        self._count(1, event.start_mark)
        self._sizes[id(node)] = self._expanded - before
        return node

    def _compose(self, parent: Node | None, index: Any) -> Node:
        node = super().compose_node(parent, index)
        assert node is not None  # compose_node returns None only at stream end
        return node

    def _count(self, size: int, where: Any) -> None:
        self._expanded += size
        if self._expanded > self.max_nodes:
            raise YamlProblem(
                _mark(where),
                f"the document expands to more than {self.max_nodes:,} values (aliases "
                "counted each time they are used) — remove the anchors/aliases that "
                "multiply it",
            )


class _Loader(Reader, Scanner, Parser, _BoundedComposer, _Core12Resolver):
    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        _BoundedComposer.__init__(self)
        _Core12Resolver.__init__(self)


def _mark(mark: Any) -> Mark:
    return Mark(mark.line + 1, mark.column + 1)


def load(text: str) -> Document:
    """Parse one YAML document, keeping positions; raise `YamlProblem` on bad YAML."""
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = _mark(mark) if mark is not None else Mark(1, 1)
        what = exc.problem or exc.context or "invalid YAML"
        raise YamlProblem(where, f"invalid YAML: {what} — fix the syntax here") from None
    except yaml.YAMLError as exc:
        raise YamlProblem(Mark(1, 1), f"invalid YAML: {exc} — fix the syntax") from None
    finally:
        loader.dispose()
    values: dict[Path, Mark] = {}
    keys: dict[Path, Mark] = {}
    if root is None:
        return Document(None, values, keys)
    data = _Builder(values, keys).build(root, ())
    return Document(data, values, keys)


class _Builder:
    """Turn composed nodes into plain data, recording each value's position."""

    def __init__(self, values: dict[Path, Mark], keys: dict[Path, Mark]) -> None:
        self.values = values
        self.keys = keys

    def build(self, node: Node, path: Path) -> Any:
        self.values[path] = _mark(node.start_mark)
        if isinstance(node, ScalarNode):
            return self._scalar(node)
        if isinstance(node, SequenceNode):
            if node.tag != _SEQ:
                raise self._bad_tag(node)
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        if isinstance(node, MappingNode):
            if node.tag != _MAP:
                raise self._bad_tag(node)
            return self._mapping(node, path)
        raise YamlProblem(_mark(node.start_mark), "unsupported YAML node")

    def _mapping(self, node: MappingNode, path: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        explicit: set[str] = set()
        for key_node, value_node in self._pairs(node):
            if not isinstance(key_node, ScalarNode):
                raise YamlProblem(_mark(key_node.start_mark), "a key must be plain text — quote it")
            if key_node.tag != _STR:
                raise YamlProblem(
                    _mark(key_node.start_mark),
                    f"key {key_node.value!r} is read as {_KINDS.get(key_node.tag, 'a value')}, "
                    f'not text — quote it: "{key_node.value}"',
                )
            key = str(key_node.value)
            merged = getattr(key_node, "_merged", False)
            if key in out:
                if merged:
                    continue  # explicit keys win over merged ones, as in YAML merge
                if key in explicit:
                    raise YamlProblem(
                        _mark(key_node.start_mark),
                        f"duplicate key {key!r} — each key may appear once per mapping",
                    )
            if not merged:
                explicit.add(key)
            child = (*path, key)
            self.keys[child] = _mark(key_node.start_mark)
            out[key] = self.build(value_node, child)
        return out

    def _pairs(self, node: MappingNode) -> Iterator[tuple[Node, Node]]:
        """Yield key/value nodes, explicit ones first, then `<<` merged ones."""
        merges: list[MappingNode] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                if isinstance(value_node, MappingNode):
                    merges.append(value_node)
                elif isinstance(value_node, SequenceNode) and all(
                    isinstance(item, MappingNode) for item in value_node.value
                ):
                    merges.extend(value_node.value)
                else:
                    raise YamlProblem(
                        _mark(value_node.start_mark),
                        "a << merge needs a mapping or a list of mappings — use *anchor",
                    )
                continue
            yield key_node, value_node
        for source in merges:
            for key_node, value_node in self._pairs(source):
                marked = ScalarNode(
                    key_node.tag, key_node.value, key_node.start_mark, key_node.end_mark
                )
                marked._merged = True  # type: ignore[attr-defined]
                yield marked, value_node

    def _scalar(self, node: ScalarNode) -> Any:
        tag = node.tag
        text = node.value
        if tag == _STR:
            return text
        if tag == _NULL:
            return None
        if tag == _BOOL:
            return text.lower() == "true"
        if tag == _INT:
            if text.startswith(("0o", "0x")):
                return int(text, 0)
            return int(text, 10)
        if tag == _FLOAT:
            value = float(text.lower().replace(".inf", "inf").replace(".nan", "nan"))
            if not math.isfinite(value):
                raise YamlProblem(
                    _mark(node.start_mark), f"{text} is not a finite number — use a number"
                )
            return value
        raise self._bad_tag(node)

    @staticmethod
    def _bad_tag(node: Node) -> YamlProblem:
        return YamlProblem(
            _mark(node.start_mark),
            f"YAML tag {node.tag} is not supported in specs — remove the tag",
        )
