"""Measure how fast hostile specs are refused: bombs must cost milliseconds, not minutes.

    python benchmarks/hostile_bench.py [--repeat N]

Times, in this process, the refusal of a billion-laughs YAML document, a matrix of two
billion combinations, and each template bomb of the unit tests; then the wall time of a
real `runner validate` process (capped at 512 MB of address space, as an attacker's spec
would meet it) on each bomb file of tests/spec/corpus. Each figure is the median of
`--repeat` runs. The tests check that each bomb is refused with its reason; how long the
refusal takes is measured here, where a slow machine does not turn into a failing test.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from runner.matrix import MatrixTooLarge, expand
from runner.templates import Renderer, TemplateProblem
from runner.yamlpos import YamlProblem, load

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "spec" / "corpus"
BOMB_FILES = ("alias_bomb.yaml", "billion_matrix.yaml", "template_bombs.yaml")
ADDRESS_SPACE = 512 * 1024 * 1024

TEMPLATE_BOMBS = {
    "string repeat": "{{ 'a' * 10**10 }}",
    "huge power": "{{ 2 ** 1000000 }}",
    "huge range": "{{ range(10**9) | list }}",
    "format width": "{{ '%999999999d' % 1 }}",
    "replace growth": "{{ 'ab' | replace('a', 'x' * 99999) | replace('x', 'yy') }}",
    "doubling sets": "{% set a = 'x' * 1000 %}" + "{% set a = a ~ a %}" * 30 + "{{ a }}",
    "long join": "{{ range(100000) | map('string') | join('-' * 50) }}",
}


def alias_bomb() -> str:
    """Return a billion-laughs document (9^10 strings once expanded)."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        prev, name = chr(96 + i), chr(97 + i)
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines)


def refused(action: Callable[[], object], error: type[Exception]) -> None:
    """Run `action`, which must raise `error` (a bomb that passes is a bug, not a figure)."""
    try:
        action()
    except error:
        return
    raise SystemExit(f"not refused: {action}")


def median_ms(action: Callable[[], None], repeat: int) -> float:
    """Return the median wall time of `action` in milliseconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def validate_process(path: Path) -> None:
    """Run `runner validate PATH` in a memory-capped process; it must exit 2."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))

    done = subprocess.run(
        [sys.executable, "-m", "runner", "validate", str(path)],
        capture_output=True, text=True, timeout=120, preexec_fn=limit, check=False,
    )
    if done.returncode != 2:
        raise SystemExit(f"{path.name}: exit {done.returncode}: {done.stderr[-500:]}")


def main() -> None:
    """Print one line per bomb: what it is and the median time to refuse it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    text = alias_bomb()
    matrix = {"seed": {"range": [1, 1_000_000_000]}, "ratio": ["16:9", "9:16"]}
    renderer = Renderer()
    context = {"seed": 7}
    cases: list[tuple[str, Callable[[], None]]] = [
        ("yaml alias bomb", lambda: refused(lambda: load(text), YamlProblem)),
        ("matrix of 2e9", lambda: refused(lambda: expand(matrix, ("matrix",), 10_000),
                                          MatrixTooLarge)),
    ]
    for name, source in TEMPLATE_BOMBS.items():
        cases.append((f"template: {name}", lambda s=source: refused(
            lambda: renderer.render(renderer.compile(s), context), TemplateProblem)))
    for name, action in cases:
        print(f"{name}: {median_ms(action, args.repeat):.1f} ms")
    for file in BOMB_FILES:
        ms = median_ms(lambda f=file: validate_process(CORPUS / f), args.repeat)
        print(f"runner validate {file} (512 MB cap): {ms:.0f} ms")


if __name__ == "__main__":
    main()
