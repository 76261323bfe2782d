"""A store in an S3 bucket, or any S3-compatible server (`s3://bucket` or `s3://bucket/prefix`).

Credentials, region and endpoint come from the AWS standard chain, read by boto3 (see
pyproject.toml for why boto3): the environment's `AWS_ACCESS_KEY_ID`,
`AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_PROFILE`, `AWS_REGION` /
`AWS_DEFAULT_REGION`, `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`, `AWS_CONFIG_FILE`,
`AWS_SHARED_CREDENTIALS_FILE`, `AWS_CA_BUNDLE`, `AWS_MAX_ATTEMPTS` and `AWS_RETRY_MODE`,
then `~/.aws` profiles, SSO, container and instance credentials as boto3 resolves them.
Never from a spec or the store URL, and never written anywhere: every message is built
here from the error's code, and scrubbed of the credential values it was given.

Opening does no I/O at all; the client (and with it the credential chain, which may
read files or ask an instance-metadata endpoint) is made by the first operation.

Uploads are verified as they are read: a video up to one part is read, hashed and sent
in one PUT; a bigger one goes up as a multipart upload, one part in memory at a time,
and is completed only once the whole file hashed to the sha256 it is stored under (else
the upload is aborted, so nothing appears under the final key). Downloads go through
`write_verified`, like the local store's.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import boto3
import botocore.config
import botocore.exceptions
import botocore.session
from botocore.exceptions import BotoCoreError, ClientError

from runner.durable import storage_error
from runner.errors import UsageError
from runner.loopback import is_loopback_host
from runner.store.base import (
    CHUNK,
    DigestMismatch,
    StoreError,
    corrupt_copy,
    not_held,
    sha_of_video_key,
    short,
    sidecar_key,
    source_changed,
    video_key,
    write_verified,
)

if TYPE_CHECKING:  # the stubs are a test-time dependency (mypy runs in the tests)
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

PART = 8 << 20  # multipart part size: S3's minimum is 5 MiB (except the last), its maximum
MAX_PARTS = 10_000  # parts per upload, S3's limit (a bigger file gets bigger parts)
POOL = 32  # HTTP connections per client: the engine may put and get from many threads
_BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,254}")  # permissive: legacy names exist
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})
_DENIED = frozenset(
    {
        "AccessDenied",
        "403",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
    }
)

# botocore's timeouts, which are not the built-in TimeoutError (nor its subclasses).
_TIMEOUTS = (botocore.exceptions.ConnectTimeoutError, botocore.exceptions.ReadTimeoutError)


@dataclass(frozen=True, slots=True)
class S3Settings:
    """The standard chain's variables, as found in the environment the store was opened with."""

    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    config_file: str | None = None
    credentials_file: str | None = None
    ca_bundle: str | None = None
    max_attempts: int | None = None
    retry_mode: str | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> S3Settings:
        """Read the AWS variables; raise UsageError for a half-set key pair or a bad value."""

        def get(*names: str) -> str | None:
            for name in names:
                if environ.get(name):
                    return environ[name]
            return None

        key_id, secret = get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY")
        if (key_id is None) != (secret is None):
            have, lack = (
                ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
                if secret is None
                else ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID")
            )
            msg = f"{have} is set but {lack} is not — set both, or neither and use AWS_PROFILE"
            raise UsageError(msg)
        endpoint = get("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
        if endpoint is not None:
            _check_endpoint(endpoint)
        attempts = get("AWS_MAX_ATTEMPTS")
        if attempts is not None and not (attempts.isdigit() and int(attempts) >= 1):
            msg = f"AWS_MAX_ATTEMPTS must be a whole number of 1 or more, not {attempts!r}"
            raise UsageError(msg)
        return cls(
            access_key_id=key_id,
            secret_access_key=secret,
            session_token=get("AWS_SESSION_TOKEN"),
            profile=get("AWS_PROFILE", "AWS_DEFAULT_PROFILE"),
            region=get("AWS_REGION", "AWS_DEFAULT_REGION"),
            endpoint_url=endpoint,
            config_file=get("AWS_CONFIG_FILE"),
            credentials_file=get("AWS_SHARED_CREDENTIALS_FILE"),
            ca_bundle=get("AWS_CA_BUNDLE"),
            max_attempts=int(attempts) if attempts is not None else None,
            retry_mode=get("AWS_RETRY_MODE"),
        )

    def secrets(self) -> tuple[str, ...]:
        """Return the credential values that no message may contain."""
        values = (self.access_key_id, self.secret_access_key, self.session_token)
        return tuple(v for v in values if v)

    def endpoint_shown(self) -> str:
        """Return the endpoint for messages: scheme, host and port only."""
        if self.endpoint_url is None:
            return "the default AWS S3 endpoint"
        parts = urlsplit(self.endpoint_url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}"


def _check_endpoint(endpoint: str) -> None:
    """Refuse an endpoint that is not http(s), or plain http to another machine."""
    try:
        parts = urlsplit(endpoint)
        _ = parts.port  # raises ValueError for a port that is not a number
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        msg = "AWS_ENDPOINT_URL is not an http(s) URL — set it like https://s3.example.com"
        raise UsageError(msg)
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        msg = (
            f"AWS_ENDPOINT_URL is plain http to {parts.hostname}: the session token and the "
            "videos would cross the network unencrypted — use https (plain http is for "
            "this machine only)"
        )
        raise UsageError(msg)


def open_s3(url: str, environ: Mapping[str, str]) -> S3Store:
    """Open `s3://bucket[/prefix]` with the standard chain's settings from `environ`."""
    parts = urlsplit(url)
    if "@" in parts.netloc:
        msg = (
            "a store URL must not hold credentials — give them as AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"
        )
        raise UsageError(msg)
    bucket = parts.netloc
    if not _BUCKET.fullmatch(bucket):
        msg = f"store URL {url!r} names no valid bucket — write s3://bucket or s3://bucket/prefix"
        raise UsageError(msg)
    if parts.query or parts.fragment:
        msg = (
            f"store URL {url!r} has a query or fragment — an S3 store is s3://bucket/prefix; "
            "region and endpoint come from AWS_REGION and AWS_ENDPOINT_URL"
        )
        raise UsageError(msg)
    prefix = "/".join(segment for segment in parts.path.split("/") if segment)
    return S3Store(bucket, prefix, S3Settings.from_environ(environ))


class S3Store:
    """A store whose objects live in `bucket` under `prefix`."""

    def __init__(self, bucket: str, prefix: str, settings: S3Settings) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.settings = settings
        self.url = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        self._made: S3Client | None = None
        self._making = threading.Lock()

    def inventory(self) -> frozenset[str]:
        """Return the sha256 of every video held, from one paginated listing of `videos/`."""
        start = len(self._key(""))
        held = set()
        with self._boundary("list the videos"):
            pages = self._client().get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self._key("videos/")
            )
            for page in pages:
                for item in page.get("Contents", []):
                    sha = sha_of_video_key(item["Key"][start:])
                    if sha is not None:
                        held.add(sha)
        return frozenset(held)

    def has(self, sha256: str) -> bool:
        """Tell whether the video with this sha256 is held."""
        key = self._key(video_key(sha256))
        with self._boundary(f"look up video {short(sha256)}"):
            return self._size_of(key) is not None

    def put(self, video: Path, sha256: str, sidecar: bytes) -> bool:
        """Upload `video` (unless held at its size), then `sidecar`; True if it was uploaded."""
        key = self._key(video_key(sha256))
        try:
            size = video.stat().st_size
        except OSError as exc:
            what = f"cannot read {video}: {exc.strerror or type(exc).__name__}"
            raise StoreError(self.url, what, "check the output folder and run again") from exc
        with self._boundary(f"upload {video}"):
            uploaded = self._size_of(key) != size
            if uploaded:
                self._upload(video, key, sha256, size)
            # A video just uploaded cannot have a current sidecar: skip the comparing GET.
            if uploaded or self._read(self._key(sidecar_key(sha256))) != sidecar:
                self._client().put_object(
                    Bucket=self.bucket,
                    Key=self._key(sidecar_key(sha256)),
                    Body=sidecar,
                    ContentType="application/json",
                )
        return uploaded

    def get(self, sha256: str, dest: Path) -> int:
        """Download the video to `dest` crash-safely after checking its sha256; return its size."""
        key = self._key(video_key(sha256))
        with self._boundary(f"download video {short(sha256)}"):
            try:
                body = self._client().get_object(Bucket=self.bucket, Key=key)["Body"]
            except ClientError as exc:
                if _code(exc) in _MISSING:
                    raise not_held(self.url, sha256) from None
                raise
            try:
                return write_verified(
                    dest,
                    body.iter_chunks(CHUNK),
                    sha256,
                    write_error=lambda exc: storage_error(exc, dest),
                )
            except DigestMismatch as exc:
                raise corrupt_copy(self.url, sha256, exc, f"s3://{self.bucket}/{key}") from None
            finally:
                body.close()

    def get_sidecar(self, sha256: str) -> bytes | None:
        """Return the sidecar stored beside the video, or None when there is none."""
        with self._boundary(f"read the sidecar of {short(sha256)}"):
            return self._read(self._key(sidecar_key(sha256)))

    # ------------------------------------------------------------------ inside the boundary

    def _key(self, name: str) -> str:
        """Return the object key of a layout name."""
        return f"{self.prefix}/{name}" if self.prefix else name

    def _client(self) -> S3Client:
        """Return the boto3 client, made on first use (opening the store does no I/O)."""
        with self._making:
            if self._made is None:
                self._made = _make_client(self.settings)
            return self._made

    def _size_of(self, key: str) -> int | None:
        """Return the size of the object at `key`, or None when there is none."""
        try:
            head = self._client().head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _code(exc) in _MISSING:
                return None
            raise
        return head["ContentLength"]

    def _read(self, key: str) -> bytes | None:
        """Return the whole (small) object at `key`, or None when there is none."""
        try:
            body = self._client().get_object(Bucket=self.bucket, Key=key)["Body"]
        except ClientError as exc:
            if _code(exc) in _MISSING:
                return None
            raise
        with body:
            return body.read()

    def _upload(self, video: Path, key: str, sha256: str, size: int) -> None:
        """Send `video` to `key`, completing the upload only if it hashes to `sha256`."""
        part_size = max(PART, -(-size // MAX_PARTS))
        client = self._client()
        digest = hashlib.sha256()
        with video.open("rb") as file:
            if size <= part_size:
                data = file.read(part_size + 1)  # one byte more shows a file that grew
                digest.update(data)
                if len(data) != size or digest.hexdigest() != sha256:
                    raise source_changed(self.url, video, sha256, len(data))
                client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType="video/mp4")
                return
            upload_id = client.create_multipart_upload(
                Bucket=self.bucket, Key=key, ContentType="video/mp4"
            )["UploadId"]
            try:
                parts: list[CompletedPartTypeDef] = []
                sent = 0
                while block := file.read(part_size):
                    digest.update(block)
                    sent += len(block)
                    answer = client.upload_part(
                        Bucket=self.bucket,
                        Key=key,
                        UploadId=upload_id,
                        PartNumber=len(parts) + 1,
                        Body=block,
                    )
                    parts.append({"PartNumber": len(parts) + 1, "ETag": answer["ETag"]})
                if sent != size or digest.hexdigest() != sha256:
                    raise source_changed(self.url, video, sha256, sent)
                client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                )
            except BaseException:
                self._abort(key, upload_id)
                raise

    def _abort(self, key: str, upload_id: str) -> None:
        """Abort a multipart upload, so its parts neither show nor cost; best effort."""
        with suppress(ClientError, BotoCoreError):  # the error that made us abort is the news
            self._client().abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    @contextmanager
    def _boundary(self, doing: str) -> Iterator[None]:
        """Translate boto3's errors (and OSError) into one scrubbed StoreError line."""
        try:
            yield
        except ClientError as exc:
            what, todo = _client_error_words(exc, self.bucket)
            raise self._error(f"cannot {doing}: {what}", todo) from exc
        except (
            botocore.exceptions.NoCredentialsError,
            botocore.exceptions.PartialCredentialsError,
        ) as exc:
            what = f"cannot {doing}: no AWS credentials found"
            todo = "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"
            raise self._error(what, todo) from exc
        except botocore.exceptions.ProfileNotFound as exc:
            what = f"cannot {doing}: AWS profile {self.settings.profile!r} not found"
            raise self._error(what, "fix AWS_PROFILE or add it to ~/.aws/config") from exc
        except (
            botocore.exceptions.IncompleteReadError,
            botocore.exceptions.ResponseStreamingError,
        ) as exc:
            what = f"cannot {doing}: the transfer ended early ({type(exc).__name__})"
            raise self._error(what, "run again") from exc
        except (botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError) as exc:
            detail = "timed out" if isinstance(exc, _TIMEOUTS) else type(exc).__name__
            what = f"cannot {doing}: {self.settings.endpoint_shown()} did not answer ({detail})"
            todo = "check AWS_ENDPOINT_URL and that the server is up, then run again"
            raise self._error(what, todo) from exc
        except botocore.exceptions.NoRegionError as exc:
            what = f"cannot {doing}: no AWS region is set"
            raise self._error(what, "set AWS_REGION, or region in the AWS profile") from exc
        except BotoCoreError as exc:
            what = f"cannot {doing}: {type(exc).__name__}: {exc}"
            raise self._error(what, "check the AWS settings and run again") from exc
        except OSError as exc:  # reading the local video being uploaded
            where = f" ({exc.filename})" if exc.filename else ""
            what = f"cannot {doing}: {exc.strerror or type(exc).__name__}{where}"
            raise self._error(what, "check the output folder and run again") from exc

    def _error(self, what: str, todo: str) -> StoreError:
        """Make a StoreError whose text holds none of the credentials in use."""
        for secret in self.settings.secrets():
            what, todo = what.replace(secret, "***"), todo.replace(secret, "***")
        return StoreError(self.url, " ".join(what.split()), todo)


