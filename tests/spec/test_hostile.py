"""A corpus of broken and hostile specs: each fails with exit 2 and one clear line per
problem naming file:line:col, no traceback, and nothing written.

Every file in tests/spec/corpus/ ends with `# expect: LINE:COL text` comments (at the end,
so they do not shift line numbers): each must appear as a problem line, and every line
printed must be one of them.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from tests.spec.conftest import draw

CORPUS = Path(__file__).parent / "corpus"
CASES = sorted(p.name for p in CORPUS.glob("*.yaml"))
EXPECT = re.compile(r"^# expect: (\d+):(\d+) (.+)$", re.MULTILINE)


@pytest.fixture
def corpus(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The corpus copied into a folder (not a git repository) with its hostile images."""
    folder = tmp_path / "corpus"
    shutil.copytree(CORPUS, folder)
    images = folder / "images"
    draw(images / "frame.png", (64, 36))
    draw(images / "tall.png", (10, 40))  # width/height 0.25
    (images / "not-an-image.png").write_text("just text pretending to be a PNG\n")
    with (images / "big.png").open("wb") as fh:  # past the 5 MB data: URI limit
        fh.write(b"\x89PNG\r\n\x1a\n")
        fh.truncate(4_000_000)
    outside = draw(tmp_path_factory.mktemp("outside") / "secret.png", (64, 36))
    os.symlink(outside, images / "escape.png")
    return folder


def expectations(name: str) -> list[tuple[int, int, str]]:
    """Return the (line, col, text) problems a corpus file declares."""
    text = (CORPUS / name).read_text(encoding="utf-8")
    found = [(int(a), int(b), c) for a, b, c in EXPECT.findall(text)]
    assert found, f"{name} declares no # expect: lines"
    return found


@pytest.mark.parametrize("name", CASES)
def test_corpus_spec_fails_with_one_line_per_problem(
    name: str, corpus: Path, run_cli: Callable[..., Result]
) -> None:
    """`runner validate` and `runner plan` exit 2 with exactly the expected lines."""
    spec = corpus / name
    outputs = corpus / "outputs"
    for args in (("validate", spec), ("plan", "--output-dir", outputs, spec)):
        result = run_cli(*args)
        assert result.exit_code == 2, result.output
        assert result.stdout == ""
        assert "Traceback" not in result.stderr
        lines = result.stderr.splitlines()
        wanted = expectations(name)
        assert len(lines) == len(wanted), "\n".join(lines)
        for (line, col, text), printed in zip(wanted, lines, strict=True):
            prefix = f"error: {spec}:{line}:{col}: "
            assert printed.startswith(prefix), f"{printed!r} should start with {prefix!r}"
            assert text in printed, f"{text!r} not in {printed!r}"
            assert " — " in printed, f"no 'how to fix' part in {printed!r}"
        assert not outputs.exists()


def test_secret_never_printed(corpus: Path, run_cli: Callable[..., Result]) -> None:
    """The key-like value in the secret spec appears in no output at all."""
    result = run_cli("validate", corpus / "secret_key.yaml")
    assert "sk-live" not in result.output + result.stderr


def test_python_tag_is_not_executed(corpus: Path, run_cli: Callable[..., Result]) -> None:
    """A !!python tag is refused before anything is constructed (no file is touched)."""
    marker = Path("/tmp/pwned")
    marker.unlink(missing_ok=True)
    run_cli("validate", corpus / "python_tag.yaml")
    assert not marker.exists()


def test_not_utf8_and_oversized_specs(tmp_path: Path, run_cli: Callable[..., Result]) -> None:
    """Binary junk and a spec over 1 MiB fail with one positioned line each."""
    junk = tmp_path / "junk.yaml"
    junk.write_bytes(b"version: 1\nname: \xff\xfe\n")
    big = tmp_path / "big.yaml"
    big.write_text("version: 1\n# " + "x" * 1_100_000 + "\n")
    result = run_cli("validate", junk, big)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"error: {junk}:2:7: the spec is not UTF-8 text — save it as UTF-8",
        f"error: {big}:1:1: the spec is 1,100,014 bytes; the limit is 1,048,576 — split it "
        "into several specs",
    ]


def test_all_problems_of_all_files_at_once(corpus: Path, run_cli: Callable[..., Result]) -> None:
    """Validating the whole corpus folder reports every file's problems in one run."""
    result = run_cli("validate", corpus)
    assert result.exit_code == 2
    total = sum(len(expectations(name)) for name in CASES)
    assert len(result.stderr.splitlines()) == total


HOSTILE_SUBPROCESS_LIMIT = 512 * 1024 * 1024  # bytes of address space for the child


@pytest.mark.parametrize("name", ["alias_bomb.yaml", "billion_matrix.yaml", "template_bombs.yaml"])
def test_bombs_fail_fast_in_a_memory_limited_process(name: str, corpus: Path) -> None:
    """In a real `runner validate` process capped at 512 MB, bombs exit 2 with a clear error."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (HOSTILE_SUBPROCESS_LIMIT, HOSTILE_SUBPROCESS_LIMIT))

    proc = subprocess.run(
        [sys.executable, "-m", "runner", "validate", str(corpus / name)],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=limit,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "MemoryError" not in proc.stderr
