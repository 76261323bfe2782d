"""Refuse every connection that would leave the machine: tests may contact loopback only.

`install()` wraps the socket functions every Python network stack goes through (httpx,
httpcore, aiohttp, requests, asyncio): `connect`, `connect_ex` and `sendto` refuse a
non-loopback address, and name lookups refuse a name that is not loopback. Binding is
untouched (a server on 127.0.0.1 is how the tests work). `tests/conftest.py` installs it
in the test process; `sitecustomize.py` beside this file installs it in every child
Python process whose environment has `RUNNER_TEST_NO_NETWORK=1` and this folder on
PYTHONPATH, which the conftest puts in `os.environ` for the whole session.

Self-contained on purpose: a child imports it as a top-level module, with neither the
repository nor the runner necessarily importable.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from typing import Any

ENV = "RUNNER_TEST_NO_NETWORK"
HINT = "tests may contact loopback (127.0.0.1) only"
_UNSPECIFIED = ("", "0.0.0.0", "::")  # for binding to every interface, never a peer


def is_loopback_host(host: Any) -> bool:
    """Tell whether `host` (a name or address, str or bytes) is this machine."""
    name = host.decode() if isinstance(host, bytes) else host
    if not isinstance(name, str):
        return False
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _is_ip_literal(host: Any) -> bool:
    """Tell whether `host` is a numeric address (its lookup needs no DNS)."""
    name = host.decode() if isinstance(host, bytes) else host
    try:
        ipaddress.ip_address(str(name).split("%", 1)[0])
    except ValueError:
        return False
    return True


def _lookup_allowed(host: Any) -> bool:
    """Tell whether a forward lookup of `host` stays on this machine."""
    return host is None or host in _UNSPECIFIED or _is_ip_literal(host) or is_loopback_host(host)


def is_loopback_address(address: Any) -> bool:
    """Tell whether a socket address stays on this machine (AF_UNIX paths do)."""
    if isinstance(address, str | bytes):
        return True
    return isinstance(address, tuple) and bool(address) and is_loopback_host(address[0])


def _refuse(address: Any) -> ConnectionRefusedError:
    msg = f"test tried to reach the network: {address!r} — {HINT}"
    return ConnectionRefusedError(errno.ECONNREFUSED, msg)


def _refuse_name(host: Any) -> socket.gaierror:
    msg = f"test tried to resolve a network name: {host!r} — {HINT}"
    return socket.gaierror(socket.EAI_NONAME, msg)


def install() -> None:
    """Guard this process's sockets (idempotent)."""
    if getattr(socket, "_runner_no_network", False):
        return
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_sendto = socket.socket.sendto
    real_getaddrinfo = socket.getaddrinfo
    real_gethostbyname = socket.gethostbyname
    real_gethostbyname_ex = socket.gethostbyname_ex
    real_gethostbyaddr = socket.gethostbyaddr

    def connect(self: socket.socket, address: Any) -> None:
        if not is_loopback_address(address):
            raise _refuse(address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if not is_loopback_address(address):
            raise _refuse(address)
        return real_connect_ex(self, address)

    def sendto(self: socket.socket, data: Any, *args: Any) -> int:
        address = args[-1]  # sendto(data, address) or sendto(data, flags, address)
        if not is_loopback_address(address):
            raise _refuse(address)
        return real_sendto(self, data, *args)  # type: ignore[arg-type]

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _lookup_allowed(host):  # a numeric address passes: connect() judges it
            raise _refuse_name(host)
        return real_getaddrinfo(host, *args, **kwargs)

    def gethostbyname(host: str) -> str:
        if not _lookup_allowed(host):
            raise _refuse_name(host)
        return real_gethostbyname(host)

    def gethostbyname_ex(host: str) -> Any:
        if not _lookup_allowed(host):
            raise _refuse_name(host)
        return real_gethostbyname_ex(host)

    def gethostbyaddr(host: str) -> Any:
        if not is_loopback_host(host):  # reverse lookups of other addresses ask DNS
            raise _refuse_name(host)
        return real_gethostbyaddr(host)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    socket.socket.sendto = sendto  # type: ignore[method-assign,assignment]
    socket.getaddrinfo = getaddrinfo
    socket.gethostbyname = gethostbyname
    socket.gethostbyname_ex = gethostbyname_ex
    socket.gethostbyaddr = gethostbyaddr
    socket._runner_no_network = True  # type: ignore[attr-defined]
