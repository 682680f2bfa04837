"""The JSON API: bearer tokens or session + CSRF; listeners confined to their accounts; admin deletes."""

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from fastapi.testclient import TestClient

from callvault.db.models import RecordingStatus
from tests.plugins.playback import ACCOUNT_A, ACCOUNT_B, Vault, new_sid, wav_bytes

BODY = wav_bytes(1.0)


def bearer(vault: Vault, email: str) -> TestClient:
    _, raw = vault.token(email)
    return vault.client(Authorization=f"Bearer {raw}")


def test_a_token_holder_gets_a_playback_url_that_serves_the_bytes(lite_vault: Vault) -> None:
    sid = lite_vault.seed(body=BODY)
    crm = bearer(lite_vault, "lena@example.com")
    before = datetime.now(UTC)
    answer = crm.post(f"/api/v1/recordings/{sid}/playback")
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"url", "expires_at"}
    expires = datetime.fromisoformat(body["expires_at"])
    assert before + timedelta(seconds=29) <= expires <= before + timedelta(seconds=32)
    assert lite_vault.client().get(urlsplit(body["url"]).path).content == BODY
    [entry] = lite_vault.audit("playback.issue")
    assert entry.detail["via"] == "api"
    assert entry.detail["expires_at"] == body["expires_at"]


def test_a_session_needs_the_csrf_header_to_get_a_playback_url(lite_vault: Vault) -> None:
    sid = lite_vault.seed()
    browser = lite_vault.login("lena@example.com")
    assert browser.post(f"/api/v1/recordings/{sid}/playback").status_code == 403
    wrong = browser.post(f"/api/v1/recordings/{sid}/playback", headers={"X-CSRF-Token": "0" * 64})
    assert wrong.status_code == 403
    assert lite_vault.audit("playback.issue") == []
    good = browser.post(
        f"/api/v1/recordings/{sid}/playback", headers={"X-CSRF-Token": lite_vault.csrf_of(browser)}
    )
    assert good.status_code == 200
    assert len(lite_vault.audit("playback.issue")) == 1


def test_without_credentials_the_api_answers_401(lite_vault: Vault) -> None:
    sid = lite_vault.seed()
    client = lite_vault.client()
    for method, path in [
        ("GET", "/api/v1/recordings"),
        ("GET", f"/api/v1/recordings/{sid}"),
        ("POST", f"/api/v1/recordings/{sid}/playback"),
    ]:
        answer = client.request(method, path, headers={"Accept": "text/html"})
        assert answer.status_code == 401, path
        assert "error" in answer.json()
    assert client.get("/api/v1/recordings", headers={"Authorization": "Basic abc"}).status_code == 401
    assert client.get("/api/v1/recordings", headers={"Authorization": "Bearer cvt_nope"}).status_code == 401


def test_a_listener_lists_and_reads_only_their_accounts(vault: Vault) -> None:
    mine = vault.seed(account_sid=ACCOUNT_A)
    theirs = vault.seed(account_sid=ACCOUNT_B)
    crm = bearer(vault, "lena@example.com")
    listed = crm.get("/api/v1/recordings").json()
    assert [r["sid"] for r in listed["recordings"]] == [mine]
    assert crm.get(f"/api/v1/recordings/{mine}").json()["account_sid"] == ACCOUNT_A
    assert crm.get(f"/api/v1/recordings/{theirs}").status_code == 404
    assert crm.get("/api/v1/recordings", params={"account": ACCOUNT_B}).json()["recordings"] == []
    assert crm.post(f"/api/v1/recordings/{theirs}/playback").status_code == 404
    admin = bearer(vault, "admin@example.com")
    assert {r["sid"] for r in admin.get("/api/v1/recordings").json()["recordings"]} == {mine, theirs}


