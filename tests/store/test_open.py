"""Opening a store: which URLs mean which backend, the refusals, and no I/O until used."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from runner.errors import UsageError
from runner.store import LocalStore, open_store
from runner.store.s3 import S3Store
from tests.store.moto_server import MotoServer


def test_plain_paths_and_file_urls_open_local_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative path, an absolute path and file:/// all name a folder, made absolute."""
    monkeypatch.chdir(tmp_path)
    relative = open_store("./store")
    assert isinstance(relative, LocalStore) and relative.root == tmp_path / "store"
    absolute = open_store(str(tmp_path / "share"))
    assert isinstance(absolute, LocalStore) and absolute.root == tmp_path / "share"
    url = open_store(f"file://{tmp_path}/with%20space")
    assert isinstance(url, LocalStore) and url.root == tmp_path / "with space"
    assert url.url == (tmp_path / "with space").as_uri()
    assert open_store(url.url).root == url.root  # a store's url opens the same store


def test_s3_urls_name_a_bucket_and_a_tidy_prefix() -> None:
    """s3://bucket and s3://bucket/a//b/ open S3 stores shown as s3://bucket and s3://bucket/a/b."""
    root = open_store("s3://videos", environ={})
    assert isinstance(root, S3Store) and (root.bucket, root.prefix) == ("videos", "")
    assert root.url == "s3://videos"
    nested = open_store("s3://videos/team//nightly/", environ={})
    assert isinstance(nested, S3Store) and nested.prefix == "team/nightly"
    assert nested.url == "s3://videos/team/nightly"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("gs://bucket/x", "unsupported store URL scheme 'gs:'"),
        ("HTTPS://host/store", "unsupported store URL scheme 'https:'"),
        ("", "the store URL is empty"),
        ("file:relative/store", "is not a local folder"),
        ("file://otherhost/share", "is not a local folder"),
        ("file:///tmp/x?mode=1", "has a query or fragment"),
        ("s3://", "names no valid bucket"),
        ("s3://b/x", "names no valid bucket"),
        ("s3://bucket/x?region=eu-west-1", "has a query or fragment"),
    ],
)
def test_bad_urls_are_one_usage_line_naming_the_forms(url: str, expected: str) -> None:
    """Each malformed or unsupported URL is one UsageError line saying what to write."""
    with pytest.raises(UsageError) as caught:
        open_store(url, environ={})
    message = str(caught.value)
    assert expected in message and "\n" not in message
    assert caught.value.exit_code == 2
    if "scheme" in expected or "empty" in expected:
        assert "s3://bucket/prefix" in message and "file:///" in message


@pytest.mark.parametrize(
    "url", ["s3://AKIAXXXX:canary-secret-9@bucket/p", "https://user:canary-secret-9@host/store"]
)
def test_a_url_with_credentials_is_refused_without_repeating_them(url: str) -> None:
    """Credentials written into a store URL are refused, and the message does not echo them."""
    with pytest.raises(UsageError) as caught:
        open_store(url, environ={})
    assert "canary-secret-9" not in str(caught.value)
    assert "AKIAXXXX" not in str(caught.value)


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"AWS_ACCESS_KEY_ID": "AKIAONLY"}, "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY"),
        ({"AWS_SECRET_ACCESS_KEY": "canary-secret-9"}, "AWS_SECRET_ACCESS_KEY is set but"),
        ({"AWS_ENDPOINT_URL": "http://s3.example.com"}, "plain http to s3.example.com"),
        ({"AWS_ENDPOINT_URL_S3": "ftp://127.0.0.1:21"}, "is not an http(s) URL"),
        ({"AWS_ENDPOINT_URL": "http://127.0.0.1:port"}, "is not an http(s) URL"),
        ({"AWS_MAX_ATTEMPTS": "zero"}, "AWS_MAX_ATTEMPTS must be a whole number"),
    ],
)
def test_bad_aws_settings_are_refused_when_opening(
    environ: dict[str, str], expected: str
) -> None:
    """A half key pair, an endpoint that is not https (off loopback) or a bad number: one line."""
    with pytest.raises(UsageError) as caught:
        open_store("s3://bucket", environ=environ)
    message = str(caught.value)
    assert expected in message and "\n" not in message
    assert "canary-secret-9" not in message


def test_https_and_loopback_http_endpoints_are_accepted() -> None:
    """An https endpoint anywhere, and plain http on this machine, open without complaint."""
    for endpoint in ("https://s3.example.com", "http://127.0.0.1:9000", "http://localhost:9000"):
        store = open_store("s3://bucket", environ={"AWS_ENDPOINT_URL": endpoint})
        assert isinstance(store, S3Store) and store.settings.endpoint_url == endpoint


def test_opening_does_no_network_io_the_first_operation_does(
    moto: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """open_store connects to nothing; the first operation is what reaches the server."""
    connected: list[Any] = []
    guarded = socket.socket.connect  # the network guard's, which still refuses the outside

    def recording(self: socket.socket, address: Any) -> None:
        connected.append(address)
        guarded(self, address)

    monkeypatch.setattr(socket.socket, "connect", recording)
    name = moto.create_bucket("opening-is-quiet")
    connected.clear()
    store = open_store(f"s3://{name}/p", environ=moto.env())
    assert connected == []
    assert store.inventory() == frozenset()
    assert ("127.0.0.1", moto.port) in connected


def test_repr_of_an_s3_store_settings_holds_no_credentials() -> None:
    """The settings' repr (what a debugger or a log of locals shows) leaves the keys out."""
    environ = {
        "AWS_ACCESS_KEY_ID": "AKIACANARY0001",
        "AWS_SECRET_ACCESS_KEY": "canary-secret-9",
        "AWS_SESSION_TOKEN": "canary-token-9",
    }
    store = open_store("s3://bucket", environ=environ)
    assert isinstance(store, S3Store)
    shown = repr(store.settings) + repr(vars(store)) + store.url
    assert not any(value in shown for value in environ.values())
