"""The embedded API emulator: the documented HTTP contract, rendering real H.264 videos.

Start one with `start_in_thread(SandboxConfig(...))` (what `runner run --sandbox` and the
tests do) or from the shell with `runner sandbox serve`. See `server.py` for the routes,
`config.py` for the knobs and fault kinds.
"""

from runner.sandbox.config import FAULT_KINDS, IN_PROCESS, FaultSpec, SandboxConfig, parse_fault
from runner.sandbox.lifecycle import RunningSandbox, check_host, serve, start_in_thread

__all__ = [
    "FAULT_KINDS",
    "IN_PROCESS",
    "FaultSpec",
    "RunningSandbox",
    "SandboxConfig",
    "check_host",
    "parse_fault",
    "serve",
    "start_in_thread",
]
