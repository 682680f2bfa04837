"""S3 bucket hardening: a bucket policy, Block Public Access and default encryption, and the checks
``callvault doctor`` runs against them.

The policy (S3.md, "Bucket policy condition keys"):

* ``CallvaultPresignedReadsOnly`` denies ``s3:GetObject`` on the recordings unless the request is presigned
  (``s3:authType = REST-QUERY-STRING``): people listen through callvault's short-lived links, not with
  their own console or CLI access. Only ``s3:GetObject`` is denied, so uploads, deletes and listings keep
  working. S3 authorizes ``HeadObject`` as ``s3:GetObject`` too, so callvault's own principal, which
  verifies each copy with ``HEAD`` (and streams in proxy playback mode), must be named in
  ``exempt_principal_arns``; otherwise verification is denied along with everyone else's direct reads.
* ``CallvaultTlsOnly`` denies every request made without TLS (``aws:SecureTransport = false``). Optional
  (``require_tls``) only so the policy can be exercised against a plain-http test server.

Block Public Access does not affect presigned URLs: they run as the principal that signed them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from callvault.errors import StorageError
from callvault.settings import S3Sse

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ServerSideEncryptionByDefaultTypeDef

PRESIGNED_READS_SID = "CallvaultPresignedReadsOnly"
TLS_ONLY_SID = "CallvaultTlsOnly"
PUBLIC_ACCESS_FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")

Check = tuple[str, bool, str]


def bucket_policy(
    bucket: str,
    prefix: str = "",
    *,
    require_tls: bool = True,
    exempt_principal_arns: Sequence[str] = (),
) -> dict[str, Any]:
    """The bucket policy document for callvault's bucket (recordings under ``prefix``)."""
    objects = (
        f"arn:aws:s3:::{bucket}/{prefix.strip('/')}/*" if prefix.strip("/") else f"arn:aws:s3:::{bucket}/*"
    )
    condition: dict[str, Any] = {"StringNotEquals": {"s3:authType": "REST-QUERY-STRING"}}
    if exempt_principal_arns:
        # Condition operators are ANDed: denied when not presigned *and* not one of these principals.
        condition["ArnNotEquals"] = {"aws:PrincipalArn": list(exempt_principal_arns)}
    statements: list[dict[str, Any]] = [
        {
            "Sid": PRESIGNED_READS_SID,
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": objects,
            "Condition": condition,
        }
    ]
    if require_tls:
        statements.append(
            {
                "Sid": TLS_ONLY_SID,
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def apply_hardening(
    client: S3Client,
    bucket: str,
    *,
    policy: dict[str, Any],
    sse: S3Sse = S3Sse.AES256,
    kms_key_id: str | None = None,
) -> None:
    """Turn on all four Block Public Access flags, set default encryption (``sse``, with ``kms_key_id`` for
    ``aws:kms``) and put ``policy``, replacing any bucket policy there. Raises
    :class:`~callvault.errors.StorageError` when S3 refuses one of them; the steps already done stay done
    (each is idempotent, so running it again after fixing the cause is safe)."""
    kms = sse is S3Sse.KMS
    default: ServerSideEncryptionByDefaultTypeDef = {"SSEAlgorithm": "aws:kms" if kms else "AES256"}
    if kms and kms_key_id:
        default["KMSMasterKeyID"] = kms_key_id
    try:
        client.put_public_access_block(
            Bucket=bucket,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
        client.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                # A bucket key cuts KMS requests (and cost) per object; it means nothing for AES256.
                "Rules": [{"ApplyServerSideEncryptionByDefault": default, "BucketKeyEnabled": kms}]
            },
        )
        client.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    except (ClientError, BotoCoreError) as exc:
        raise StorageError(f"hardening s3://{bucket} failed: {_describe(exc)}") from exc


def check_hardening(client: S3Client, bucket: str, *, expected_sse: S3Sse | None = None) -> list[Check]:
    """Each check as ``(name, passed, detail)``, for ``callvault doctor``. Never raises for S3 errors: a
    check that cannot be read fails with the reason as its detail. With ``expected_sse`` (the configured
    ``CALLVAULT_S3_SSE``), default encryption passes only with that algorithm."""
    checks: list[Check] = []
    try:
        client.head_bucket(Bucket=bucket)
    except (ClientError, BotoCoreError) as exc:
        return [("bucket reachable", False, f"s3://{bucket}: {_describe(exc)}")]
    checks.append(("bucket reachable", True, f"s3://{bucket}"))
    checks.append(_check_public_access(client, bucket))
    checks.append(_check_encryption(client, bucket, expected_sse))
    checks.extend(_check_policy(client, bucket))
    return checks


def _check_public_access(client: S3Client, bucket: str) -> Check:
    name = "block public access"
    try:
        config = client.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    except (ClientError, BotoCoreError) as exc:
        return (name, False, _describe(exc))
    off = [flag for flag in PUBLIC_ACCESS_FLAGS if not config.get(flag)]
    return (name, not off, f"off: {', '.join(off)}" if off else "all four flags on")


def _check_encryption(client: S3Client, bucket: str, expected: S3Sse | None) -> Check:
    name = "default encryption"
    try:
        rules = client.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    except (ClientError, BotoCoreError) as exc:
        return (name, False, _describe(exc))
    algorithms = [str(r.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm")) for r in rules]
    wanted = {expected.value} if expected else {"AES256", "aws:kms", "aws:kms:dsse"}
    detail = ", ".join(algorithms) or "no rule"
    if expected and not wanted.intersection(algorithms):
        detail += f" (expected {expected.value})"
    return (name, bool(wanted.intersection(algorithms)), detail)


def _check_policy(client: S3Client, bucket: str) -> list[Check]:
    names = ("presigned-only reads", "TLS-only access")
    try:
        document = json.loads(client.get_bucket_policy(Bucket=bucket)["Policy"])
    except (ClientError, BotoCoreError) as exc:
        return [(name, False, _describe(exc)) for name in names]
    except ValueError:
        return [(name, False, "the bucket policy is not valid JSON") for name in names]
    statements = document.get("Statement", [])
    statements = statements if isinstance(statements, list) else [statements]
    presigned = any(_denies_unpresigned_reads(s) for s in statements if isinstance(s, dict))
    tls = any(_denies_plain_http(s) for s in statements if isinstance(s, dict))
    return [
        (names[0], presigned, "GetObject denied unless presigned" if presigned else "no such Deny statement"),
        (names[1], tls, "requests without TLS denied" if tls else "no such Deny statement"),
    ]


def _denies_unpresigned_reads(statement: dict[str, Any]) -> bool:
    actions = _as_list(statement.get("Action"))
    condition = statement.get("Condition", {}).get("StringNotEquals", {})
    return (
        statement.get("Effect") == "Deny"
        and any(a in ("s3:GetObject", "s3:*", "*") for a in actions)
        and _as_list(condition.get("s3:authType")) == ["REST-QUERY-STRING"]
    )


def _denies_plain_http(statement: dict[str, Any]) -> bool:
    condition = statement.get("Condition", {}).get("Bool", {})
    return (
        statement.get("Effect") == "Deny"
        and any(a in ("s3:*", "*") for a in _as_list(statement.get("Action")))
        and _as_list(condition.get("aws:SecureTransport")) in (["false"], [False])
    )


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _describe(exc: ClientError | BotoCoreError) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', '')} {error.get('Message', '')}".strip()
    return f"{type(exc).__name__}: {exc}"
