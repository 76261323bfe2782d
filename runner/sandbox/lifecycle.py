"""Run a sandbox: in a background thread for `--sandbox` and tests, or in the foreground.

`start_in_thread()` gives the engine a real HTTP server on loopback with its own event
loop, so the engine talks to it exactly as it talks to the real API.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future
from types import TracebackType
from typing import Any

from aiohttp import web

from runner.errors import UsageError
from runner.loopback import is_loopback_host
from runner.sandbox.config import SandboxConfig
from runner.sandbox.server import Sandbox

STARTUP_TIMEOUT = 30.0


def check_host(host: str, allow_remote: bool) -> None:
    """Refuse to listen beyond loopback unless asked to explicitly."""
    if not (allow_remote or is_loopback_host(host)):
        msg = (
            f"refusing to serve the sandbox on {host!r}, which is not a loopback address — "
            f"use --host 127.0.0.1, or pass --allow-remote if you really mean it"
        )
        raise UsageError(msg)


async def _start(sandbox: Sandbox, host: str, port: int) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(sandbox.app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        msg = f"cannot listen on {host}:{port} ({exc.strerror}) — choose another --port, or 0"
        raise UsageError(msg) from exc
    bound_host, bound_port = runner.addresses[0][:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    return runner, f"http://{shown}:{bound_port}"


async def serve(
    config: SandboxConfig,
    host: str,
    port: int,
    on_ready: Callable[[str], None],
    allow_remote: bool = False,
) -> None:
    """Serve until cancelled; call `on_ready(base_url)` once listening."""
    check_host(host, allow_remote)
    runner, base_url = await _start(Sandbox(config), host, port)
    try:
        on_ready(base_url)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


class RunningSandbox:
    """A sandbox serving from a daemon thread; stop it, or use it as a context manager."""

    def __init__(self, sandbox: Sandbox, loop: asyncio.AbstractEventLoop, base_url: str,
                 runner: web.AppRunner, thread: threading.Thread) -> None:
        self.base_url = base_url
        self._sandbox = sandbox
        self._loop = loop
        self._runner = runner
        self._thread = thread

    def stats(self) -> dict[str, Any]:
        """Return what `GET /_sandbox/stats` would."""
        snapshot: dict[str, Any] = self._call(self._sandbox.snapshot)
        return snapshot

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Change knobs at runtime, as `POST /_sandbox/config` does; return them all."""
        knobs: dict[str, Any] = self._call(lambda: self._sandbox.reconfigure(changes).to_mapping())
        return knobs

    def stop(self) -> None:
        """Stop serving and join the thread (idempotent)."""
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()

    def __enter__(self) -> RunningSandbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _call(self, fn: Callable[[], Any]) -> Any:
        async def call() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result()


def start_in_thread(
    config: SandboxConfig | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    allow_remote: bool = False,
) -> RunningSandbox:
    """Start a real sandbox server on `host:port` (0: any free port) in a daemon thread."""
    check_host(host, allow_remote)
    sandbox = Sandbox(config or SandboxConfig())
    loop = asyncio.new_event_loop()
    started: Future[tuple[web.AppRunner, str]] = Future()

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            started.set_result(loop.run_until_complete(_start(sandbox, host, port)))
        except BaseException as exc:  # handed to the starting thread, which re-raises it
            started.set_exception(exc)
            loop.close()
            return
        loop.run_forever()
        loop.close()

    thread = threading.Thread(target=run, name="runner-sandbox", daemon=True)
    thread.start()
    runner, base_url = started.result(timeout=STARTUP_TIMEOUT)
    return RunningSandbox(sandbox, loop, base_url, runner, thread)
