"""The S3 store and the AWS standard chain against a real, authenticating S3 server:
keys, session tokens, profiles, and errors that never carry a credential.
"""

from __future__ import annotations

import hashlib
import socket
import ssl
import subprocess
import threading
import traceback
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from runner.errors import UsageError
from runner.store import StoreError, open_store
from runner.store.s3 import S3Settings, S3Store
from tests.store.moto_server import MotoServer

CANARY_KEY = "AKIACANARY00000001"
CANARY_SECRET = "canary-secret-5b9e"
CANARY_TOKEN = "canary-token-77d1"
CANARIES = (CANARY_KEY, CANARY_SECRET, CANARY_TOKEN)


def everything_said(error: BaseException) -> str:
    """The message, repr and whole traceback chain, as a log or a crash report would hold."""
    return str(error) + repr(error) + "".join(traceback.format_exception(error))


def assert_one_clean_line(error: StoreError, *secrets: str) -> None:
    """The error is one line, names its store, and holds no canary nor any given secret."""
    message = str(error)
    assert "\n" not in message and message.startswith(f"store {error.store_url}: ")
    said = everything_said(error)
    leaked = [s for s in (*CANARIES, *secrets) if s and s in said]
    assert leaked == [], said


@pytest.fixture
def video(tmp_path: Path) -> tuple[Path, str]:
    """A small video file and its sha256."""
    data = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40
    path = tmp_path / "clip.mp4"
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port bound but not listening: every connection to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def test_keys_from_the_environment_reach_the_bucket(
    moto: MotoServer, bucket: str, s3_env: dict[str, str], video: tuple[Path, str], tmp_path: Path
) -> None:
    """With only AWS_* variables set in the process, put and get work (the default environ)."""
    store = open_store(f"s3://{bucket}/from-env")
    path, sha = video
    assert store.put(path, sha, b"{}") is True
    assert store.get(sha, tmp_path / "back.mp4") == path.stat().st_size


def test_a_store_at_the_bucket_root_works(
    moto: MotoServer, video: tuple[Path, str], tmp_path: Path
) -> None:
    """s3://bucket with no prefix keeps the layout at the top of the bucket."""
    name = moto.create_bucket("runner-store-root")
    store = open_store(f"s3://{name}", environ=moto.env())
    path, sha = video
    store.put(path, sha, b"{}")
    keys = [item["Key"] for item in moto.client().list_objects_v2(Bucket=name)["Contents"]]
    assert sorted(keys) == [f"sidecars/{sha}.json", f"videos/{sha[:2]}/{sha}.mp4"]
    assert store.inventory() == frozenset({sha})


def test_a_session_token_is_sent_with_temporary_keys(
    moto: MotoServer, bucket: str, video: tuple[Path, str]
) -> None:
    """An assumed role's key works with AWS_SESSION_TOKEN and is refused without it."""
    environ = moto.temporary_env()
    path, sha = video
    assert open_store(f"s3://{bucket}/temporary", environ=environ).put(path, sha, b"{}")
    without = {k: v for k, v in environ.items() if k != "AWS_SESSION_TOKEN"}
    with pytest.raises(StoreError) as caught:
        open_store(f"s3://{bucket}/temporary", environ=without).has(sha)
    assert "access denied" in str(caught.value)
    assert_one_clean_line(caught.value, environ["AWS_SECRET_ACCESS_KEY"])


def test_a_profile_from_the_shared_credentials_file_is_used(
    moto: MotoServer, bucket: str, video: tuple[Path, str], tmp_path: Path
) -> None:
    """AWS_PROFILE picks keys, or a role to assume, from the ~/.aws files the settings name."""
    credentials = tmp_path / "credentials"
    credentials.write_text(
        f"[nightly]\naws_access_key_id = {moto.key_id}\n"
        f"aws_secret_access_key = {moto.secret}\n"
        f"[wrong]\naws_access_key_id = {CANARY_KEY}\naws_secret_access_key = {CANARY_SECRET}\n"
    )
    config = tmp_path / "config"
    config.write_text(
        "[profile nightly]\nregion = us-east-1\n[profile wrong]\nregion = us-east-1\n"
        f"[profile role]\nrole_arn = {moto.create_role()}\nsource_profile = nightly\n"
        f"region = us-east-1\nendpoint_url = {moto.endpoint}\n"
    )
    environ = {
        "AWS_PROFILE": "nightly",
        "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
        "AWS_CONFIG_FILE": str(config),
        "AWS_ENDPOINT_URL": moto.endpoint,
    }
    path, sha = video
    store = open_store(f"s3://{bucket}/profile", environ=environ)
    assert store.put(path, sha, b"{}") is True
    # A profile that assumes a role from another: boto3 asks STS for temporary keys.
    assumed = open_store(f"s3://{bucket}/profile", environ={**environ, "AWS_PROFILE": "role"})
    assert assumed.get(sha, tmp_path / "back.mp4") == path.stat().st_size
    with pytest.raises(StoreError) as caught:
        open_store(f"s3://{bucket}/profile", environ={**environ, "AWS_PROFILE": "wrong"}).has(sha)
    assert "access denied" in str(caught.value)
    assert_one_clean_line(caught.value)


