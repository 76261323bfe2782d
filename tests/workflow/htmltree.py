"""A minimal HTML tree (stdlib html.parser) so tests can query the gallery's structure."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser

VOID = {"meta", "link", "img", "br", "hr", "input", "source", "track", "wbr"}


@dataclass
class Node:
    """One element: tag, attributes, children and the text directly inside it."""

    tag: str
    attrs: dict[str, str | None] = field(default_factory=dict)
    children: list[Node] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)

    def iter(self, tag: str | None = None) -> Iterator[Node]:
        """Yield this node and every descendant with `tag` (all when None), in order."""
        if tag is None or self.tag == tag:
            yield self
        for child in self.children:
            yield from child.iter(tag)

    def find_all(self, tag: str, cls: str | None = None) -> list[Node]:
        """Return descendants with `tag` (and CSS class `cls` when given)."""
        return [
            n for n in self.iter(tag)
            if cls is None or cls in (n.attrs.get("class") or "").split()
        ]

    def text(self) -> str:
        """Return all text inside, children included, joined."""
        return "".join([*self.texts, *(c.text() for c in self.children)])


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root")
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attrs))
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return
        raise AssertionError(f"stray </{tag}>")

    def handle_data(self, data: str) -> None:
        self.stack[-1].texts.append(data)


def parse(page: str) -> Node:
    """Parse `page` and check every element was closed."""
    builder = _Builder()
    builder.feed(page)
    builder.close()
    assert len(builder.stack) == 1, f"unclosed: {[n.tag for n in builder.stack[1:]]}"
    return builder.root
