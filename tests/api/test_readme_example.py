"""The README's "From Python" example, run exactly as written: as a script, inside a
running event loop (as a notebook cell's code runs), and in a real Jupyter kernel."""

from __future__ import annotations

import ast
import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from .conftest import readme_python_blocks

SCRIPT, AWAITED = readme_python_blocks()
# What the example prints on a fresh checkout: the plan, each video, the exit code.
EXPECTED = [
    "{'new': 2}",
    "done 16x9/seed-1.mp4",
    "done 16x9/seed-2.mp4",
    "exit code 0",
]


def printed_lines(text: str) -> list[str]:
    """Return the non-empty lines of an output."""
    return [line for line in text.splitlines() if line.strip()]


def assert_videos(folder: Path) -> None:
    """Check the sandbox run left both dragon videos in outputs/_sandbox/dragon/."""
    videos = sorted(p.name for p in (folder / "outputs" / "_sandbox" / "dragon").rglob("*.mp4"))
    assert videos == ["seed-1.mp4", "seed-2.mp4"]


def test_readme_has_the_script_and_the_awaited_call() -> None:
    """The section holds the sync example and a one-line `await runner.arun(...)`."""
    assert "runner.run([" in SCRIPT and "sandbox=True, concurrency=8" in SCRIPT
    assert AWAITED.strip().startswith("summary = await runner.arun(")


def test_example_runs_as_a_plain_script(in_specs: Path) -> None:
    """`python example.py` in a checkout prints the plan, two done videos and exit code 0."""
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=in_specs, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert printed_lines(done.stdout) == EXPECTED
    assert_videos(in_specs)


def test_example_runs_inside_a_running_event_loop(
    in_specs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The sync calls, made from a coroutine under asyncio.run, work where asyncio.run fails."""

    async def main() -> None:
        refused = asyncio.sleep(0)
        with pytest.raises(RuntimeError, match="cannot be called from a running event loop"):
            asyncio.run(refused)  # what the runner's entry point used to do here
        refused.close()
        exec(compile(SCRIPT, "README.md", "exec"), {"__name__": "__main__"})

    asyncio.run(main())
    assert printed_lines(capsys.readouterr().out) == EXPECTED
    assert_videos(in_specs)


async def run_cell(source: str, namespace: dict[str, Any]) -> None:
    """Run one cell's source as IPython does: top-level await allowed, in the running loop."""
    code = compile(source, "<cell>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(code, namespace)
    if asyncio.iscoroutine(result):
        await result


def test_example_and_awaited_call_run_as_cells_of_one_loop(
    in_specs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """IPython-style: cells run in one live loop; the sync cell, then `await runner.arun`."""
    namespace: dict[str, Any] = {"__name__": "__main__"}

    async def session() -> None:
        await run_cell(SCRIPT, namespace)
        await run_cell("import runner\n" + AWAITED, namespace)

    asyncio.run(session())
    assert printed_lines(capsys.readouterr().out) == EXPECTED
    summary = namespace["summary"]
    assert [r.outcome for r in summary.reports] == ["already_done", "already_done"]
    assert Path("junit.xml").read_text(encoding="utf-8").count("<testcase ") == 2


@pytest.mark.slow
def test_example_runs_in_a_jupyter_notebook(in_specs: Path) -> None:
    """A real ipykernel runs the example cell, then the awaited cell, in its running loop."""
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import asyncio\nprint(asyncio.get_running_loop().is_running())"),
        nbformat.v4.new_code_cell(SCRIPT),
        nbformat.v4.new_code_cell(
            "import runner\n" + AWAITED + "print([r.outcome for r in summary.reports])"
        ),
    ])
    client = NotebookClient(notebook, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(in_specs)}})
    client.execute()
    loop_cell, script_cell, awaited_cell = notebook.cells
    assert loop_cell.outputs[0]["text"] == "True\n"  # cells run while the kernel's loop does
    streamed = [o["text"] for o in script_cell.outputs if o.get("name") == "stdout"]
    assert printed_lines("".join(streamed)) == EXPECTED
    (awaited,) = awaited_cell.outputs
    assert awaited["text"].strip() == "['already_done', 'already_done']"
    assert_videos(in_specs)
    assert (in_specs / "junit.xml").is_file()
