"""Let mutmut reach decorated functions: in the mutation copy only, `@d def f` becomes
`def f` followed by `f = d(f)`.

mutmut 3 mutates no decorated function except a plain `@staticmethod` or `@classmethod`
(copying a decorated definition for its trampoline could repeat the decorator's side
effects). Properties, context managers and cached functions are ordinary code here, and
some decide money or data: `Facts.status` and `Facts.result_sha256` feed the decision
table, `LockWriter.in_background` and `Manifest.off_loop` bound the run's writes. Applying
the decorators by assignment after the definition is what the `@` syntax means, so the
copy behaves the same and mutmut sees an undecorated function. The repository's code keeps
its decorators; only `scripts/mutation.py`'s copy is rewritten.

Left decorated: `@staticmethod`/`@classmethod` alone (mutmut handles them), `@overload`,
and `@name.setter`/`.deleter`/`.getter` (the assignment would find the function, not the
property, under the name).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import libcst as cst

_MUTMUT_HANDLES = frozenset({"staticmethod", "classmethod"})
_ACCESSORS = frozenset({"setter", "deleter", "getter"})


def undecorate(source: str) -> tuple[str, list[str]]:
    """Return `source` with its decorated functions' decorators applied by assignment,
    and the names of the functions rewritten."""
    transformer = _Undecorate()
    module = cst.parse_module(source).visit(transformer)
    return module.code, transformer.rewritten


def undecorate_file(path: Path) -> list[str]:
    """Rewrite the file at `path` in place (see `undecorate`); return the functions."""
    code, rewritten = undecorate(path.read_text(encoding="utf-8"))
    path.write_text(code, encoding="utf-8")
    return rewritten


def _kept(function: cst.FunctionDef) -> bool:
    """Whether a function keeps its decorators (mutmut mutates it, or it must stay)."""
    decorators = [d.decorator for d in function.decorators]
    if not decorators:
        return True
    only = decorators[0] if len(decorators) == 1 else None
    if isinstance(only, cst.Name) and only.value in _MUTMUT_HANDLES:
        return True
    for decorator in decorators:
        if isinstance(decorator, cst.Name) and decorator.value == "overload":
            return True
        if isinstance(decorator, cst.Attribute) and decorator.attr.value in _ACCESSORS:
            return True
    return False


class _Undecorate(cst.CSTTransformer):
    """Turn each decorated definition into the definition plus `name = d1(d2(name))`."""

    def __init__(self) -> None:
        self.rewritten: list[str] = []

    def leave_Module(self, original: cst.Module, updated: cst.Module) -> cst.Module:
        return updated.with_changes(body=self._split(updated.body))

    def leave_IndentedBlock(
        self, original: cst.IndentedBlock, updated: cst.IndentedBlock
    ) -> cst.IndentedBlock:
        return updated.with_changes(body=self._split(updated.body))

    def _split(self, body: Sequence[cst.BaseStatement]) -> list[cst.BaseStatement]:
        out: list[cst.BaseStatement] = []
        for statement in body:
            if not isinstance(statement, cst.FunctionDef) or _kept(statement):
                out.append(statement)
                continue
            name = statement.name.value
            applied: cst.BaseExpression = cst.Name(name)
            for decorator in reversed(statement.decorators):  # the nearest applies first
                applied = cst.Call(func=decorator.decorator, args=[cst.Arg(applied)])
            out.append(statement.with_changes(decorators=[]))
            out.append(cst.SimpleStatementLine(
                [cst.Assign(targets=[cst.AssignTarget(cst.Name(name))], value=applied)]))
            self.rewritten.append(name)
        return out
