"""Type checkers see the API: py.typed and the package's lazy names carry the signatures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

USER_CODE = '''\
import runner


def nightly() -> int:
    specs: list[runner.LoadedSpec] = runner.validate(["specs/"])
    plan: runner.Plan = runner.plan("specs/", sandbox=True, only=["seed=1"])
    summary: runner.RunSummary = runner.run(specs[0].path, sandbox=True, concurrency=8)
    print(plan.counts, [report.outcome for report in summary.reports])
    return summary.exit_code


async def cell() -> runner.RunSummary:
    await runner.avalidate("specs/")
    return await runner.arun(["specs/"], sandbox=True, reports=["junit.xml"])


runner.run(["specs/"], concurency=8)  # a typo
bad: str = runner.plan("specs/")  # a wrong type
'''


def test_mypy_strict_checks_user_code_against_the_api(tmp_path: Path) -> None:
    """mypy --strict on a user's script: the good calls pass, the typo and wrong type fail."""
    script = tmp_path / "user.py"
    script.write_text(USER_CODE, encoding="utf-8")
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary",
         "--cache-dir", str(tmp_path / "cache"), str(script)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    errors = [line.split(": ", 2) for line in checked.stdout.splitlines() if ": error: " in line]
    lines = [int(where.rsplit(":", 1)[1]) for where, _, _ in errors]
    assert lines == [17, 18], checked.stdout
    assert 'Unexpected keyword argument "concurency"' in errors[0][2]
    assert 'expression has type "Plan"' in errors[1][2]
