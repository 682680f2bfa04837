from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest

from callvault.auth.principal import Principal
from callvault.db.models import RecordingStatus, Role
from callvault.errors import Conflict, Forbidden, InvalidInput, InvalidSid, NotFound
from callvault.playback import service, signing
from tests.plugins.playback import ACCOUNT_A, ACCOUNT_B, Vault, new_sid

LISTENER_A = Principal(
    user_id=7, email="lena@example.com", role=Role.LISTENER, accounts=frozenset({ACCOUNT_A}), via="session"
)
ADMIN = Principal(user_id=1, email="admin@example.com", role=Role.ADMIN, accounts=None, via="session")


@pytest.fixture
def plain(vault_factory: Any) -> Vault:
    """On SQLite and PostgreSQL: for outcomes that depend on the transaction (audit rows, tombstones)."""
    vault: Vault = vault_factory(public_url="https://vault.example.com")
    return vault


@pytest.fixture
def lite(lite_vault_factory: Any) -> Vault:
    vault: Vault = lite_vault_factory(public_url="https://vault.example.com")
    return vault


def issue(vault: Vault, principal: Principal, sid: str, **kwargs: Any) -> service.Link:
    values: dict[str, Any] = {"client_ip": "192.0.2.7", "user_agent": "pytest", "via": "api"}
    values.update(kwargs)
    return service.issue_link(vault.ctx, principal, sid, **values)


def test_a_file_store_link_is_a_signed_media_url_on_the_public_url(plain: Vault) -> None:
    sid = plain.seed()
    now = datetime.now(UTC)
    link = issue(plain, LISTENER_A, sid, now=now)
    assert link.mode == "signed"
    assert link.url.startswith("https://vault.example.com/media/")
    assert now + timedelta(seconds=30) <= link.expires_at <= now + timedelta(seconds=31)
    grant = signing.verify(plain.ctx.secret_key, urlsplit(link.url).path.rsplit("/", 1)[1], now=now)
    assert grant.key == plain.recording(sid).storage_key
    assert grant.size == plain.recording(sid).size_bytes


def test_every_issued_link_is_audited_with_who_how_and_until_when(plain: Vault) -> None:
    sid = plain.seed()
    link = issue(plain, LISTENER_A, sid, via="permalink", ttl_seconds=5)
    [entry] = plain.audit("playback.issue")
    assert (entry.actor, entry.recording_sid, entry.client_ip, entry.user_agent) == (
        "lena@example.com",
        sid,
        "192.0.2.7",
        "pytest",
    )
    assert entry.detail == {
        "via": "permalink",
        "mode": "signed",
        "ttl": 5,
        "expires_at": link.expires_at.isoformat(),
    }
    assert plain.chain_ok()


def test_without_a_public_url_the_request_base_is_used(lite_vault_factory: Any) -> None:
    vault: Vault = lite_vault_factory()
    link = issue(vault, ADMIN, vault.seed(), base_url="http://testserver/")
    assert link.url.startswith("http://testserver/media/")


def test_proxy_mode_issues_a_media_url_marked_proxy(lite_vault_factory: Any) -> None:
    vault: Vault = lite_vault_factory(playback_mode="proxy", public_url="https://v.example.com")
    link = issue(vault, ADMIN, vault.seed())
    assert link.mode == "proxy"
    assert link.url.startswith("https://v.example.com/media/")


def test_another_accounts_recording_is_not_found_exactly_like_a_missing_one(plain: Vault) -> None:
    other = plain.seed(account_sid=ACCOUNT_B)
    with pytest.raises(NotFound) as hidden:
        issue(plain, LISTENER_A, other)
    missing = new_sid("RE")
    with pytest.raises(NotFound) as absent:
        issue(plain, LISTENER_A, missing)
    assert hidden.value.message.replace(other, "X") == absent.value.message.replace(missing, "X")
    assert plain.audit("playback.issue") == []


@pytest.mark.parametrize(
    "sid", ["RE123", "re" + "a" * 32, "CA" + "a" * 32, "RE" + "a" * 31 + "/", "../../etc/passwd"]
)
def test_a_malformed_sid_is_refused_before_any_lookup(lite: Vault, sid: str) -> None:
    with pytest.raises(InvalidSid):
        issue(lite, ADMIN, sid)


@pytest.mark.parametrize("status", [RecordingStatus.PENDING, RecordingStatus.DELETED, RecordingStatus.FAILED])
def test_a_recording_not_in_the_vault_cannot_be_played(lite: Vault, status: RecordingStatus) -> None:
    sid = lite.seed(status=status)
    with pytest.raises(Conflict):
        issue(lite, ADMIN, sid)
    assert lite.audit("playback.issue") == []


@pytest.mark.parametrize("kwargs", [{"via": "email"}, {"ttl_seconds": 0}, {"ttl_seconds": 3601}])
def test_an_unknown_channel_or_out_of_range_ttl_is_refused(lite: Vault, kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        issue(lite, ADMIN, lite.seed(), **kwargs)


def test_an_admin_delete_removes_the_object_and_keeps_a_tombstone(plain: Vault) -> None:
    sid = plain.seed()
    key = plain.recording(sid).storage_key
    assert key is not None and plain.ctx.store.stat(key) is not None
    service.delete_recording(plain.ctx, ADMIN, sid, client_ip="192.0.2.1", user_agent="pytest")
    rec = plain.recording(sid)
    assert rec.status == RecordingStatus.DELETED
    assert rec.deleted_at is not None
    assert rec.sha256 is not None  # the tombstone keeps what was known
    assert plain.ctx.store.stat(key) is None
    [entry] = plain.audit("recording.delete")
    assert (entry.actor, entry.recording_sid) == ("admin@example.com", sid)
    assert entry.detail == {"previous_status": "stored", "storage_key": key}
    with pytest.raises(Conflict):
        issue(plain, ADMIN, sid)


def test_only_admins_may_delete_and_a_refusal_changes_nothing(plain: Vault) -> None:
    sid = plain.seed()
    auditor = Principal(
        user_id=3, email="audrey@example.com", role=Role.AUDITOR, accounts=None, via="session"
    )
    for principal in (LISTENER_A, auditor):
        with pytest.raises(Forbidden):
            service.delete_recording(plain.ctx, principal, sid, client_ip=None, user_agent=None)
    rec = plain.recording(sid)
    assert rec.status == RecordingStatus.STORED
    assert rec.storage_key is not None and plain.ctx.store.stat(rec.storage_key) is not None
    assert plain.audit("recording.delete") == []


def test_a_recording_still_in_transfer_cannot_be_deleted(lite: Vault) -> None:
    sid = lite.seed(status=RecordingStatus.PENDING)
    with pytest.raises(Conflict):
        service.delete_recording(lite.ctx, ADMIN, sid, client_ip=None, user_agent=None)
    assert lite.recording(sid).status == RecordingStatus.PENDING


@pytest.mark.parametrize(
    ("stored", "served"),
    [
        ("audio/mpeg", "audio/mpeg"),
        ("text/html", "application/octet-stream"),
        (None, "application/octet-stream"),
    ],
)
def test_only_audio_content_types_are_served_as_such(lite: Vault, stored: str | None, served: str) -> None:
    from sqlalchemy import update

    from callvault.db.models import Recording

    sid = lite.seed()
    with lite.ctx.db.write() as session:
        session.execute(update(Recording).where(Recording.sid == sid).values(content_type=stored))
    link = issue(lite, ADMIN, sid, now=datetime.now(UTC))
    grant = signing.verify(lite.ctx.secret_key, link.url.rsplit("/", 1)[1], now=datetime.now(UTC))
    assert grant.content_type == served