def test_an_unknown_profile_is_one_line(moto: MotoServer, bucket: str) -> None:
    """A profile that no ~/.aws file defines is named, with what to fix."""
    environ = {"AWS_PROFILE": "nowhere", "AWS_ENDPOINT_URL": moto.endpoint}
    with pytest.raises(StoreError) as caught:
        open_store(f"s3://{bucket}", environ=environ).inventory()
    assert "AWS profile 'nowhere' not found" in str(caught.value)
    assert_one_clean_line(caught.value)


@pytest.mark.parametrize(
    ("which", "code"),
    [("secret", "SignatureDoesNotMatch"), ("key", "InvalidAccessKeyId"), ("token", "InvalidToken")],
)
def test_rejected_credentials_never_show_in_the_error(
    moto: MotoServer, bucket: str, video: tuple[Path, str], tmp_path: Path, which: str, code: str
) -> None:
    """A wrong secret, an unknown key or a bad token: 'access denied' and no canary anywhere."""
    environ = moto.env()
    if which == "secret":
        environ["AWS_SECRET_ACCESS_KEY"] = CANARY_SECRET
    elif which == "key":
        environ.update(AWS_ACCESS_KEY_ID=CANARY_KEY, AWS_SECRET_ACCESS_KEY=CANARY_SECRET)
    else:
        environ = {**moto.temporary_env(), "AWS_SESSION_TOKEN": CANARY_TOKEN}
    store = open_store(f"s3://{bucket}/denied", environ=environ)
    path, sha = video
    said = []
    for operation in (
        store.inventory,
        lambda: store.put(path, sha, b"{}"),
        lambda: store.get(sha, tmp_path / "back.mp4"),
        lambda: store.get_sidecar(sha),
    ):
        with pytest.raises(StoreError) as caught:
            operation()
        said.append(str(caught.value))
        assert_one_clean_line(caught.value, environ["AWS_SECRET_ACCESS_KEY"])
    # The answer to a HEAD (put's first request) has no body, so only a status to report.
    assert all("access denied (" in m or "gave no reason" in m for m in said), said
    assert any(f"access denied ({code})" in m for m in said), said


def test_no_credentials_at_all_is_one_line(moto: MotoServer, bucket: str) -> None:
    """With no key, no profile and no instance metadata, the error says what to set."""
    with pytest.raises(StoreError) as caught:
        open_store(f"s3://{bucket}", environ={"AWS_ENDPOINT_URL": moto.endpoint}).inventory()
    message = str(caught.value)
    assert "no AWS credentials found" in message and "AWS_ACCESS_KEY_ID" in message
    assert_one_clean_line(caught.value)


def test_an_unreachable_endpoint_is_one_line_per_operation(
    closed_port: int, video: tuple[Path, str], tmp_path: Path
) -> None:
    """A closed loopback port: every operation fails with one line naming the endpoint."""
    environ = {
        "AWS_ACCESS_KEY_ID": CANARY_KEY,
        "AWS_SECRET_ACCESS_KEY": CANARY_SECRET,
        "AWS_SESSION_TOKEN": CANARY_TOKEN,
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed_port}",
        "AWS_REGION": "us-east-1",
        "AWS_MAX_ATTEMPTS": "1",  # one try: botocore's backoff would really sleep
    }
    store = open_store("s3://bucket/prefix", environ=environ)
    path, sha = video
    for operation in (
        store.inventory,
        lambda: store.has(sha),
        lambda: store.put(path, sha, b"{}"),
        lambda: store.get(sha, tmp_path / "back.mp4"),
        lambda: store.get_sidecar(sha),
    ):
        with pytest.raises(StoreError) as caught:
            operation()
        message = str(caught.value)
        assert f"http://127.0.0.1:{closed_port} did not answer" in message
        assert "AWS_ENDPOINT_URL" in message
        assert_one_clean_line(caught.value)
    assert not (tmp_path / "back.mp4").exists()


