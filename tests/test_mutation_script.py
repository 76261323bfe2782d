"""scripts/mutation.py's targets and equivalents still match the code they describe."""

from __future__ import annotations

import importlib.util
import sys
import tomllib
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def _script(name: str = "mutation") -> ModuleType:
    if str(ROOT / "scripts") not in sys.path:
        sys.path.insert(0, str(ROOT / "scripts"))  # as when run: its helpers sit beside it
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_every_target_names_a_file_its_tests_and_functions_that_exist() -> None:
    """A renamed module, test file or function would make a target mutate or test nothing."""
    mutation = _script()
    for target in mutation.TARGETS:
        source = (ROOT / target.path).read_text(encoding="utf-8")
        assert all((ROOT / test).is_file() for test in target.tests), target.name
        for mangled in target.functions:
            name = mangled.rpartition("ǁ")[2] if "ǁ" in mangled else mangled[2:]
            assert f"def {name}(" in source, (target.name, mangled)
        assert not target.functions or target.why, f"{target.name}: say why it is limited"


def test_every_equivalent_judgement_names_a_line_still_in_its_function_s_file() -> None:
    """A judged line that no longer exists judges nothing: edit or drop the entry."""
    data = tomllib.loads((ROOT / "scripts" / "mutation_equivalents.toml").read_text("utf-8"))
    for entry in data["equivalent"]:
        module = entry["function"].rpartition(".")[0]
        source = (ROOT / (module.replace(".", "/") + ".py")).read_text(encoding="utf-8")
        lines = {line.strip() for line in source.splitlines()}
        assert entry["line"].strip() in lines, entry
        assert entry["reason"], entry


def test_a_survivor_is_equivalent_only_on_its_judged_line_and_mutation() -> None:
    """The judgement matches the function and original line, and `mutated` when given."""
    mutation = _script()
    judged = {("runner.m.x_f", "a = 1"): [{"reason": "any", "line": "a = 1"}],
              ("runner.m.x_g", "b = 2"): [{"reason": "one", "line": "b = 2", "mutated": "b = 3"}]}
    diff = "--- m\n+++ m\n@@ -1 +1 @@\n-    {old}\n+    {new}\n"
    assert mutation.judged_equivalent(
        "runner.m.x_f__mutmut_4", diff.format(old="a = 1", new="a = 2"), judged) == "any"
    assert mutation.judged_equivalent(
        "runner.m.x_g__mutmut_1", diff.format(old="b = 2", new="b = 3"), judged) == "one"
    assert mutation.judged_equivalent(
        "runner.m.x_g__mutmut_2", diff.format(old="b = 2", new="b = None"), judged) is None
    assert mutation.judged_equivalent(
        "runner.m.x_h__mutmut_1", diff.format(old="a = 1", new="a = 2"), judged) is None


SAMPLE = '''
import contextlib, functools
from dataclasses import dataclass
from typing import overload

@dataclass(frozen=True)
class Facts:
    state: str | None = None

    @property
    def status(self) -> str:
        return self.state or "new"

    @staticmethod
    def plain() -> int:
        return 1

    @property
    def value(self) -> int:
        return 2

    @value.setter
    def value(self, new: int) -> None:
        raise AttributeError

@functools.cache
@functools.wraps(len)
def cached(x: str) -> int:
    return len(x)

@contextlib.contextmanager
def guarded(seen: list[str]):
    seen.append("in")
    yield
    seen.append("out")
'''


def test_decorated_functions_are_rewritten_to_apply_their_decorators_by_assignment() -> None:
    """The copy mutmut mutates applies each decorator by assignment, nearest first, and
    behaves as the decorated original; setters and a lone staticmethod stay as written."""
    decorated = _script("mutation_decorated")
    code, rewritten = decorated.undecorate(SAMPLE)
    assert rewritten == ["status", "value", "cached", "guarded"]
    assert "    status = property(status)\n" in code
    assert "cached = functools.cache(functools.wraps(len)(cached))\n" in code
    assert "    @staticmethod\n    def plain" in code and "    @value.setter\n" in code
    original: dict[str, object] = {}
    exec(compile(SAMPLE, "sample", "exec"), original)  # the test's own text
    copy: dict[str, object] = {}
    exec(compile(code, "sample", "exec"), copy)
    for namespace in (original, copy):
        facts = namespace["Facts"]
        assert facts(None).status == "new" and facts("done").status == "done"  # type: ignore[operator]
        assert facts().value == 2  # type: ignore[operator]
        assert namespace["cached"]("abc") == 3  # type: ignore[operator]
        seen: list[str] = []
        with namespace["guarded"](seen):  # type: ignore[operator]
            assert seen == ["in"]
        assert seen == ["in", "out"]


def test_every_target_still_compiles_with_its_decorators_applied_by_assignment() -> None:
    """The rewrite is valid Python for each target file (a broken copy mutates nothing)."""
    mutation = _script()
    decorated = _script("mutation_decorated")
    for target in mutation.TARGETS:
        code, _ = decorated.undecorate((ROOT / target.path).read_text(encoding="utf-8"))
        compile(code, target.path, "exec")
