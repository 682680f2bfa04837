"""Bucket hardening: the policy document, applying it to ministack, and the checks doctor runs.

ministack serves plain http, so the TLS-only statement is checked for its JSON shape only and the policy is
applied with ``require_tls=False`` (with the statement, every plain-http request would be denied).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import httpx
import pytest

from callvault.errors import StorageError
from callvault.settings import S3Sse
from callvault.storage.hardening import apply_hardening, bucket_policy, check_hardening
from callvault.storage.s3 import S3Store
from tests.plugins.s3 import TEST_PART_SIZE, IamUser, S3Server

KEY = "AC00000000000000000000000000000000/2024/05/06/RE00000000000000000000000000000000.wav"
DATA = b"RIFF....WAVEfmt recording bytes"


# -- the document -----------------------------------------------------------------------------------
def test_the_policy_denies_unpresigned_reads_of_the_prefix_only() -> None:
    policy = bucket_policy("vault-bucket", "recordings/", exempt_principal_arns=["arn:aws:iam::1:user/cv"])
    [reads, _tls] = policy["Statement"]
    assert policy["Version"] == "2012-10-17"
    assert reads == {
        "Sid": "CallvaultPresignedReadsOnly",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::vault-bucket/recordings/*",
        "Condition": {
            "StringNotEquals": {"s3:authType": "REST-QUERY-STRING"},
            "ArnNotEquals": {"aws:PrincipalArn": ["arn:aws:iam::1:user/cv"]},
        },
    }


def test_the_tls_statement_denies_every_request_without_tls() -> None:
    [_reads, tls] = bucket_policy("vault-bucket")["Statement"]
    assert tls == {
        "Sid": "CallvaultTlsOnly",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": ["arn:aws:s3:::vault-bucket", "arn:aws:s3:::vault-bucket/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def test_without_a_prefix_or_exemptions_the_read_rule_covers_the_whole_bucket() -> None:
    [reads] = bucket_policy("vault-bucket", require_tls=False)["Statement"]
    assert reads["Resource"] == "arn:aws:s3:::vault-bucket/*"
    assert reads["Condition"] == {"StringNotEquals": {"s3:authType": "REST-QUERY-STRING"}}
    json.dumps(reads)  # serialisable as is


# -- against ministack ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def colleague(s3_server: S3Server) -> IamUser:
    """Another principal of the account with s3:* (an administrator, a backup job): not exempt."""
    return s3_server.create_user(f"colleague-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def hardened(s3_server: S3Server, s3_bucket: str) -> Iterator[str]:
    """A bucket holding one recording, hardened with callvault's own IAM user exempt. The policy is removed
    before the bucket is dropped, so the teardown never depends on what it allows."""
    client = s3_server.client()
    client.put_object(Bucket=s3_bucket, Key=f"vault/{KEY}", Body=DATA, ContentType="audio/wav")
    policy = bucket_policy(s3_bucket, "vault", require_tls=False, exempt_principal_arns=[s3_server.user.arn])
    apply_hardening(client, s3_bucket, policy=policy)
    yield s3_bucket
    client.delete_bucket_policy(Bucket=s3_bucket)


def _presigned_get(client: object, bucket: str) -> httpx.Response:
    url = client.generate_presigned_url(  # type: ignore[attr-defined]
        "get_object", Params={"Bucket": bucket, "Key": f"vault/{KEY}"}, ExpiresIn=60
    )
    with httpx.Client(trust_env=False, timeout=10.0) as http:
        return http.get(url)


@pytest.mark.s3
def test_under_the_policy_a_header_signed_get_is_denied(
    s3_server: S3Server, hardened: str, colleague: IamUser
) -> None:
    client = s3_server.client(user=colleague)
    with pytest.raises(client.exceptions.ClientError) as raised:
        client.get_object(Bucket=hardened, Key=f"vault/{KEY}")
    assert raised.value.response["Error"]["Code"] == "AccessDenied"


@pytest.mark.s3
def test_under_the_policy_a_presigned_get_is_served(
    s3_server: S3Server, hardened: str, colleague: IamUser
) -> None:
    # This is the test that breaks if a ministack upgrade drops tests/s3server/launch.py's s3:authType
    # patch: without the key, the negated condition matches and presigned URLs are denied too (403).
    answer = _presigned_get(s3_server.client(user=colleague), hardened)
    assert (answer.status_code, answer.content) == (200, DATA)


@pytest.mark.s3
def test_the_policy_leaves_uploads_verification_and_playback_to_callvaults_principal(
    s3_server: S3Server, hardened: str
) -> None:
    store = S3Store(
        bucket=hardened,
        prefix="vault",
        client=s3_server.client(),
        sse=S3Sse.AES256,
        kms_key_id=None,
        part_size_bytes=TEST_PART_SIZE,
    )
    other = KEY.replace("RE0000", "RE1111")
    result = store.put(other, [b"new recording"], content_type="audio/wav", max_bytes=100)
    assert store.stat(other) is not None and store.stat(other).checksum == result.checksum  # type: ignore[union-attr]
    assert b"".join(store.open(other)) == b"new recording"
    url = store.presign(other, ttl_seconds=30, content_type="audio/wav", filename="r.wav")
    with httpx.Client(trust_env=False, timeout=10.0) as http:
        assert http.get(url).content == b"new recording"  # type: ignore[arg-type]
    store.delete(other)
    assert store.stat(other) is None


@pytest.mark.s3
def test_the_policy_does_not_block_other_principals_uploads(
    s3_server: S3Server, hardened: str, colleague: IamUser
) -> None:
    client = s3_server.client(user=colleague)
    client.put_object(Bucket=hardened, Key="vault/other.wav", Body=b"x")
    listed = client.list_objects_v2(Bucket=hardened, Prefix="vault/")
    assert sorted(item["Key"] for item in listed["Contents"]) == sorted([f"vault/{KEY}", "vault/other.wav"])


@pytest.mark.s3
def test_without_an_exemption_verification_heads_are_denied_too(s3_server: S3Server, s3_bucket: str) -> None:
    # S3 authorizes HeadObject as s3:GetObject: this is why callvault's own principal must be exempt.
    client = s3_server.client()
    client.put_object(Bucket=s3_bucket, Key=f"vault/{KEY}", Body=DATA)
    apply_hardening(client, s3_bucket, policy=bucket_policy(s3_bucket, "vault", require_tls=False))
    try:
        with pytest.raises(client.exceptions.ClientError) as raised:
            client.head_object(Bucket=s3_bucket, Key=f"vault/{KEY}")
        assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        assert _presigned_get(client, s3_bucket).status_code == 200
    finally:
        client.delete_bucket_policy(Bucket=s3_bucket)


@pytest.mark.s3
def test_hardening_turns_on_block_public_access_and_default_encryption(
    s3_server: S3Server, hardened: str
) -> None:
    client = s3_server.client()
    block = client.get_public_access_block(Bucket=hardened)["PublicAccessBlockConfiguration"]
    assert block == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }
    [rule] = client.get_bucket_encryption(Bucket=hardened)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    stored = json.loads(client.get_bucket_policy(Bucket=hardened)["Policy"])
    assert [s["Sid"] for s in stored["Statement"]] == ["CallvaultPresignedReadsOnly"]


@pytest.mark.s3
def test_hardening_with_kms_sets_the_key_as_default_encryption(s3_server: S3Server, s3_bucket: str) -> None:
    client = s3_server.client()
    key_id = "arn:aws:kms:us-east-1:000000000000:key/11111111-2222-3333-4444-555555555555"
    policy = bucket_policy(s3_bucket, require_tls=False, exempt_principal_arns=[s3_server.user.arn])
    apply_hardening(client, s3_bucket, policy=policy, sse=S3Sse.KMS, kms_key_id=key_id)
    try:
        [rule] = client.get_bucket_encryption(Bucket=s3_bucket)["ServerSideEncryptionConfiguration"]["Rules"]
        assert rule["ApplyServerSideEncryptionByDefault"] == {
            "SSEAlgorithm": "aws:kms",
            "KMSMasterKeyID": key_id,
        }
        assert rule["BucketKeyEnabled"] is True
    finally:
        client.delete_bucket_policy(Bucket=s3_bucket)


@pytest.mark.s3
def test_hardening_refused_by_s3_raises_storage_error(s3_server: S3Server, s3_bucket: str) -> None:
    client = s3_server.client(secret_access_key="not-the-secret")
    with pytest.raises(StorageError, match="SignatureDoesNotMatch"):
        apply_hardening(client, s3_bucket, policy=bucket_policy(s3_bucket))


# -- doctor's checks --------------------------------------------------------------------------------
@pytest.mark.s3
def test_checks_fail_on_a_new_bucket_for_the_policy(s3_server: S3Server, s3_bucket: str) -> None:
    # New buckets come with Block Public Access and SSE-S3 on (AWS since 2023, ministack too); the policy
    # is callvault's own and must be applied.
    checks = {name: passed for name, passed, _detail in check_hardening(s3_server.client(), s3_bucket)}
    assert checks == {
        "bucket reachable": True,
        "block public access": True,
        "default encryption": True,
        "presigned-only reads": False,
        "TLS-only access": False,
    }


@pytest.mark.s3
def test_checks_fail_without_public_access_block(s3_server: S3Server, s3_bucket: str) -> None:
    client = s3_server.client()
    client.delete_public_access_block(Bucket=s3_bucket)
    [check] = [c for c in check_hardening(client, s3_bucket) if c[0] == "block public access"]
    assert check[1] is False
    assert "NoSuchPublicAccessBlockConfiguration" in check[2]


@pytest.mark.s3
def test_checks_fail_when_default_encryption_is_not_the_configured_one(
    s3_server: S3Server, s3_bucket: str
) -> None:
    client = s3_server.client()
    found = check_hardening(client, s3_bucket, expected_sse=S3Sse.KMS)
    [check] = [c for c in found if c[0] == "default encryption"]
    assert check == ("default encryption", False, "AES256 (expected aws:kms)")
    found = check_hardening(client, s3_bucket, expected_sse=S3Sse.AES256)
    assert ("default encryption", True, "AES256") in found


@pytest.mark.s3
def test_checks_pass_on_a_hardened_bucket_except_tls_on_a_plain_http_server(
    s3_server: S3Server, hardened: str
) -> None:
    checks = {
        name: (passed, detail) for name, passed, detail in check_hardening(s3_server.client(), hardened)
    }
    assert checks == {
        "bucket reachable": (True, f"s3://{hardened}"),
        "block public access": (True, "all four flags on"),
        "default encryption": (True, "AES256"),
        "presigned-only reads": (True, "GetObject denied unless presigned"),
        "TLS-only access": (False, "no such Deny statement"),
    }


@pytest.mark.s3
def test_checks_name_the_flags_that_are_off(s3_server: S3Server, s3_bucket: str) -> None:
    client = s3_server.client()
    client.put_public_access_block(
        Bucket=s3_bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": False,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": False,
        },
    )
    [check] = [c for c in check_hardening(client, s3_bucket) if c[0] == "block public access"]
    assert check == ("block public access", False, "off: IgnorePublicAcls, RestrictPublicBuckets")


@pytest.mark.s3
def test_checks_on_a_missing_bucket_report_it_unreachable(s3_server: S3Server) -> None:
    [(name, passed, detail)] = check_hardening(s3_server.client(), "cv-no-such-bucket")
    assert (name, passed) == ("bucket reachable", False)
    assert "cv-no-such-bucket" in detail
