"""The S3 test server: one ministack per session (S3.md), signature checking on, tests run as an IAM user.

The launching lives in ``tests/s3server/server.py`` (shared with ``bench/``); this module turns it into
session fixtures: skipped with a reason when ministack is not installed, failed with its log when it does not
come up.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from callvault.settings import S3Sse
from callvault.storage.s3 import S3Store
from tests.s3server.server import (
    IamUser,
    MinistackFailed,
    MinistackUnavailable,
    S3Server,
    running_ministack,
)

__all__ = ["TEST_PART_SIZE", "IamUser", "S3Server", "s3_bucket", "s3_server", "s3_store"]

TEST_PART_SIZE = 5 * 1024 * 1024


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    workdir = tmp_path_factory.mktemp("ministack")
    try:
        with running_ministack(workdir, user_name="callvault-test") as (server, _process):
            yield server
    except MinistackUnavailable as exc:
        pytest.skip(f"S3 tests skipped: {exc}")
    except MinistackFailed as exc:
        pytest.fail(str(exc))


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> Iterator[str]:
    """A fresh, empty bucket owned by the test IAM user; emptied and deleted afterwards."""
    name = s3_server.fresh_bucket()
    yield name
    s3_server.drop_bucket(name)


@pytest.fixture
def s3_store(s3_server: S3Server, s3_bucket: str) -> S3Store:
    """An S3Store (prefix ``vault``, SSE AES256, 5 MiB parts) on a fresh bucket, as the test IAM user."""
    return S3Store(
        bucket=s3_bucket,
        prefix="vault",
        client=s3_server.client(),
        sse=S3Sse.AES256,
        kms_key_id=None,
        part_size_bytes=TEST_PART_SIZE,
    )