def _code(exc: ClientError) -> str:
    """Return an S3 error's code ("NoSuchKey", or the bare status for a HEAD: "404")."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def _client_error_words(exc: ClientError, bucket: str) -> tuple[str, str]:
    """Say what an S3 error answer means (what, todo), from its code."""
    code = _code(exc)
    if code == "NoSuchBucket":
        return f"bucket {bucket!r} does not exist", "create it, or fix the bucket in --store"
    if code in _DENIED:
        return (
            f"access denied ({code})",
            "check the AWS credentials (AWS_ACCESS_KEY_ID / AWS_PROFILE) and the bucket's policy",
        )
    if code.isdigit():  # the answer to a HEAD has no body, so no code beyond its status
        return (
            f"the server answered HTTP {code} and gave no reason",
            "check the AWS credentials, session token and region, then run again",
        )
    # botocore gives an empty <Message></Message> as None, which must not read "None".
    message = str(exc.response.get("Error", {}).get("Message") or "") or "no message"
    # An answer without a <Code> is named by its status, not by nothing.
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    said = code or f"HTTP {status}"
    return f"the server answered {said}: {message}", "check the store and run again"


def _make_client(settings: S3Settings) -> S3Client:
    """Build the S3 client from the settings; what they leave unset, boto3 resolves itself."""
    session = boto3.session.Session(
        aws_access_key_id=settings.access_key_id,
        aws_secret_access_key=settings.secret_access_key,
        aws_session_token=settings.session_token,
        region_name=settings.region,
        profile_name=settings.profile,
        botocore_session=_botocore_session(settings),
    )
    config = botocore.config.Config(max_pool_connections=POOL)
    return session.client(
        "s3",
        endpoint_url=settings.endpoint_url,
        verify=settings.ca_bundle,
        config=config,
    )


def _botocore_session(settings: S3Settings) -> botocore.session.Session:
    """A botocore session with the settings' files and retry policy, as if from its env."""
    session = botocore.session.Session()
    # Leave timestamps as text, as the AWS CLI does: the store reads none, and dateutil
    # parsing every LastModified was three quarters of the CPU of listing 10,000 videos.
    session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=str)
    if settings.max_attempts is not None:
        session.set_config_variable("max_attempts", settings.max_attempts)
    if settings.retry_mode is not None:
        session.set_config_variable("retry_mode", settings.retry_mode)
    if settings.config_file is not None:
        session.set_config_variable("config_file", os.path.expanduser(settings.config_file))
    if settings.credentials_file is not None:
        path = os.path.expanduser(settings.credentials_file)
        session.set_config_variable("credentials_file", path)
    return session