def test_a_missing_bucket_is_named(moto: MotoServer, video: tuple[Path, str]) -> None:
    """Putting into a bucket that does not exist says so and how to fix it."""
    path, sha = video
    with pytest.raises(StoreError) as caught:
        open_store("s3://no-such-bucket-here", environ=moto.env()).put(path, sha, b"{}")
    assert "bucket 'no-such-bucket-here' does not exist" in str(caught.value)
    assert_one_clean_line(caught.value, moto.secret)


# ------------------------------------------------------------------ the settings read


EVERY_VARIABLE = {
    "AWS_ACCESS_KEY_ID": "AKIAFIRST", "AWS_SECRET_ACCESS_KEY": "secret-first",
    "AWS_SESSION_TOKEN": "token-first", "AWS_PROFILE": "nightly", "AWS_REGION": "eu-west-1",
    "AWS_ENDPOINT_URL_S3": "https://s3.example.com", "AWS_CONFIG_FILE": "/etc/aws/config",
    "AWS_SHARED_CREDENTIALS_FILE": "/etc/aws/credentials", "AWS_CA_BUNDLE": "/etc/aws/ca.pem",
    "AWS_MAX_ATTEMPTS": "7", "AWS_RETRY_MODE": "standard",
    # The second of each pair, which the first overrides.
    "AWS_DEFAULT_PROFILE": "other", "AWS_DEFAULT_REGION": "ap-south-1",
    "AWS_ENDPOINT_URL": "https://other.example.com",
}
FROM_EVERY_VARIABLE = S3Settings(
    access_key_id="AKIAFIRST", secret_access_key="secret-first", session_token="token-first",
    profile="nightly", region="eu-west-1", endpoint_url="https://s3.example.com",
    config_file="/etc/aws/config", credentials_file="/etc/aws/credentials",
    ca_bundle="/etc/aws/ca.pem", max_attempts=7, retry_mode="standard",
)


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        (EVERY_VARIABLE, FROM_EVERY_VARIABLE),
        ({"AWS_DEFAULT_PROFILE": "other", "AWS_DEFAULT_REGION": "ap-south-1",
          "AWS_ENDPOINT_URL": "https://other.example.com"},
         S3Settings(profile="other", region="ap-south-1",
                    endpoint_url="https://other.example.com")),
        # An empty variable is unset: the second of its pair, or nothing, is used.
        ({"AWS_PROFILE": "", "AWS_DEFAULT_PROFILE": "other", "AWS_REGION": "",
          "AWS_DEFAULT_REGION": "ap-south-1", "AWS_ENDPOINT_URL_S3": "",
          "AWS_ENDPOINT_URL": "https://other.example.com", "AWS_ACCESS_KEY_ID": "",
          "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "", "AWS_MAX_ATTEMPTS": ""},
         S3Settings(profile="other", region="ap-south-1",
                    endpoint_url="https://other.example.com")),
        ({}, S3Settings()),
        ({"AWS_MAX_ATTEMPTS": "1"}, S3Settings(max_attempts=1)),
    ],
    ids=["every-variable", "second-of-each-pair", "empty-is-unset", "none", "one-attempt"],
)
def test_each_setting_comes_from_its_variable_the_first_of_a_pair_winning(
    environ: dict[str, str], expected: S3Settings
) -> None:
    """Keys, token, profile, region, endpoint, files, CA bundle and retries are read from
    their own variables; AWS_PROFILE, AWS_REGION and AWS_ENDPOINT_URL_S3 win over the
    general ones, and a variable set to nothing counts as unset."""
    assert S3Settings.from_environ(environ) == expected


@pytest.mark.parametrize(
    ("environ", "line"),
    [
        ({"AWS_ACCESS_KEY_ID": "AKIAONLY"},
         "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not — set both, or neither "
         "and use AWS_PROFILE"),
        ({"AWS_SECRET_ACCESS_KEY": CANARY_SECRET},
         "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not — set both, or neither "
         "and use AWS_PROFILE"),
        ({"AWS_MAX_ATTEMPTS": "0"},
         "AWS_MAX_ATTEMPTS must be a whole number of 1 or more, not '0'"),
        ({"AWS_MAX_ATTEMPTS": "-2"},
         "AWS_MAX_ATTEMPTS must be a whole number of 1 or more, not '-2'"),
        ({"AWS_ENDPOINT_URL": "http://10.0.0.5:9000"},
         "AWS_ENDPOINT_URL is plain http to 10.0.0.5: the session token and the videos would "
         "cross the network unencrypted — use https (plain http is for this machine only)"),
    ]
    + [({"AWS_ENDPOINT_URL": bad},
        "AWS_ENDPOINT_URL is not an http(s) URL — set it like https://s3.example.com")
       for bad in ("s3.example.com", "ftp://127.0.0.1", "http://", "https://host:99999",
                   "https://host:port")],
)
def test_each_refused_setting_is_its_exact_line(environ: dict[str, str], line: str) -> None:
    """A half key pair, too few attempts, plain http off this machine or an endpoint that is
    no http(s) URL with a host and a port that is a number: the one line that says so."""
    with pytest.raises(UsageError) as caught:
        open_store("s3://bucket", environ=environ)
    assert str(caught.value) == line


@pytest.mark.parametrize(
    "endpoint", ["http://localhost:9000", "http://[::1]:9000", "http://127.0.0.2",
                 "https://s3.example.com:8443/path"],
)
def test_loopback_http_and_any_https_endpoint_open(endpoint: str) -> None:
    """Plain http to any loopback name or address, and https anywhere, are accepted as given."""
    store = open_store("s3://bucket", environ={"AWS_ENDPOINT_URL": endpoint})
    assert isinstance(store, S3Store) and store.settings.endpoint_url == endpoint


@pytest.mark.parametrize(
    ("url", "line"),
    [
        ("s3://AKIAX@bucket/p",
         "a store URL must not hold credentials — give them as AWS_ACCESS_KEY_ID and "
         "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"),
        ("s3://b/p", "store URL 's3://b/p' names no valid bucket — write s3://bucket or "
         "s3://bucket/prefix"),
        ("s3://bucket!/p", "store URL 's3://bucket!/p' names no valid bucket — write "
         "s3://bucket or s3://bucket/prefix"),
        ("s3://bucket/p#x", "store URL 's3://bucket/p#x' has a query or fragment — an S3 store "
         "is s3://bucket/prefix; region and endpoint come from AWS_REGION and AWS_ENDPOINT_URL"),
    ],
)
def test_each_refused_store_url_is_its_exact_line(url: str, line: str) -> None:
    """Credentials in the URL, a bucket name S3 cannot have, or a fragment: one exact line."""
    with pytest.raises(UsageError) as caught:
        open_store(url, environ={})
    assert str(caught.value) == line


def test_the_shortest_bucket_name_opens() -> None:
    """A two-letter bucket (what legacy names allow) is a bucket, not a refusal."""
    store = open_store("s3://ab/p", environ={})
    assert isinstance(store, S3Store) and (store.bucket, store.prefix) == ("ab", "p")


def test_the_s3_endpoint_variable_wins_over_the_general_one(
    moto: MotoServer, bucket: str, closed_port: int, video: tuple[Path, str]
) -> None:
    """AWS_ENDPOINT_URL_S3 names the server used even when AWS_ENDPOINT_URL names another."""
    environ = {**moto.env(), "AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed_port}",
               "AWS_ENDPOINT_URL_S3": moto.endpoint, "AWS_MAX_ATTEMPTS": "1"}
    store = open_store(f"s3://{bucket}/s3-endpoint", environ=environ)
    path, sha = video
    assert store.put(path, sha, b"{}") is True
    assert store.has(sha)


def test_a_key_id_without_its_secret_in_a_profile_is_no_credentials(
    tmp_path: Path, closed_port: int
) -> None:
    """A profile whose credentials file lacks the secret: the same line as no credentials."""
    (tmp_path / "credentials").write_text(f"[half]\naws_access_key_id = {CANARY_KEY}\n")
    (tmp_path / "config").write_text("[profile half]\nregion = us-east-1\n")
    environ = {"AWS_PROFILE": "half", "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
               "AWS_CONFIG_FILE": str(tmp_path / "config"),
               "AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed_port}"}
    store = open_store("s3://bucket/p", environ=environ)
    with pytest.raises(StoreError) as caught:
        store.inventory()
    assert str(caught.value) == (
        "store s3://bucket/p: cannot list the videos: no AWS credentials found — set "
        "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"
    )
    assert_one_clean_line(caught.value)


def test_no_credentials_and_an_unknown_profile_are_their_exact_lines(
    moto: MotoServer, bucket: str
) -> None:
    """No key anywhere, or a profile no file defines: what is missing and what to set."""
    with pytest.raises(StoreError) as caught:
        open_store(f"s3://{bucket}", environ={"AWS_ENDPOINT_URL": moto.endpoint}).has("a" * 64)
    assert str(caught.value) == (
        f"store s3://{bucket}: cannot look up video {'a' * 12}…: no AWS credentials found — "
        "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"
    )
    environ = {"AWS_PROFILE": "nowhere", "AWS_ENDPOINT_URL": moto.endpoint}
    with pytest.raises(StoreError) as caught:
        open_store(f"s3://{bucket}", environ=environ).get_sidecar("a" * 64)
    assert str(caught.value) == (
        f"store s3://{bucket}: cannot read the sidecar of {'a' * 12}…: AWS profile 'nowhere' "
        "not found — fix AWS_PROFILE or add it to ~/.aws/config"
    )


def test_a_retry_mode_botocore_refuses_is_one_line_in_its_words(closed_port: int) -> None:
    """AWS_RETRY_MODE reaches botocore: a value it does not know is told, with what to check."""
    store = open_store("s3://bucket/p", environ={
        "AWS_ACCESS_KEY_ID": CANARY_KEY, "AWS_SECRET_ACCESS_KEY": CANARY_SECRET,
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed_port}", "AWS_RETRY_MODE": "bogus"})
    with pytest.raises(StoreError) as caught:
        store.inventory()
    assert str(caught.value) == (
        "store s3://bucket/p: cannot list the videos: InvalidRetryModeError: Invalid value "
        "provided to \"mode\": \"bogus\" must be one of: ('legacy', 'standard', 'adaptive') — "
        "check the AWS settings and run again"
    )
    assert_one_clean_line(caught.value)


def test_the_region_reaches_the_client(closed_port: int) -> None:
    """AWS_REGION (else AWS_DEFAULT_REGION) is the region the client signs for."""
    environ = {"AWS_ACCESS_KEY_ID": CANARY_KEY, "AWS_SECRET_ACCESS_KEY": CANARY_SECRET,
               "AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed_port}"}
    for extra, region in (({"AWS_REGION": "eu-west-3", "AWS_DEFAULT_REGION": "ap-south-1"},
                           "eu-west-3"), ({"AWS_DEFAULT_REGION": "ap-south-1"}, "ap-south-1")):
        store = open_store("s3://bucket/p", environ={**environ, **extra})
        assert isinstance(store, S3Store)
        assert store._client().meta.region_name == region


class _NoSuchKey(BaseHTTPRequestHandler):
    """Answers every GET as S3 does for a key it does not hold."""

    def do_GET(self) -> None:  # the name http.server dispatches to
        body = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code>'
                b"<Message>none</Message></Error>")
        self.send_response(404)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output quiet."""


@pytest.fixture
def tls_s3(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An https server on loopback posing as S3, its certificate self-signed (the CA file)."""
    cert, key = tmp_path / "ca.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NoSuchKey)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", cert
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_aws_ca_bundle_is_the_authority_an_https_endpoint_is_checked_against(
    tls_s3: tuple[str, Path],
) -> None:
    """With AWS_CA_BUNDLE naming its certificate the server is trusted (a missing sidecar is
    None); without it, the same server is refused as one that did not answer."""
    endpoint, cert = tls_s3
    environ = {"AWS_ACCESS_KEY_ID": CANARY_KEY, "AWS_SECRET_ACCESS_KEY": CANARY_SECRET,
               "AWS_ENDPOINT_URL": endpoint, "AWS_REGION": "us-east-1", "AWS_MAX_ATTEMPTS": "1"}
    trusting = open_store("s3://bucket/p", environ={**environ, "AWS_CA_BUNDLE": str(cert)})
    assert trusting.get_sidecar("a" * 64) is None
    with pytest.raises(StoreError) as caught:
        open_store("s3://bucket/p", environ=environ).get_sidecar("a" * 64)
    assert f"{endpoint} did not answer (SSLError)" in str(caught.value)
    assert_one_clean_line(caught.value)
