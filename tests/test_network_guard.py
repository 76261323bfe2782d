"""The suite's network guard holds in the test process and in the processes it starts."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tests.faults.harness import child_env
from tests.netguard import no_network
from tests.storage.conftest import run_python

# TEST-NET-1 (RFC 5737): never routed, so even an unguarded attempt could not leak.
OUTSIDE = ("192.0.2.1", 80)

CHILD = """
import socket, sys
try:
    socket.create_connection(("192.0.2.1", 80), timeout=5)
except ConnectionRefusedError as exc:
    print("refused:", exc)
    sys.exit(3)
print("connected")
"""

CHILD_HTTPX = """
import httpx
try:
    httpx.get("https://api.aimlapi.com/v2/generate/video/runway/generation", timeout=5)
except httpx.ConnectError as exc:
    print("refused:", exc)
    raise SystemExit(3)
print("reached")
"""

CHILD_LOOPBACK = """
import socket, sys
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5) as s:
    print("loopback ok", s.recv(2).decode())
"""


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A TCP server socket on 127.0.0.1 that greets each connection with b'hi'."""
    server = socket.create_server(("127.0.0.1", 0))
    yield server
    server.close()


def run_child(code: str, env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run `python -c code` with `env`, to its end."""
    return subprocess.run([sys.executable, "-c", code, *args], env=dict(env),
                          capture_output=True, text=True, timeout=60, check=False)


def test_this_process_refuses_a_connect_beyond_loopback() -> None:
    """A connect to a non-loopback address fails with the guard's message."""
    with socket.socket() as sock, pytest.raises(ConnectionRefusedError, match=r"loopback"):
        sock.connect(OUTSIDE)


def test_this_process_refuses_to_resolve_a_network_name() -> None:
    """A name lookup that could leave the machine fails before any packet is sent."""
    with pytest.raises(socket.gaierror, match="api.aimlapi.com"):
        socket.getaddrinfo("api.aimlapi.com", 443)
    with pytest.raises(socket.gaierror):
        socket.gethostbyname("example.com")


def test_loopback_stays_allowed(listener: socket.socket) -> None:
    """Connections to 127.0.0.1 and lookups of localhost still work."""
    port = listener.getsockname()[1]
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass
    assert socket.getaddrinfo("localhost", port)


def test_a_child_python_process_refuses_a_non_loopback_connect() -> None:
    """A child started with the session's environment has the guard: its connect fails."""
    done = run_child(CHILD, os.environ)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "test tried to reach the network" in done.stdout


def test_a_child_using_httpx_cannot_reach_the_real_api() -> None:
    """The runner's HTTP stack in a child process fails to connect to the real provider."""
    done = run_child(CHILD_HTTPX, child_env())
    assert done.returncode == 3, done.stdout + done.stderr
    assert "test tried to resolve a network name" in done.stdout


def test_a_child_may_still_use_loopback(listener: socket.socket) -> None:
    """The guard in a child lets loopback through (the sandbox servers live there)."""
    listener.settimeout(30)
    port = listener.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-c", CHILD_LOOPBACK, str(port)],
                               stdout=subprocess.PIPE, text=True)
    connection, _ = listener.accept()
    with connection:
        connection.sendall(b"hi")
    out, _ = process.communicate(timeout=30)
    assert (process.returncode, out.strip()) == (0, "loopback ok hi")


def test_helpers_building_a_child_environment_keep_the_guard() -> None:
    """The campaigns' child_env() and the storage tests' run_python() children are guarded."""
    assert run_child(CHILD, child_env()).returncode == 3
    proc = run_python(CHILD)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, out + err


def test_without_the_switch_a_child_is_not_guarded_by_accident() -> None:
    """The guard is the session's doing: the same child with the switch off is unguarded
    (it then fails on its own, as TEST-NET-1 is unroutable, but not by refusal)."""
    env = {k: v for k, v in os.environ.items() if k != no_network.ENV}
    done = run_child("import socket; print(hasattr(socket, '_runner_no_network'))", env)
    assert done.stdout.strip() == "False"
    guarded = run_child("import socket; print(hasattr(socket, '_runner_no_network'))",
                        os.environ)
    assert guarded.stdout.strip() == "True"
    assert str(Path(no_network.__file__).parent) in os.environ["PYTHONPATH"]
