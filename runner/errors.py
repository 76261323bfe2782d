"""The exception tree: what the core raises, and the exit code each one means.

    RunnerError                 base; `exit_code` is what the CLI exits with
    ├── UsageError              bad flags, missing API key, bad configuration      (2)
    │   └── StalePlan           a saved plan no longer matches its inputs          (2)
    ├── SpecError               one or more problems in spec files, each with a
    │                           file:line:col position                              (2)
    ├── LockError               another live run holds a spec's manifest            (1)
    ├── StorageError            the output folder cannot be written (permissions,
    │                           full disk); the manifest is left intact             (1)
    └── ApiError                the API answered in a way that stops the run        (1)
        └── AuthError           403: out of credits or no access                    (1)
            └── BadKeyError     401: the key was rejected (configuration)           (2)

Per-request errors are not in this tree: `api.Retryable` / `OutcomeUnknown` / `Rejected`,
`download.DownloadError` (`ExpiredUrl`, `TruncatedDownload`, `UnsafeUrl`) and
`probe.NotAVideo` are turned by `runner.lifecycle` into that request's outcome (retried,
`unknown` or `failed` with a reason) and never stop the other requests.

The core raises these and never prints or exits; `runner.cli` turns them into one
clear line per problem and an exit code, in one place. Foreign errors (httpx, OSError,
yaml) are translated where they enter, chained with `raise ... from exc`.
"""

from __future__ import annotations

from dataclasses import dataclass


class RunnerError(Exception):
    """Base of every error the runner reports to a user."""

    exit_code = 1


class UsageError(RunnerError):
    """Raised for bad flags, a missing API key or other bad configuration."""

    exit_code = 2


class StalePlan(UsageError):
    """Raised when `run --plan` finds its specs, images, lock or manifest changed."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem in a spec file, at a 1-based line and column."""

    file: str
    line: int
    col: int
    message: str  # "what is wrong — how to fix"

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.message}"


class SpecError(RunnerError):
    """Raised when spec files have problems; carries all of them, in file order."""

    exit_code = 2

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class LockError(RunnerError):
    """Raised when another live `runner run` holds a spec's manifest."""


class StorageError(RunnerError):
    """Raised when the output folder cannot be written; existing data stays intact."""


class ApiError(RunnerError):
    """Raised when the API answers in a way that must stop the whole run."""


class AuthError(ApiError):
    """Raised on 401 (bad key) or 403 (out of credits): no further request is sent."""


class BadKeyError(AuthError):
    """Raised on 401: the key is wrong, which is configuration, like a missing key."""

    exit_code = 2
