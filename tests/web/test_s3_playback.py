"""Playback from S3 (ministack with signature checking, as an IAM user): presigned URLs serve the bytes
until they expire and refuse tampering; proxy mode streams through callvault instead."""

import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from callvault.auth.principal import CLI_PRINCIPAL
from callvault.playback import service
from callvault.storage.s3 import S3Store
from tests.plugins.playback import Vault, wav_bytes
from tests.plugins.s3 import S3Server

pytestmark = pytest.mark.s3

BODY = wav_bytes(1.0)


@pytest.fixture
def s3_vault(lite_vault_factory: Any, s3_store: S3Store) -> Vault:
    vault: Vault = lite_vault_factory(store=s3_store, storage_url=f"s3://{s3_store.bucket}/vault")
    vault.add_user("lena@example.com", accounts=None)
    return vault


def issue(vault: Vault, sid: str, **kwargs: Any) -> service.Link:
    return service.issue_link(
        vault.ctx, CLI_PRINCIPAL, sid, client_ip=None, user_agent=None, via="cli", **kwargs
    )


def get(url: str, **headers: str) -> httpx.Response:
    return httpx.get(url, headers=headers, trust_env=False, timeout=10)


def test_a_presigned_url_serves_the_exact_bytes_inline(s3_vault: Vault, s3_server: S3Server) -> None:
    sid = s3_vault.seed(body=BODY)
    link = issue(s3_vault, sid)
    assert link.mode == "presigned"
    assert link.url.startswith(s3_server.endpoint_url)
    answer = get(link.url)
    assert answer.status_code == 200, answer.text
    assert answer.content == BODY
    assert answer.headers["content-type"] == "audio/wav"
    assert answer.headers["content-disposition"] == f'inline; filename="{sid}.wav"'
    seek = get(link.url, Range="bytes=100-199")
    assert seek.status_code == 206
    assert seek.content == BODY[100:200]
    assert [e.detail["mode"] for e in s3_vault.audit("playback.issue")] == ["presigned"]


def test_a_presigned_url_is_refused_once_expired(s3_vault: Vault) -> None:
    sid = s3_vault.seed(body=BODY)
    link = issue(s3_vault, sid, ttl_seconds=1)
    assert get(link.url).content == BODY
    # S3 compares whole seconds from X-Amz-Date; wait until the expiry is past by a full second.
    while datetime.now(UTC) <= link.expires_at + timedelta(seconds=1):
        time.sleep(0.1)
    expired = get(link.url)
    assert expired.status_code == 403
    assert BODY[:64] not in expired.content


@pytest.mark.parametrize("field", ["X-Amz-Expires", "X-Amz-Signature", "key"])
def test_a_tampered_presigned_url_is_refused(s3_vault: Vault, field: str) -> None:
    sid = s3_vault.seed(body=BODY)
    other = s3_vault.seed(body=b"another recording")
    parts = urlsplit(issue(s3_vault, sid).url)
    query = dict(parse_qsl(parts.query))
    path = parts.path
    if field == "X-Amz-Expires":
        query[field] = "604800"
    elif field == "X-Amz-Signature":
        query[field] = query[field][:-4] + ("0000" if not query[field].endswith("0000") else "1111")
    else:
        path = path.replace(sid, other)
    forged = urlunsplit((parts.scheme, parts.netloc, path, urlencode(query), ""))
    answer = get(forged)
    assert answer.status_code == 403
    assert answer.content not in (BODY, b"another recording")


def test_the_permalink_redirects_to_s3_and_the_csp_allows_that_origin(
    s3_vault: Vault, s3_server: S3Server
) -> None:
    sid = s3_vault.seed(body=BODY)
    browser = s3_vault.login("lena@example.com")
    answer = browser.get(f"/r/{sid}")
    assert answer.status_code == 302
    assert answer.headers["location"].startswith(s3_server.endpoint_url)
    assert get(answer.headers["location"]).content == BODY
    csp = browser.get("/").headers["content-security-policy"]
    assert csp.endswith(f"; media-src 'self' {s3_server.endpoint_url}")


def test_proxy_mode_streams_from_s3_without_exposing_it(
    lite_vault_factory: Any, s3_store: S3Store, s3_server: S3Server
) -> None:
    vault: Vault = lite_vault_factory(store=s3_store, playback_mode="proxy")
    vault.add_user("lena@example.com", accounts=None)
    sid = vault.seed(body=BODY)
    browser = vault.login("lena@example.com")
    answer = browser.get(f"/r/{sid}")
    location = answer.headers["location"]
    assert location.startswith("http://testserver/media/")
    assert s3_server.endpoint_url not in location
    assert browser.get(location).content == BODY
    ranged = browser.get(location, headers={"Range": "bytes=10-19"})
    assert (ranged.status_code, ranged.content) == (206, BODY[10:20])
    assert "media-src" not in browser.get("/").headers["content-security-policy"]
