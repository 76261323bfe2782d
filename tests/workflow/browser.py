"""A small headless-Chromium driver over the DevTools protocol (no downloads, no extras).

Debian's Chromium is started with `--remote-debugging-port=0`; it writes the port it
chose to `DevToolsActivePort` in its profile folder, and we talk to it over a websocket
with aiohttp (already a dependency of the sandbox). This avoids Playwright, whose pinned
protocol and browser downloads do not fit an offline machine with a distribution
Chromium. Used by the gallery browser test and by `scripts/gallery_screenshot.py`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

CHROMIUM = "/usr/bin/chromium"
MISSING_HINT = (
    "headless Chromium is needed for the gallery browser test — install it with "
    "`apt-get install chromium` (CI's .ci/run does this)"
)
_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--mute-audio",
    "--hide-scrollbars",
)
START_TIMEOUT = 30.0  # seconds for Chromium to open its DevTools port on a busy CI box
COMMAND_TIMEOUT = 30.0


def chromium_path() -> str:
    """Return the Chromium executable, or raise with how to install it."""
    found = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).exists() else None)
    if found is None:
        raise RuntimeError(MISSING_HINT)
    return found


@dataclass
class PageLog:
    """What a page reported while loading: console errors, exceptions, failed loads."""

    console_errors: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    requested_urls: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        return self.console_errors + self.exceptions + self.failed_requests


class Page:
    """One browser tab attached over a flat DevTools session."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, session_id: str) -> None:
        self._ws = ws
        self._session = session_id
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._events: dict[str, asyncio.Event] = {}
        self.log = PageLog()
        self._request_urls: dict[str, str] = {}

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command to the tab and return its result."""
        msg_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[msg_id] = future
        await self._ws.send_str(
            json.dumps({"id": msg_id, "method": method, "params": params,
                        "sessionId": self._session})
        )
        return await asyncio.wait_for(future, COMMAND_TIMEOUT)

    def dispatch(self, message: dict[str, Any]) -> None:
        """Route one message of this session: a command result or an event."""
        if "id" in message:
            future = self._waiting.pop(message["id"], None)
            if future is not None and not future.done():
                if "error" in message:
                    future.set_exception(RuntimeError(f"DevTools: {message['error']}"))
                else:
                    future.set_result(message.get("result", {}))
            return
        method, params = message.get("method", ""), message.get("params", {})
        self._record(method, params)
        self._events.setdefault(method, asyncio.Event()).set()

    def _record(self, method: str, params: dict[str, Any]) -> None:
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            texts = [str(a.get("value", a.get("description", ""))) for a in params["args"]]
            self.log.console_errors.append("console: " + " ".join(texts))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.log.exceptions.append("exception: " + str(details.get("text", details)))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            entry = params["entry"]
            self.log.console_errors.append(f"log: {entry.get('text')} {entry.get('url', '')}")
        elif method == "Network.requestWillBeSent":
            url = params["request"]["url"]
            self._request_urls[params["requestId"]] = url
            self.log.requested_urls.append(url)
        elif method == "Network.responseReceived" and params["response"]["status"] >= 400:
            response = params["response"]
            self.log.failed_requests.append(f"HTTP {response['status']}: {response['url']}")
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            url = self._request_urls.get(params["requestId"], "?")
            self.log.failed_requests.append(f"load failed ({params.get('errorText')}): {url}")

    async def goto(self, url: str) -> None:
        """Navigate and wait for the load event."""
        loaded = self._events.setdefault("Page.loadEventFired", asyncio.Event())
        loaded.clear()
        await self.send("Page.navigate", url=url)
        await asyncio.wait_for(loaded.wait(), COMMAND_TIMEOUT)

    async def evaluate(self, expression: str) -> Any:
        """Evaluate JavaScript (awaiting a promise) and return its JSON value."""
        result = await self.send(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def screenshot(self, path: Path, width: int = 1400) -> Path:
        """Save a PNG of the whole page (not just the viewport)."""
        metrics = await self.send("Page.getLayoutMetrics")
        height = int(metrics["cssContentSize"]["height"])
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width, height=max(height, 200), deviceScaleFactor=1, mobile=False,
        )
        shot = await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path


@asynccontextmanager
async def open_page(width: int = 1400, height: int = 900) -> AsyncIterator[Page]:
    """Start headless Chromium with a fresh profile and yield one instrumented tab."""
    executable = chromium_path()
    # Chromium's helper processes may still write to the profile for a moment after the
    # browser exits; they are stopped as a group below, and a late file is no failure.
    with tempfile.TemporaryDirectory(
        prefix="runner-chromium-", ignore_cleanup_errors=True
    ) as profile:
        process = subprocess.Popen(
            [executable, *_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
             f"--window-size={width},{height}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        try:
            ws_url = await _devtools_url(Path(profile), process)
            async with aiohttp.ClientSession() as http, http.ws_connect(
                ws_url, max_msg_size=0
            ) as ws:
                router = _Router(ws)
                pump = asyncio.get_running_loop().create_task(router.pump())
                try:
                    yield await router.open_tab()
                finally:
                    pump.cancel()
        finally:
            _stop_group(process)


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """Stop Chromium and every helper process it started (its own session)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # helpers that outlived the browser


async def _devtools_url(profile: Path, process: subprocess.Popen[bytes]) -> str:
    """Wait for Chromium to write its DevTools port, then return the browser's ws URL."""
    port_file = profile / "DevToolsActivePort"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT
    while loop.time() < deadline:
        if process.poll() is not None:
            msg = f"Chromium exited with code {process.returncode} before opening DevTools"
            raise RuntimeError(msg)
        lines = port_file.read_text().split("\n") if port_file.exists() else []
        if len(lines) >= 2 and lines[0].strip() and lines[1].strip():
            return f"ws://127.0.0.1:{lines[0].strip()}{lines[1].strip()}"
        await asyncio.sleep(0.05)  # an external process: there is no clock to inject
    msg = f"Chromium did not open its DevTools port within {START_TIMEOUT:.0f} s"
    raise RuntimeError(msg)


class _Router:
    """Reads the browser websocket and hands each message to its command or tab."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._pages: dict[str, Page] = {}
        self._ids = itertools.count(1)

    async def pump(self) -> None:
        async for raw in self._ws:
            message = json.loads(raw.data)
            session = message.get("sessionId")
            if session in self._pages:
                self._pages[session].dispatch(message)
            elif message.get("id") in self._pending:
                future = self._pending.pop(message["id"])
                if "error" in message:
                    future.set_exception(RuntimeError(f"DevTools: {message['error']}"))
                else:
                    future.set_result(message.get("result", {}))

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        msg_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = future
        await self._ws.send_str(json.dumps({"id": msg_id, "method": method, "params": params}))
        return await asyncio.wait_for(future, COMMAND_TIMEOUT)

    async def open_tab(self) -> Page:
        """Open a tab, attach to it flat, and enable the domains the checks read."""
        target = await self.call("Target.createTarget", url="about:blank")
        attached = await self.call(
            "Target.attachToTarget", targetId=target["targetId"], flatten=True
        )
        page = Page(self._ws, attached["sessionId"])
        self._pages[attached["sessionId"]] = page
        for domain in ("Page", "Runtime", "Log", "Network"):
            await page.send(f"{domain}.enable")
        return page
