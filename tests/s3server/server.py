"""Start the S3 test server (ministack, S3.md) as the test suite and the benchmarks both need it.

Importable without pytest: ``tests/plugins/s3.py`` (the session fixture) and ``bench/`` use the same code, so
a benchmark runs against exactly the server the tests do. ministack lives in its own virtualenv (it pins a
botocore that clashes with ours) and is started through ``launch.py`` beside this file, which adds the
``s3:authType`` condition key ministack 1.5.33 lacks. Root keys are generated per start and used only to
create IAM users: root bypasses header-signature checks and bucket policies there, so nothing runs as root.

(Not named ``ministack.py``: ``launch.py`` runs with this directory first on ``sys.path``, where such a module
would shadow the real ``ministack`` package.)
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx
from botocore.config import Config

REPO_ROOT = Path(__file__).resolve().parents[2]
MINISTACK_ENV = "CALLVAULT_MINISTACK"
DEFAULT_MINISTACK = REPO_ROOT / ".venv-ministack" / "bin" / "ministack"
LAUNCHER = Path(__file__).resolve().parent / "launch.py"
REGION = "us-east-1"
START_TIMEOUT = 30.0
_S3_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}


class MinistackUnavailable(RuntimeError):
    """No ministack installation at the configured path (the caller decides: skip, or say so)."""


class MinistackFailed(RuntimeError):
    """ministack exited or never became healthy; the message ends with the tail of its log."""


@dataclass(frozen=True)
class IamUser:
    name: str
    arn: str
    access_key_id: str
    secret_access_key: str = field(repr=False)


@dataclass(frozen=True)
class S3Server:
    """A running ministack. ``access_key_id``/``secret_access_key`` belong to an IAM user allowed s3:*."""

    endpoint_url: str
    region: str
    user: IamUser
    _root: tuple[str, str] = field(repr=False)

    @property
    def access_key_id(self) -> str:
        return self.user.access_key_id

    @property
    def secret_access_key(self) -> str:
        return self.user.secret_access_key

    def client(
        self,
        *,
        user: IamUser | None = None,
        secret_access_key: str | None = None,
        endpoint_url: str | None = None,
    ) -> Any:
        """A boto3 S3 client signing as ``user`` (default: the session's IAM user), configured like
        callvault's own (SigV4, path-style, no retries so refusals show at once). ``secret_access_key``
        and ``endpoint_url`` override the user's secret and the server, to test refusals."""
        who = user or self.user
        return boto3.client(
            "s3",
            endpoint_url=endpoint_url or self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=who.access_key_id,
            aws_secret_access_key=secret_access_key or who.secret_access_key,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                retries={"mode": "standard", "total_max_attempts": 1},
                connect_timeout=5,
            ),
        )

    def create_user(self, name: str) -> IamUser:
        """A new IAM user with an s3:* policy and an access key (created with the root key)."""
        iam = boto3.client(
            "iam",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self._root[0],
            aws_secret_access_key=self._root[1],
        )
        arn = iam.create_user(UserName=name)["User"]["Arn"]
        iam.put_user_policy(UserName=name, PolicyName="s3-all", PolicyDocument=json.dumps(_S3_ALL))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return IamUser(name, arn, key["AccessKeyId"], key["SecretAccessKey"])

    def fresh_bucket(self, client: Any | None = None) -> str:
        name = f"cv-test-{uuid.uuid4().hex[:16]}"
        (client or self.client()).create_bucket(Bucket=name)
        return name

    def drop_bucket(self, name: str, client: Any | None = None) -> None:
        """Empty and delete a bucket (ministack keeps objects in memory for the whole session)."""
        s3 = client or self.client()
        s3.delete_bucket_policy(Bucket=name)
        for upload in s3.list_multipart_uploads(Bucket=name).get("Uploads", []):
            s3.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
            for item in page.get("Contents", []):
                s3.delete_object(Bucket=name, Key=item["Key"])
        s3.delete_bucket(Bucket=name)


def ministack_executable() -> Path:
    """The ministack to run: $CALLVAULT_MINISTACK, else the repository's .venv-ministack."""
    return Path(os.environ.get(MINISTACK_ENV) or DEFAULT_MINISTACK)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_ministack(
    workdir: Path, *, user_name: str = "callvault-test", executable: Path | None = None
) -> Iterator[tuple[S3Server, subprocess.Popen[bytes]]]:
    """Start ministack (AUTH=true) on a free loopback port with its data and log under ``workdir``, create
    the IAM user ``user_name``, yield the server (signing as that user) and its process; stop it on exit.

    Raises :class:`MinistackUnavailable` when ministack is not installed and :class:`MinistackFailed` when it
    does not come up.
    """
    executable = executable or ministack_executable()
    python = executable.parent / "python"
    if not executable.exists() or not python.exists():
        raise MinistackUnavailable(f"no ministack at {executable} (set {MINISTACK_ENV} to its executable)")
    port = free_port()
    root = ("AKIA" + secrets.token_hex(8).upper(), secrets.token_urlsafe(30))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MINISTACK_"))}
    env.update(
        BIND_HOST="127.0.0.1",
        GATEWAY_PORT=str(port),
        AUTH="true",
        SERVICES="s3,iam,sts",
        AWS_ACCESS_KEY_ID=root[0],
        AWS_SECRET_ACCESS_KEY=root[1],
        MINISTACK_REGION=REGION,
        TMPDIR=str(workdir),
        S3_DATA_DIR=str(workdir / "s3"),
        STATE_DIR=str(workdir / "state"),
        PERSIST_STATE="0",
        LOG_LEVEL="WARNING",
    )
    log = workdir / "ministack.log"
    with open(log, "wb") as log_handle:
        process = subprocess.Popen(
            [str(python), str(LAUNCHER)], env=env, stdout=log_handle, stderr=subprocess.STDOUT, cwd=workdir
        )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(url, process, log)
        bootstrap = S3Server(url, REGION, IamUser("root", "", *root), root)
        yield S3Server(url, REGION, bootstrap.create_user(user_name), root), process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    with httpx.Client(trust_env=False, timeout=2.0) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = log.read_text()[-3000:]
                raise MinistackFailed(f"ministack exited with {process.returncode}:\n{tail}")
            try:
                if http.get(f"{url}/_ministack/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
    raise MinistackFailed(
        f"ministack did not become healthy within {START_TIMEOUT} s:\n{log.read_text()[-3000:]}"
    )
