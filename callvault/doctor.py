"""``callvault doctor`` and ``callvault bucket-policy``: operator checks and bucket hardening, as services."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy import inspect

from callvault.db.database import Database
from callvault.errors import CallvaultError, InvalidInput, StorageError
from callvault.settings import Settings
from callvault.storage import hardening
from callvault.storage.factory import open_store, s3_client


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def bucket_of(settings: Settings) -> tuple[str, str]:
    """(bucket, prefix) of an ``s3://`` storage URL; InvalidInput for any other store."""
    parts = urlsplit(settings.storage_url)
    if parts.scheme != "s3":
        raise InvalidInput("this needs an s3:// CALLVAULT_STORAGE_URL (the local store has no bucket)")
    return parts.netloc, unquote(parts.path).strip("/")


def caller_arn(settings: Settings) -> str:
    """The ARN of the principal callvault's S3 credentials belong to (STS GetCallerIdentity)."""
    session = boto3.session.Session()
    try:
        sts = session.client(
            "sts", endpoint_url=settings.s3_endpoint_url, region_name=session.region_name or "us-east-1"
        )
        return str(sts.get_caller_identity()["Arn"])
    except (BotoCoreError, ClientError) as exc:
        raise StorageError(f"cannot tell which principal callvault runs as (STS): {exc}") from None


def policy_for(settings: Settings, *, exempt_arns: Sequence[str], require_tls: bool = True) -> dict[str, Any]:
    bucket, prefix = bucket_of(settings)
    return hardening.bucket_policy(
        bucket, prefix, require_tls=require_tls, exempt_principal_arns=list(exempt_arns)
    )


def apply_policy(settings: Settings, policy: dict[str, Any]) -> None:
    bucket, _ = bucket_of(settings)
    hardening.apply_hardening(
        s3_client(settings), bucket, policy=policy, sse=settings.s3_sse, kms_key_id=settings.s3_kms_key_id
    )


def run_checks(settings: Settings) -> list[Check]:
    """One check per concern; every failure is a line, never an exception."""
    checks = [Check("configuration", True, f"settings valid; storage {settings.storage_url}")]
    checks.append(_database(settings))
    checks.append(_storage(settings))
    checks.append(_twilio(settings))
    if settings.storage_scheme == "s3":
        bucket, _ = bucket_of(settings)
        for name, ok, detail in hardening.check_hardening(
            s3_client(settings), bucket, expected_sse=settings.s3_sse
        ):
            checks.append(Check(f"bucket: {name}", ok, detail))
    return checks


def _database(settings: Settings) -> Check:
    db = Database(settings.database_url)
    try:
        with db.engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
    except Exception as exc:  # any driver error means unreachable; its text may carry the URL, so not shown
        return Check("database", False, f"unreachable ({type(exc).__name__})")
    finally:
        db.dispose()
    if "recordings" not in tables:
        return Check("database", False, "reachable, but the schema is missing: run `callvault db upgrade`")
    return Check("database", True, "reachable, schema present")


def _storage(settings: Settings) -> Check:
    try:
        store = open_store(settings)
        store.check()
    except CallvaultError as exc:
        return Check("storage", False, exc.message)
    return Check("storage", True, f"{store.description} reachable and writable")


def _twilio(settings: Settings) -> Check:
    from callvault.twilio.gateway import TwilioAccount, TwilioGateway

    account = TwilioAccount.from_settings(settings)
    if account is None:
        return Check("twilio", False, "no credentials: demo mode only (set CALLVAULT_TWILIO_ACCOUNT_SID …)")
    gateway = TwilioGateway(account, timeout_seconds=settings.http_timeout_seconds, max_media_bytes=1)
    try:
        today = datetime.now(UTC).date()
        next(
            iter(
                gateway.list_recordings(
                    account_sid=account.account_sid,
                    created_on_or_after=today,
                    created_on_or_before=today,
                    page_size=1,
                )
            ),
            None,
        )
    except CallvaultError as exc:
        return Check("twilio", False, f"{settings.twilio_api_base_url}: {exc.message}")
    finally:
        gateway.close()
    via = "API key" if account.api_key_sid else "auth token"
    return Check("twilio", True, f"credentials accepted by {settings.twilio_api_base_url} ({via})")
