"""Fixtures for the store tests: a network guard, a clean AWS environment, a real S3 server
on loopback (moto's server mode, its own process), and one `Backend` per store kind so
the same tests run against a local folder and a bucket.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from runner.store import Store, StoreError, open_store
from tests.store.moto_server import MotoServer


def make_video(folder: Path, data: bytes, name: str = "clip.mp4") -> tuple[Path, str]:
    """Write `data` as a video file; return it and its sha256."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def failure(call: object) -> str:
    """Return the StoreError line `call()` raises."""
    assert callable(call)
    with pytest.raises(StoreError) as caught:
        call()
    return str(caught.value)


def _is_loopback(address: Any) -> bool:
    if isinstance(address, str | bytes):  # AF_UNIX paths
        return True
    host = address[0] if isinstance(address, tuple) else ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Refuse every connection that would leave the machine."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def guarded_connect(self: socket.socket, address: Any) -> None:
        if not _is_loopback(address):
            msg = f"test tried to reach the network: {address!r}"
            raise ConnectionRefusedError(msg)
        real_connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: Any) -> int:
        if not _is_loopback(address):
            msg = f"test tried to reach the network: {address!r}"
            raise ConnectionRefusedError(msg)
        return real_connect_ex(self, address)

    real_getaddrinfo = socket.getaddrinfo

    def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name is not None and not _is_loopback((name,)):
            msg = f"test tried to resolve a network name: {name!r}"
            raise OSError(msg)
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)
    yield


@pytest.fixture(autouse=True)
def clean_aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No AWS setting of the developer's reaches a test: no keys, no ~/.aws, no metadata."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """A real moto S3 server on 127.0.0.1, started once for the session and stopped after."""
    log = tmp_path_factory.mktemp("moto") / "server.log"
    shared = MotoServer.shared(os.environ, log)
    if shared is not None:
        # scripts/mutation.py's one server for every mutant's session: starting a server
        # was most of a mutant's time. This session's buckets are its own; drop them after.
        yield shared
        shared.delete_buckets()
        return
    with MotoServer(log=log) as server:
        yield server


@pytest.fixture(scope="session")
def bucket(moto: MotoServer) -> str:
    """A versioned bucket shared by the tests, each under its own prefix."""
    return moto.create_bucket("runner-store-tests", versioned=True)


@pytest.fixture
def s3_env(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point the standard AWS variables of this process at the moto server's test user."""
    env = moto.env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@dataclass
class Backend:
    """One store under test, with ways around it to plant and inspect raw objects."""

    kind: str
    store: Store
    write_raw: Callable[[str, bytes], None]  # put bytes at a layout name, bypassing the store
    version_of: Callable[[str], object]  # changes whenever the object at a name is rewritten
    leftovers: Callable[[], list[str]]  # temp files or unfinished uploads


def local_backend(root: Path) -> Backend:
    """A store in a folder, inspected through the file system."""

    def write_raw(name: str, data: bytes) -> None:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def version_of(name: str) -> object:
        stat = (root / name).stat()
        return (stat.st_ino, stat.st_mtime_ns)

    def leftovers() -> list[str]:
        return sorted(str(p) for p in root.rglob("*.part"))

    return Backend("file", open_store(str(root)), write_raw, version_of, leftovers)


def s3_backend(moto: MotoServer, bucket: str, prefix: str) -> Backend:
    """A store in a versioned bucket under `prefix`, inspected through boto3."""
    client = moto.client()

    def write_raw(name: str, data: bytes) -> None:
        client.put_object(Bucket=bucket, Key=f"{prefix}/{name}", Body=data)

    def version_of(name: str) -> object:
        key = f"{prefix}/{name}"
        listing = client.list_object_versions(Bucket=bucket, Prefix=key)
        return tuple(v["VersionId"] for v in listing.get("Versions", []) if v["Key"] == key)

    def leftovers() -> list[str]:
        listing = client.list_multipart_uploads(Bucket=bucket, Prefix=prefix)
        return [u["Key"] for u in listing.get("Uploads", [])]

    store = open_store(f"s3://{bucket}/{prefix}")
    return Backend("s3", store, write_raw, version_of, leftovers)


@pytest.fixture(params=["file", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Each test runs once on a local folder and once on the moto bucket."""
    if request.param == "file":
        return local_backend(tmp_path / "store")
    request.getfixturevalue("s3_env")
    moto: MotoServer = request.getfixturevalue("moto")
    bucket: str = request.getfixturevalue("bucket")
    return s3_backend(moto, bucket, f"t-{uuid.uuid4().hex[:12]}")
