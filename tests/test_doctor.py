"""`callvault bucket-policy --apply` and `callvault doctor`, as real commands against the S3 test server
(signature checking on, IAM users) and the Twilio simulator."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest
from botocore.exceptions import ClientError

from callvault.db.database import Database
from callvault.db.migrate import upgrade
from callvault.twilio.simulator.server import SimulatorServer
from tests.plugins.processes import run_cli
from tests.s3server.server import S3Server


@pytest.fixture
def env(tmp_path: Path, s3_server: S3Server, s3_bucket: str, simulator: SimulatorServer) -> dict[str, str]:
    database_url = f"sqlite:///{tmp_path / 'cv.db'}"
    db = Database(database_url)
    upgrade(db)
    db.dispose()
    return {
        "CALLVAULT_DATA_DIR": str(tmp_path / "data"),
        "CALLVAULT_DATABASE_URL": database_url,
        "CALLVAULT_STORAGE_URL": f"s3://{s3_bucket}/vault",
        "CALLVAULT_S3_ENDPOINT_URL": s3_server.endpoint_url,
        "AWS_ACCESS_KEY_ID": s3_server.access_key_id,
        "AWS_SECRET_ACCESS_KEY": s3_server.secret_access_key,
        "AWS_DEFAULT_REGION": s3_server.region,
        "CALLVAULT_TWILIO_ACCOUNT_SID": simulator.account_sid,
        "CALLVAULT_TWILIO_AUTH_TOKEN": simulator.auth_token,
        "CALLVAULT_TWILIO_API_KEY_SID": simulator.api_key_sid,
        "CALLVAULT_TWILIO_API_KEY_SECRET": simulator.api_key_secret,
        "CALLVAULT_TWILIO_API_BASE_URL": simulator.base_url,
        "CALLVAULT_PUBLIC_URL": "https://vault.example.com",
    }


def test_applied_policy_lets_presigned_reads_through_and_refuses_header_signed_reads(
    env: dict[str, str], s3_server: S3Server, s3_bucket: str
) -> None:
    callvault_s3 = s3_server.client()
    callvault_s3.put_object(Bucket=s3_bucket, Key="vault/a.wav", Body=b"RIFFxxxxWAVE")
    outsider = s3_server.create_user(f"outsider-{uuid.uuid4().hex[:8]}")
    outsider_s3 = s3_server.client(user=outsider)
    assert outsider_s3.get_object(Bucket=s3_bucket, Key="vault/a.wav")["Body"].read() == b"RIFFxxxxWAVE"

    applied = run_cli(["bucket-policy", "--apply", "--no-tls"], env=env)
    assert applied.returncode == 0, applied.stderr
    policy = json.loads(applied.stdout)
    [statement] = policy["Statement"]
    assert statement["Action"] == "s3:GetObject"
    assert statement["Condition"]["ArnNotEquals"]["aws:PrincipalArn"] == [s3_server.user.arn]

    with pytest.raises(ClientError) as refused:
        outsider_s3.get_object(Bucket=s3_bucket, Key="vault/a.wav")
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    url = outsider_s3.generate_presigned_url(
        "get_object", Params={"Bucket": s3_bucket, "Key": "vault/a.wav"}, ExpiresIn=30
    )
    assert httpx.get(url).content == b"RIFFxxxxWAVE"
    # The uploader is unaffected: it writes and reads its checksum back.
    callvault_s3.put_object(
        Bucket=s3_bucket, Key="vault/b.wav", Body=b"RIFFyyyyWAVE", ChecksumAlgorithm="SHA256"
    )
    assert (
        callvault_s3.head_object(Bucket=s3_bucket, Key="vault/b.wav", ChecksumMode="ENABLED")["ContentLength"]
        == 12
    )
    public = callvault_s3.get_public_access_block(Bucket=s3_bucket)["PublicAccessBlockConfiguration"]
    assert all(public.values())

    verified = run_cli(["audit", "verify"], env=env)
    assert verified.returncode == 0, verified.stderr
    exported = run_cli(["audit", "export"], env=env)
    assert "bucket.harden" in exported.stdout


def test_bucket_policy_prints_the_tls_statement_by_default(env: dict[str, str]) -> None:
    printed = run_cli(["bucket-policy", "--exempt-arn", "arn:aws:iam::000000000000:user/worker"], env=env)
    assert printed.returncode == 0, printed.stderr
    sids = {s["Sid"]: s for s in json.loads(printed.stdout)["Statement"]}
    assert sids["CallvaultTlsOnly"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_doctor_passes_every_check_then_names_the_one_that_fails(
    env: dict[str, str], s3_server: S3Server
) -> None:
    assert run_cli(["bucket-policy", "--apply", "--no-tls"], env=env).returncode == 0
    healthy = run_cli(["doctor"], env=env)
    lines = healthy.stdout.strip().splitlines()
    failing = [line for line in lines if not line.startswith("pass")]
    # Plain-http test server: everything passes except the TLS-only statement we left out on purpose.
    assert [line for line in failing if "TLS" not in line and "tls" not in line] == [], healthy.stdout
    for name in ("configuration", "database", "storage", "twilio"):
        assert any(line.startswith("pass") and f"{name}:" in line for line in lines), healthy.stdout

    broken = run_cli(["doctor"], env={**env, "CALLVAULT_TWILIO_API_KEY_SECRET": "wrong"})
    assert broken.returncode != 0
    assert any(line.startswith("FAIL") and "twilio:" in line for line in broken.stdout.splitlines())
    assert "wrong" not in broken.stdout and "Traceback" not in broken.stderr


def test_bucket_policy_refuses_the_local_store(tmp_path: Path) -> None:
    result = run_cli(["bucket-policy"], env={"CALLVAULT_DATA_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert "s3://" in result.stderr and "Traceback" not in result.stderr
