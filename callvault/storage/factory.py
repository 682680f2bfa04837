"""The one place a store is built from settings:
``file:///dir`` → :class:`FileStore`, ``s3://bucket/prefix`` → :class:`S3Store`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

import boto3
from botocore.config import Config

from callvault.errors import ConfigError
from callvault.settings import Settings
from callvault.storage.base import Store
from callvault.storage.local import FileStore
from callvault.storage.s3 import S3Store

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

DEFAULT_REGION = "us-east-1"
_MIB = 1024 * 1024


def open_store(settings: Settings) -> Store:
    """Build the store ``settings.storage_url`` names. Raises :class:`ConfigError` for any other scheme.

    Nothing is contacted here; call ``store.check()`` to find out whether the store is reachable.
    """
    parts = urlsplit(settings.storage_url)
    if parts.scheme == "file":
        if parts.netloc or not parts.path.startswith("/"):
            raise ConfigError("CALLVAULT_STORAGE_URL: a file URL must be file:///absolute/directory")
        return FileStore(Path(unquote(parts.path)))
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ConfigError("CALLVAULT_STORAGE_URL: an S3 URL must be s3://bucket[/prefix]")
        return S3Store(
            bucket=parts.netloc,
            prefix=unquote(parts.path).strip("/"),
            client=s3_client(settings),
            sse=settings.s3_sse,
            kms_key_id=settings.s3_kms_key_id,
            part_size_bytes=settings.s3_part_size_mb * _MIB,
        )
    raise ConfigError("CALLVAULT_STORAGE_URL: must be file:///absolute/dir or s3://bucket[/prefix]")


def s3_client(settings: Settings) -> S3Client:
    """A boto3 S3 client: credentials and region from boto3's standard chain (environment, profiles,
    instance roles), ``us-east-1`` when none is configured; SigV4 always (presigned URLs must be SigV4 for
    SSE-KMS objects and for every region launched since 2014); path-style addressing for a custom endpoint,
    since S3-compatible servers rarely resolve ``bucket.host`` names."""
    session = boto3.session.Session()
    config = Config(
        signature_version="s3v4",
        retries={"mode": "standard"},
        s3={"addressing_style": "path"} if settings.s3_endpoint_url else None,
        connect_timeout=min(settings.http_timeout_seconds, 10.0),
        read_timeout=settings.http_timeout_seconds,
    )
    return session.client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        region_name=session.region_name or DEFAULT_REGION,
        config=config,
    )
