"""Declarative batch runner for image-to-video APIs.

From Python: `runner.validate(paths)`, `runner.plan(paths, ...)` and `runner.run(paths,
...)` do what the commands do, with the commands' options as keyword arguments, and
`await runner.avalidate / aplan / arun(...)` in async code (see `runner.python_api`).
They are imported on first use, so `import runner` alone stays cheap (the command line
imports this package on every start).
"""

__version__ = "0.1.0"

# Type checkers read the imports below; at run time `typing` is not even imported.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from runner.errors import RunnerError, SpecError, UsageError
    from runner.planning import Plan, PlanEntry
    from runner.python_api import aplan, arun, avalidate, plan, run, validate
    from runner.spec import LoadedSpec
    from runner.summary import RequestReport, RunSummary

# What `runner.<name>` gives, and the module it comes from.
_LAZY = {
    "validate": "runner.python_api",
    "plan": "runner.python_api",
    "run": "runner.python_api",
    "avalidate": "runner.python_api",
    "aplan": "runner.python_api",
    "arun": "runner.python_api",
    "LoadedSpec": "runner.spec",
    "Plan": "runner.planning",
    "PlanEntry": "runner.planning",
    "RunSummary": "runner.summary",
    "RequestReport": "runner.summary",
    "RunnerError": "runner.errors",
    "SpecError": "runner.errors",
    "UsageError": "runner.errors",
}

__all__ = [  # the names of _LAZY, spelled out for linters and type checkers
    "LoadedSpec",
    "Plan",
    "PlanEntry",
    "RequestReport",
    "RunSummary",
    "RunnerError",
    "SpecError",
    "UsageError",
    "__version__",
    "aplan",
    "arun",
    "avalidate",
    "plan",
    "run",
    "validate",
]


def __getattr__(name: str) -> "Any":  # quoted: `typing` is not imported at run time
    """Import the API's functions and types when first asked for (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        msg = f"module 'runner' has no attribute {name!r}"
        raise AttributeError(msg)
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
