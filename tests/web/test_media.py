"""``/media/{token}``: exact bytes before expiry, 403 after or when altered, HTTP ranges."""

import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest

from callvault.auth.principal import CLI_PRINCIPAL
from callvault.db.models import RecordingStatus
from callvault.playback import service
from tests.plugins.playback import Vault, wav_bytes

BODY = wav_bytes(2.0)  # 32 044 bytes


@pytest.fixture
def media(lite_vault_factory: Any) -> tuple[Vault, str, str]:
    """A vault, a stored recording and a fresh /media path (valid 30 s) for it."""
    vault: Vault = lite_vault_factory()
    sid = vault.seed(body=BODY)
    link = service.issue_link(
        vault.ctx,
        CLI_PRINCIPAL,
        sid,
        client_ip=None,
        user_agent=None,
        via="cli",
        base_url="http://testserver",
    )
    return vault, sid, urlsplit(link.url).path


def test_a_media_url_serves_the_exact_bytes_inline_and_uncached(media: tuple[Vault, str, str]) -> None:
    vault, sid, path = media
    answer = vault.client().get(path)
    assert answer.status_code == 200
    assert answer.content == BODY
    assert answer.headers["content-type"] == "audio/wav"
    assert answer.headers["content-length"] == str(len(BODY))
    assert answer.headers["content-disposition"] == f'inline; filename="{sid}.wav"'
    assert answer.headers["cache-control"] == "private, no-store"
    assert answer.headers["accept-ranges"] == "bytes"
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_a_media_url_stops_working_when_its_ttl_has_passed(lite_vault_factory: Any) -> None:
    vault: Vault = lite_vault_factory(playback_ttl_seconds=1)
    sid = vault.seed(body=BODY)
    link = service.issue_link(
        vault.ctx,
        CLI_PRINCIPAL,
        sid,
        client_ip=None,
        user_agent=None,
        via="cli",
        base_url="http://testserver",
    )
    client = vault.client()
    path = urlsplit(link.url).path
    assert client.get(path).content == BODY
    while datetime.now(UTC) <= link.expires_at:
        time.sleep(0.1)
    expired = client.get(path)
    assert expired.status_code == 403
    assert expired.json() == {"error": "this link has expired"}
    assert BODY[:64] not in expired.content


def test_an_altered_token_is_forbidden_and_serves_nothing(media: tuple[Vault, str, str]) -> None:
    vault, _, path = media
    payload, mac = path.removeprefix("/media/").split(".")
    client = vault.client()
    for forged in (
        f"{payload}.{mac[:-2]}AA",
        f"{payload[:-2]}AA.{mac}",
        f"{payload}x.{mac}",
        payload,
        "nope",
    ):
        answer = client.get(f"/media/{forged}")
        assert answer.status_code == 403, forged
        assert answer.json() == {"error": "this link is not valid"}


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=100-", 100, len(BODY) - 1),
        ("bytes=-500", len(BODY) - 500, len(BODY) - 1),
        ("bytes=32000-99999999", 32000, len(BODY) - 1),
        ("bytes=0-0", 0, 0),
    ],
)
def test_a_range_request_gets_206_with_exactly_those_bytes(
    media: tuple[Vault, str, str], header: str, start: int, end: int
) -> None:
    vault, _, path = media
    answer = vault.client().get(path, headers={"Range": header})
    assert answer.status_code == 206
    assert answer.headers["content-range"] == f"bytes {start}-{end}/{len(BODY)}"
    assert answer.headers["content-length"] == str(end - start + 1)
    assert answer.content == BODY[start : end + 1]


@pytest.mark.parametrize(
    "header", [f"bytes={len(BODY)}-", f"bytes={len(BODY) + 10}-{len(BODY) + 20}", "bytes=-0"]
)
def test_a_range_past_the_end_gets_416_with_the_size(media: tuple[Vault, str, str], header: str) -> None:
    vault, _, path = media
    answer = vault.client().get(path, headers={"Range": header})
    assert answer.status_code == 416
    assert answer.headers["content-range"] == f"bytes */{len(BODY)}"
    assert answer.content == b""


@pytest.mark.parametrize("header", ["bytes=0-1,5-9", "items=0-5", "bytes=abc", "bytes=9-2"])
def test_a_range_we_may_ignore_gets_the_whole_object(media: tuple[Vault, str, str], header: str) -> None:
    vault, _, path = media
    answer = vault.client().get(path, headers={"Range": header})
    assert answer.status_code == 200
    assert answer.content == BODY


def test_head_reports_size_and_type_without_a_body(media: tuple[Vault, str, str]) -> None:
    vault, _, path = media
    answer = vault.client().head(path)
    assert answer.status_code == 200
    assert answer.headers["content-length"] == str(len(BODY))
    assert answer.headers["content-type"] == "audio/wav"
    assert answer.content == b""


def test_a_valid_token_for_an_object_deleted_since_is_a_404(media: tuple[Vault, str, str]) -> None:
    vault, sid, path = media
    service.delete_recording(vault.ctx, CLI_PRINCIPAL, sid, client_ip=None, user_agent=None)
    assert vault.recording(sid).status == RecordingStatus.DELETED
    assert vault.client().get(path).status_code == 404