def test_the_list_filters_by_account_call_status_and_dates_and_pages_with_a_cursor(vault: Vault) -> None:
    day = datetime(2025, 3, 10, 12, tzinfo=UTC)
    old = vault.seed(created_at=day - timedelta(days=5))
    call = new_sid("CA")
    on_call = vault.seed(created_at=day, call_sid=call)
    other = vault.seed(created_at=day + timedelta(hours=1), account_sid=ACCOUNT_B)
    pending = vault.seed(created_at=day + timedelta(hours=2), status=RecordingStatus.PENDING)
    api = bearer(vault, "admin@example.com")

    def sids(**params: str) -> list[str]:
        answer = api.get("/api/v1/recordings", params=params)
        assert answer.status_code == 200, answer.text
        return [r["sid"] for r in answer.json()["recordings"]]

    assert sids() == [pending, other, on_call, old]
    assert sids(account=ACCOUNT_B) == [other]
    assert sids(call_sid=call) == [on_call]
    assert sids(status="pending") == [pending]
    assert sids(**{"from": "2025-03-10"}) == [pending, other, on_call]
    assert sids(to="2025-03-05") == [old]  # the end date is inclusive
    assert sids(**{"from": "2025-03-06", "to": "2025-03-10"}) == [pending, other, on_call]

    first = api.get("/api/v1/recordings", params={"limit": 3}).json()
    assert [r["sid"] for r in first["recordings"]] == [pending, other, on_call]
    second = api.get("/api/v1/recordings", params={"limit": 3, "cursor": first["next_cursor"]}).json()
    assert [r["sid"] for r in second["recordings"]] == [old]
    assert second["next_cursor"] is None


def test_bad_filters_are_a_400_with_a_message(lite_vault: Vault) -> None:
    api = bearer(lite_vault, "admin@example.com")
    for params in (
        {"account": "AC123"},
        {"call_sid": "nope"},
        {"status": "lost"},
        {"from": "10/03/2025"},
        {"cursor": "%%%"},
        {"limit": "0"},
    ):
        answer = api.get("/api/v1/recordings", params=params)
        assert answer.status_code == 400, params
        assert answer.json()["error"]


def test_an_admin_delete_leaves_a_tombstone_and_an_audit_entry(lite_vault: Vault) -> None:
    sid = lite_vault.seed()
    key = lite_vault.recording(sid).storage_key
    assert key is not None
    answer = bearer(lite_vault, "admin@example.com").delete(f"/api/v1/recordings/{sid}")
    assert answer.status_code == 200
    assert answer.json()["status"] == "deleted"
    assert lite_vault.recording(sid).status == RecordingStatus.DELETED
    assert lite_vault.ctx.store.stat(key) is None
    assert [e.recording_sid for e in lite_vault.audit("recording.delete")] == [sid]


def test_a_listener_cannot_delete_and_nothing_changes(lite_vault: Vault) -> None:
    sid = lite_vault.seed()
    answer = bearer(lite_vault, "lena@example.com").delete(f"/api/v1/recordings/{sid}")
    assert answer.status_code == 403
    assert lite_vault.recording(sid).status == RecordingStatus.STORED
    assert lite_vault.audit("recording.delete") == []


def test_a_session_delete_without_csrf_is_refused_and_nothing_changes(lite_vault: Vault) -> None:
    sid = lite_vault.seed()
    browser = lite_vault.login("admin@example.com")
    assert browser.delete(f"/api/v1/recordings/{sid}").status_code == 403
    assert browser.delete(f"/api/v1/recordings/{sid}", headers={"X-CSRF-Token": "x"}).status_code == 403
    assert lite_vault.recording(sid).status == RecordingStatus.STORED
    ok = browser.delete(f"/api/v1/recordings/{sid}", headers={"X-CSRF-Token": lite_vault.csrf_of(browser)})
    assert ok.status_code == 200


def test_a_revoked_token_fails_from_the_next_request(lite_vault: Vault) -> None:
    from callvault.auth.tokens import revoke_token

    sid = lite_vault.seed()
    token_id, raw = lite_vault.token("lena@example.com")
    crm = lite_vault.client(Authorization=f"Bearer {raw}")
    assert crm.post(f"/api/v1/recordings/{sid}/playback").status_code == 200
    with lite_vault.ctx.db.write() as session:
        revoke_token(session, token_id=token_id, actor="test")
    assert crm.post(f"/api/v1/recordings/{sid}/playback").status_code == 401
    assert crm.get(f"/r/{sid}").status_code == 401
    assert len(lite_vault.audit("playback.issue")) == 1


def test_a_disabled_user_loses_token_and_session_access_on_the_next_request(lite_vault: Vault) -> None:
    from callvault.auth.users import disable_user

    sid = lite_vault.seed()
    crm = bearer(lite_vault, "lena@example.com")
    browser = lite_vault.login("lena@example.com")
    assert crm.get(f"/r/{sid}").status_code == 302
    assert browser.get(f"/r/{sid}").status_code == 302
    with lite_vault.ctx.db.write() as session:
        disable_user(session, "lena@example.com", actor="test")
    assert crm.get(f"/r/{sid}").status_code == 401
    assert browser.get(f"/r/{sid}").status_code == 401
    assert browser.get("/", headers={"Accept": "text/html"}).headers["location"] == "/login?next=/"
