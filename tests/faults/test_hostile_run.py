"""Hostile specs given to `runner run` — the command that writes files and spends money.

tests/spec/ feeds a corpus of broken specs to `validate` and `plan`; this fills the gap
at `run`: each case goes to a real `runner run` process with the key set and a live
sandbox behind `--base-url`, capped at 512 MB of address space and a timeout. Each must
exit 2 with exactly one clear `error:` line, no traceback, nothing written (no output
folder, no lock, no manifest) and no call to the API. Images are checked against the
spec's git repository: a path or symlink leaving it is refused.
"""

from __future__ import annotations

import os
import resource
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from tests.faults.harness import TEST_KEY, SandboxProcess, child_env, draw_image

pytestmark = pytest.mark.slow

MEMORY_CAP = 512 * 1024 * 1024  # bytes of address space for the runner process
TIME_CAP = 20.0  # seconds; every case needs well under 3

HEAD = "version: 1\nname: hostile\nprovider: aimlapi\nmodel: runway/gen4_turbo\n"
IMAGE = "params:\n  image_url: images/frame.png\n"


def _alias_bomb() -> str:
    lines = ['  a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"  {name}: &{name} [{', '.join([f'*{prev}'] * 9)}]")
    return HEAD + "vars:\n" + "\n".join(lines) + "\n" + IMAGE + '  prompt: "{{ i }}"\n'


def _pixel_bomb() -> bytes:
    """A valid PNG header claiming 100,000 x 100,000 pixels (30 GB decoded), 100 bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


# name -> (spec text, text the single error line must contain)
CASES: dict[str, tuple[str, str]] = {
    "yaml alias bomb": (_alias_bomb(), "alias"),
    "billion-request matrix": (
        HEAD + "matrix:\n  seed: {range: [0, 999999999]}\n  ratio: [\"16:9\", \"9:16\"]\n"
        + IMAGE, "requests"),
    "ten-axis product bomb": (
        HEAD + "matrix:\n" + "".join(f"  a{i}: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]\n"
                                     for i in range(10)) + IMAGE, "requests"),
    "template reaching python internals": (
        HEAD + IMAGE + "  prompt: \"{{ ''.__class__.__mro__[1].__subclasses__() }}\"\n",
        "__class__"),
    "template reaching os through globals": (
        HEAD + IMAGE + "  prompt: \"{{ cycler.__init__.__globals__.os.system('id') }}\"\n",
        "prompt"),
    "template exponent bomb": (HEAD + IMAGE + '  seed: "{{ 9 ** 9 ** 9 }}"\n', "seed"),
    "output path with ../": (
        HEAD + "matrix:\n  seed: [1]\n" + IMAGE + 'output: "../../escaped-{{ seed }}.mp4"\n', ".."),
    "absolute output path": (
        HEAD + "matrix:\n  seed: [1]\n" + IMAGE + 'output: "/tmp/abs-{{ seed }}.mp4"\n',
        "absolute"),
    "image path leaving the repository": (
        HEAD + "params:\n  image_url: ../../outside.png\n", "outside"),
    "image symlink leaving the repository": (
        HEAD + "params:\n  image_url: images/link.png\n", "outside"),
    "file:// image URL": (HEAD + "params:\n  image_url: file:///etc/passwd\n", "file"),
    "plain http image URL": (HEAD + "params:\n  image_url: http://example.com/a.png\n", "http"),
    "huge image file": (HEAD + "params:\n  image_url: images/huge.png\n", "bytes"),
    "decompression bomb image": (HEAD + "params:\n  image_url: images/bomb.png\n", "bomb.png"),
    "not an image": (HEAD + "params:\n  image_url: images/notes.png\n", "not an image"),
    "pasted API key": (
        HEAD + IMAGE + "  prompt: \"a dragon sk-live_0123456789_abcdefghij_klmnop\"\n", "API key"),
    "the environment's own key pasted": (HEAD + IMAGE + f"  prompt: \"{TEST_KEY}\"\n", "API key"),
    "python object tag": (
        HEAD + IMAGE + "  prompt: !!python/object/apply:os.system [\"touch pwned\"]\n", "tag"),
    "right-to-left override in the name": (
        HEAD.replace("name: hostile", "name: \"evil\\u202egpm.mp4\"") + IMAGE, "name"),
    "right-to-left override in an output path": (
        HEAD + "matrix:\n  seed: [1]\n" + IMAGE + 'output: "seed-{{ seed }}\\u202egpm.mp4"\n',
        "control characters"),
    "lone surrogate escape in a prompt": (
        HEAD + IMAGE + '  prompt: "a dragon \\ud800"\n', "surrogate"),
    "lone surrogate made by a template": (
        HEAD + IMAGE + '  prompt: "{{ \\"\\\\ud83d\\" }}"\n', "surrogate"),
    "outputs equal up to Unicode normalisation": (
        HEAD + "matrix:\n  seed: [1, 2]\n" + IMAGE
        + "output: \"{{ 'caf\\u00e9' if seed == 1 else 'cafe\\u0301' }}.mp4\"\n", "both write"),
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git repository holding specs/ with good and hostile images, and a PNG outside it."""
    root = tmp_path_factory.mktemp("hostile")
    repo = root / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    images = repo / "specs" / "images"
    draw_image(images / "frame.png")
    outside = draw_image(root / "outside.png")
    os.symlink(outside, images / "link.png")
    (images / "notes.png").write_text("meeting notes, not a picture\n")
    with (images / "huge.png").open("wb") as fh:  # 9 MB: past the 5 MB data: URI limit
        fh.write(b"\x89PNG\r\n\x1a\n")
        fh.truncate(9_000_000)
    (images / "bomb.png").write_bytes(_pixel_bomb())
    return repo


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_hostile_spec_is_refused_by_run(case: str, repo: Path, server: SandboxProcess) -> None:
    """`runner run` on this spec exits 2 with one clear line, in bounded time and
    memory, writing nothing and calling no API."""
    text, expected = CASES[case]
    spec = repo / "specs" / "hostile.yaml"
    spec.write_text(text, encoding="utf-8")
    out = repo / "outputs"
    server.reset_stats()
    proc = subprocess.run(  # a run past TIME_CAP raises TimeoutExpired: bounded time
        [sys.executable, "-m", "runner", "run", str(spec), "--base-url", server.base_url,
         "--output-dir", str(out)],
        cwd=repo, env=child_env(), capture_output=True, text=True, timeout=TIME_CAP,
        preexec_fn=_limits, check=False,
    )

    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "MemoryError" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"error: {spec}:"), lines[0]
    assert expected.lower() in lines[0].lower(), lines[0]
    assert " — " in lines[0]  # says how to fix it
    assert proc.stdout == ""
    assert TEST_KEY not in proc.stderr and "sk-live0123" not in proc.stderr
    assert not out.exists()  # nothing written
    assert not (repo / "specs" / "pwned").exists() and not (repo / "pwned").exists()
    stats = server.stats()
    assert stats["submissions"] == 0 and stats["polls"] == 0


def test_symlink_in_the_output_tree_is_refused(repo: Path, server: SandboxProcess,
                                               tmp_path: Path) -> None:
    """A symlink already inside outputs/<name>/ that leads elsewhere is refused before
    anything is written through it or sent: exit 2, one line, the target stays empty."""
    spec = repo / "specs" / "linked.yaml"
    spec.write_text(HEAD.replace("hostile", "linked") + "matrix:\n  seed: [1, 2]\n" + IMAGE
                    + 'output: "clips/seed-{{ seed }}.mp4"\n', encoding="utf-8")
    out = tmp_path / "outputs"
    (out / "linked").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, out / "linked" / "clips")
    server.reset_stats()
    proc = subprocess.run(
        [sys.executable, "-m", "runner", "run", str(spec), "--base-url", server.base_url,
         "--output-dir", str(out)],
        cwd=repo, env=child_env(), capture_output=True, text=True, timeout=TIME_CAP,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and "through a symbolic link" in lines[0], proc.stderr
    assert "remove the link or choose another --output-dir" in lines[0]
    assert list(elsewhere.iterdir()) == []
    assert sorted(p.name for p in (out / "linked").iterdir()) == ["clips"]  # no lock, manifest
    assert server.stats()["submissions"] == 0
