"""A small headless-Chromium driver over the DevTools protocol (no downloads, no extras).

Debian's Chromium is started with `--remote-debugging-port=0`; it writes the port it
chose to `DevToolsActivePort` in its profile folder, and we talk to it over a websocket
with aiohttp (already a dependency of the sandbox). This avoids Playwright, whose pinned
protocol and browser downloads do not fit an offline machine with a distribution
Chromium. Used by the gallery browser tests, `scripts/gallery_screenshot.py` and
`benchmarks/gallery_bench.py`, which also serve a gallery folder with `served()`.

Tests may contact loopback only, and a full Chromium has background services (component
and model updates, account checks, network time) that resolve Google hosts on their own.
The flags below turn off the ones that have switches and map every host name but
127.0.0.1 to "not found", so no DNS query leaves and no connection can be made by name.
`open_page(trace=…)` runs Chromium under `strace -f` and `off_machine()` reads the trace:
a browser test can prove that nothing but loopback was contacted, whichever Chromium
version comes from Debian next (a network namespace would block instead of prove, and
needs privileges a CI container may not grant).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

CHROMIUM = "/usr/bin/chromium"
MISSING_HINT = (
    "headless Chromium is needed for the gallery browser test — install it with "
    "`apt-get install chromium` (CI's .ci/run does this)"
)
STRACE = "/usr/bin/strace"
STRACE_HINT = (
    "strace is needed to prove the browser tests stay on loopback — install it with "
    "`apt-get install strace` (CI's .ci/run does this)"
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
    "--disable-extensions",
    "--disable-client-side-phishing-detection",
    "--disable-domain-reliability",
    "--disable-breakpad",
    "--no-pings",
    "--metrics-recording-only",
    "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,MediaRouter,"
    "DialMediaRouteProvider,Translate,AutofillServerCommunication,"
    "CertificateTransparencyComponentUpdater",
    # The services left (Debian's build has no switch for some) fail at name resolution.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    "--autoplay-policy=no-user-gesture-required",  # the compare view plays muted videos
    "--mute-audio",
    "--hide-scrollbars",
)
# Network system calls whose addresses and sockets the trace needs to show.
_TRACED = "connect,sendto,sendmsg,sendmmsg"
START_TIMEOUT = 30.0  # seconds for Chromium to open its DevTools port on a busy CI box
COMMAND_TIMEOUT = 30.0


def strace_path() -> str:
    """Return the strace executable, or raise with how to install it."""
    found = shutil.which("strace") or (STRACE if Path(STRACE).exists() else None)
    if found is None:
        raise RuntimeError(STRACE_HINT)
    return found


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
        """Save a PNG of the whole page (not just the viewport), lazy images loaded."""
        metrics = await self.send("Page.getLayoutMetrics")
        height = int(metrics["cssContentSize"]["height"])
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width, height=max(height, 200), deviceScaleFactor=1, mobile=False,
        )
        # The whole page is in the viewport now: every lazy image starts loading.
        await self.evaluate(
            "Promise.all([...document.images].map(i => i.decode().catch(() => null)))"
            ".then(() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r))))"
            ".then(() => true)"
        )
        shot = await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path


@contextmanager
def served(folder: Path) -> Iterator[str]:
    """Serve `folder` on loopback as the static hosts a gallery is put on do (Pages, S3,
    nginx); yield its origin.

    aiohttp's static files answer byte ranges, which Chromium needs to seek a video over
    HTTP: from `http.server`, which sends whole files only, a paused video set to another
    time goes to 0.
    """
    app = web.Application()
    app.router.add_static("/", folder)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", 0).start())
    _, port = runner.addresses[0][:2]
    thread = threading.Thread(target=loop.run_forever, name="gallery-origin", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.run_until_complete(runner.cleanup())
        loop.close()


@asynccontextmanager
async def open_page(
    width: int = 1400, height: int = 900, trace: Path | None = None
) -> AsyncIterator[Page]:
    """Start headless Chromium with a fresh profile and yield one instrumented tab.

    With `trace`, Chromium and every process it starts run under strace, which writes
    their network system calls to that file (read it with `off_machine`).
    """
    executable = chromium_path()
    wrapper: list[str] = []
    if trace is not None:
        wrapper = [strace_path(), "-f", "-qq", "-yy", "--seccomp-bpf", "-e", f"trace={_TRACED}",
                   "-e", "signal=none", "-o", str(trace)]
    # Chromium's helper processes may still write to the profile for a moment after the
    # browser exits; they are stopped as a group below, and a late file is no failure.
    with tempfile.TemporaryDirectory(
        prefix="runner-chromium-", ignore_cleanup_errors=True
    ) as profile:
        process = subprocess.Popen(
            [*wrapper, executable, *_FLAGS, f"--user-data-dir={profile}",
             "--remote-debugging-port=0",
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


# --------------------------------------------------------------------------- the trace

# The socket as `strace -yy` shows it ends at the ">" before the next argument: its text
# may itself hold "->" (a connected socket's "local->peer").
_CALL = re.compile(r"^(?:\d+ +)?(connect|sendto|sendmsg|sendmmsg)\((\d+)(?:<(.*?)>(?=[,)]))?")
_RESUMED = re.compile(r"^(\d+) +<\.\.\. (\w+) resumed>(.*)$")
_UNFINISHED = " <unfinished ...>"
_INET = re.compile(r'sin_port=htons\((\d+)\), sin_addr=inet_addr\("([^"]+)"\)')
_INET6 = re.compile(r'sin6_port=htons\((\d+)\).*?inet_pton\(AF_INET6, "([^"]+)"')
_FAMILY = re.compile(r"sa_family=(AF_\w+)")
_LOCAL_FAMILIES = {"AF_UNIX", "AF_NETLINK", "AF_UNSPEC"}  # AF_UNSPEC: a UDP disconnect
DNS_PORT = 53


def off_machine(trace: str) -> list[str]:
    """Return every network use in an strace log that could reach beyond this machine.

    Flagged: a TCP connect to a non-loopback address (its SYN leaves), any datagram sent
    to one or on a socket connected to one, any DNS connect, and any address the parser
    cannot read (fail closed). Not flagged: loopback, Unix and netlink sockets, and a
    UDP connect() that is never followed by a send. Chromium makes one of those before
    every host resolution, even of 127.0.0.1: its IPv6 reachability check connects a
    UDP socket to 2001:4860:4860::8888 only to ask the kernel for a route
    (net/dns/host_resolver_manager.cc), which puts nothing on the wire.
    """
    problems: list[str] = []
    routed: dict[str, str] = {}  # socket (strace's "UDPv6:[inode]") -> its non-loopback peer
    sent_on: list[tuple[str, str]] = []  # (socket, line) of sends without an address
    for line in _calls(trace):
        match = _CALL.match(line)
        if match is None:
            continue
        call, socket_desc = match.group(1), match.group(3) or f"fd {match.group(2)}"
        peers = _addresses(line)
        families = set(_FAMILY.findall(line))
        if families - _LOCAL_FAMILIES - {"AF_INET", "AF_INET6"}:
            problems.append(f"unexpected address family: {line}")
            continue
        if {"AF_INET", "AF_INET6"} & families and not peers:
            problems.append(f"unreadable address: {line}")
            continue
        remote = [(host, port) for host, port in peers if not _loopback(host)]
        if call == "connect":
            for host, port in remote:
                if socket_desc.startswith("UDP") and port != DNS_PORT:
                    routed[socket_desc] = f"{host}:{port}"
                else:
                    problems.append(f"connect to {host}:{port}: {line}")
        elif remote:
            problems.append(f"{call} to {remote[0][0]}:{remote[0][1]}: {line}")
        elif not peers:
            peer = _peer_of(socket_desc)
            if peer is not None and not _loopback(peer):
                problems.append(f"{call} on a socket connected to {peer}: {line}")
            sent_on.append((socket_desc, line))
    problems += [
        f"{line.split('(')[0]} on a socket connected to {routed[desc]}: {line}"
        for desc, line in sent_on if desc in routed
    ]
    return problems


def loopback_connects(trace: str) -> int:
    """Return how many connects to a loopback address the trace shows (it did trace)."""
    return sum(
        1 for line in _calls(trace) if line.split("(")[0].endswith("connect")
        and any(_loopback(host) for host, _ in _addresses(line))
    )


def _calls(trace: str) -> Iterator[str]:
    """Yield each traced call as one line, joining strace's unfinished/resumed halves."""
    pending: dict[str, str] = {}
    for raw in trace.splitlines():
        resumed = _RESUMED.match(raw)
        if resumed is not None:
            head = pending.pop(resumed.group(1), f"{resumed.group(1)} {resumed.group(2)}(")
            yield head + resumed.group(3)
        elif raw.endswith(_UNFINISHED):
            pid = raw.split(" ", 1)[0]
            pending[pid] = raw[: -len(_UNFINISHED)]
        else:
            yield raw
    yield from pending.values()  # calls still blocked when the browser was stopped


def _peer_of(socket_desc: str) -> str | None:
    """Return the peer host of a connected socket as `strace -yy` shows it, if it does.

    A connected socket reads `UDPv6:[[fd00::2]:48943->[2001:4860:4860::8888]:443]` or
    `TCP:[127.0.0.1:5000->127.0.0.1:34567]`; an unconnected one only `UDPv6:[32530]`.
    """
    if "->" not in socket_desc or not socket_desc.startswith(("TCP", "UDP")):
        return None  # (a Unix socket pair reads `UNIX:[inode->peer inode]`)
    remote = socket_desc.rsplit("->", 1)[1].rstrip("]")
    host = remote.rsplit(":", 1)[0]
    return host.strip("[]")


def _addresses(line: str) -> list[tuple[str, int]]:
    """Return the (host, port) of every IPv4/IPv6 socket address in one traced call."""
    found = [(host, int(port)) for port, host in _INET.findall(line)]
    return found + [(host, int(port)) for port, host in _INET6.findall(line)]


def _loopback(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback
