"""The S3 store and the AWS standard chain against a real, authenticating S3 server:
keys, session tokens, profiles, and errors that never carry a credential.
"""

from __future__ import annotations

import hashlib
import socket
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.store import StoreError, open_store
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
