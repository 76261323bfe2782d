"""A real S3 HTTP server on loopback for the store's tests and benchmark: moto's server mode.

`python -m moto.server` runs as its own process on 127.0.0.1 and a free port, with
authentication on (`INITIAL_NO_AUTH_ACTION_COUNT`): its first three requests, unsigned
by any key it knows, create an IAM user, give it every right and issue its access key;
from then on a request signed with any other key or secret is refused, as AWS would.

One server may serve many test sessions, one after another or at once: scripts/mutation.py
starts one for a whole run and names it in RUNNER_TEST_MOTO (`shared_env`), and each
mutant's session attaches to it (`MotoServer.shared`) instead of starting its own. So that
sessions never meet, the buckets and roles a MotoServer object makes carry its own random
token in their names, and an attached session deletes its buckets when it ends.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import boto3
import httpx

REGION = "us-east-1"
SHARED = "RUNNER_TEST_MOTO"  # a running server's port and test user's key, as JSON
_BOOTSTRAP_ACTIONS = 3  # create_user, put_user_policy, create_access_key
_ALLOW_ALL = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}


def free_port() -> int:
    """Return a loopback port that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class MotoServer:
    """A moto S3 server subprocess with one IAM user whose key signs every request."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.port = 0
        self.key_id = ""
        self.secret = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._roles: list[str] = []
        self._buckets: list[str] = []
        self._token = uuid.uuid4().hex[:8]  # this object's names differ from any other's

    @classmethod
    def shared(cls, environ: Mapping[str, str], log: Path) -> MotoServer | None:
        """Return the running server that `environ` names in RUNNER_TEST_MOTO, or None."""
        named = environ.get(SHARED)
        if not named:
            return None
        facts = json.loads(named)
        server = cls(log)
        server.port, server.key_id, server.secret = facts["port"], facts["key_id"], facts["secret"]
        return server

    def shared_env(self) -> dict[str, str]:
        """The variable that lets another process's tests attach to this server."""
        facts = {"port": self.port, "key_id": self.key_id, "secret": self.secret}
        return {SHARED: json.dumps(facts)}

    @property
    def running(self) -> bool:
        """Tell whether the server this object started is still up (False if attached)."""
        return self._process is not None and self._process.poll() is None

    @property
    def endpoint(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> MotoServer:
        """Start the server, wait until it answers, then issue the test user's key."""
        env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(_BOOTSTRAP_ACTIONS)}
        self.port = free_port()
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        try:
            self._wait(self._process, timeout)
            self._issue_key()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait(self, process: subprocess.Popen[bytes], timeout: float) -> None:
        """Return once the server answers HTTP; raise if it exits or stays silent."""
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                msg = f"moto server exited with {process.returncode}; see {self.log}"
                raise RuntimeError(msg)
            try:
                # The dashboard's data is no AWS action: it does not use up the unsigned ones.
                httpx.get(f"{self.endpoint}/moto-api/data.json", timeout=1.0)
                return
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    msg = f"moto server did not answer within {timeout} s; see {self.log}"
                    raise RuntimeError(msg) from None
                time.sleep(0.1)  # a real process starting up: there is no clock to inject

    def _issue_key(self) -> None:
        """Spend the unsigned requests on a user with every right, and keep its key."""
        iam = boto3.client(
            "iam", **{**self._kwargs(), "aws_access_key_id": "x", "aws_secret_access_key": "x"}
        )
        iam.create_user(UserName="runner-store")
        iam.put_user_policy(
            UserName="runner-store", PolicyName="all", PolicyDocument=json.dumps(_ALLOW_ALL)
        )
        key = iam.create_access_key(UserName="runner-store")["AccessKey"]
        self.key_id, self.secret = key["AccessKeyId"], key["SecretAccessKey"]

    def env(self) -> dict[str, str]:
        """The AWS variables a store needs to reach this server as the test user."""
        return {
            "AWS_ACCESS_KEY_ID": self.key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": REGION,
        }

    def _kwargs(self) -> dict[str, str]:
        """The test user's boto3 client arguments."""
        return {
            "endpoint_url": self.endpoint,
            "region_name": REGION,
            "aws_access_key_id": self.key_id,
            "aws_secret_access_key": self.secret,
        }

    def create_role(self) -> str:
        """Create a role with every right that the test user may assume; return its ARN."""
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}
            ],
        }
        iam = boto3.client("iam", **self._kwargs())
        name = f"runner-store-{self._token}-{len(self._roles)}"
        role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
        iam.put_role_policy(RoleName=name, PolicyName="all", PolicyDocument=json.dumps(_ALLOW_ALL))
        arn: str = role["Role"]["Arn"]
        self._roles.append(arn)
        return arn

    def temporary_env(self) -> dict[str, str]:
        """The AWS variables of an assumed role: a temporary key that needs its session token."""
        sts = boto3.client("sts", **self._kwargs())
        granted = sts.assume_role(RoleArn=self.create_role(), RoleSessionName="store-test")
        return {
            **self.env(),
            "AWS_ACCESS_KEY_ID": granted["Credentials"]["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": granted["Credentials"]["SecretAccessKey"],
            "AWS_SESSION_TOKEN": granted["Credentials"]["SessionToken"],
        }

    def client(self) -> Any:
        """A boto3 S3 client of the test user, for setting up and inspecting buckets."""
        return boto3.client("s3", **self._kwargs())

    def create_bucket(self, name: str, *, versioned: bool = False) -> str:
        """Create a bucket named `name`-TOKEN; return that name (versioned: every write of a
        key keeps its own version)."""
        name = f"{name}-{self._token}"
        client = self.client()
        client.create_bucket(Bucket=name)
        self._buckets.append(name)
        if versioned:
            client.put_bucket_versioning(
                Bucket=name, VersioningConfiguration={"Status": "Enabled"}
            )
        return name

    def delete_buckets(self) -> None:
        """Delete the buckets this object made, with every version and unfinished upload."""
        client = self.client()
        for name in self._buckets:
            # Each listing starts over: deleting between pages would move the next page.
            while uploads := client.list_multipart_uploads(Bucket=name).get("Uploads", []):
                for upload in uploads:
                    client.abort_multipart_upload(
                        Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
            while True:
                listing = client.list_object_versions(Bucket=name)
                found = listing.get("Versions", []) + listing.get("DeleteMarkers", [])
                if not found:
                    break
                gone = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in found]
                client.delete_objects(Bucket=name, Delete={"Objects": gone})
            client.delete_bucket(Bucket=name)
        self._buckets.clear()

    def stop(self) -> None:
        """Stop the server and wait for it to be gone."""
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()
