"""The server-rendered UI: login (CSRF before a session exists, fixation), pages, admin forms, audit."""

import re
from typing import Any

from callvault.db.models import RecordingStatus, Role
from tests.plugins.playback import ACCOUNT_A, ACCOUNT_B, PASSWORD, SESSION, Vault, form_csrf, wav_bytes

HTML = {"Accept": "text/html"}
CSP = (
    "default-src 'self'; script-src 'self'; object-src 'none'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)


def post_login(browser: Any, email: str, password: str = PASSWORD, **extra: str) -> Any:
    page = browser.get("/login")
    data = {"email": email, "password": password, "csrf_token": form_csrf(page.text), "next": "/"} | extra
    return browser.post("/login", data=data)


# ---------------------------------------------------------------------------------------------- login
def test_logging_in_sets_an_httponly_lax_session_cookie_and_returns_to_next(lite_vault: Vault) -> None:
    browser = lite_vault.client()
    answer = post_login(browser, "lena@example.com", next="/recordings/RE" + "0" * 32)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/recordings/RE" + "0" * 32
    cookie = next(h for h in answer.headers.get_list("set-cookie") if h.startswith(f"{SESSION}="))
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain http public URL
    assert browser.get("/").status_code == 200


def test_the_session_cookie_is_secure_behind_https(lite_vault_factory: Any) -> None:
    vault: Vault = lite_vault_factory(public_url="https://vault.example.com")
    vault.add_user("lena@example.com", role=Role.LISTENER, accounts=[ACCOUNT_A])
    answer = post_login(vault.client(base_url="https://testserver"), "lena@example.com")
    cookies = answer.headers.get_list("set-cookie")
    assert any(c.startswith(f"{SESSION}=") and "Secure" in c for c in cookies)


def test_a_login_post_without_the_forms_csrf_token_is_refused(lite_vault: Vault) -> None:
    browser = lite_vault.client()
    browser.get("/login")
    for token in ("", "0" * 64):
        answer = browser.post(
            "/login", data={"email": "lena@example.com", "password": PASSWORD, "csrf_token": token}
        )
        assert answer.status_code == 403
        assert SESSION not in answer.headers.get("set-cookie", "")
    assert lite_vault.audit("login.success") == []
    # and a token from another browser's pre-session does not fit this one
    other = lite_vault.client()
    stolen = form_csrf(other.get("/login").text)
    answer = browser.post(
        "/login", data={"email": "lena@example.com", "password": PASSWORD, "csrf_token": stolen}
    )
    assert answer.status_code == 403


def test_a_wrong_password_shows_the_form_again_with_a_message(lite_vault: Vault) -> None:
    browser = lite_vault.client()
    answer = post_login(browser, "lena@example.com", password="wrong password!!")
    assert answer.status_code == 401
    assert "Wrong email or password." in answer.text
    assert SESSION not in answer.headers.get("set-cookie", "")
    assert [e.detail["reason"] for e in lite_vault.audit("login.failure")] == ["wrong password"]


def test_repeated_failures_are_throttled_with_retry_after(lite_vault_factory: Any) -> None:
    vault: Vault = lite_vault_factory(login_max_failures=2)
    vault.add_user("lena@example.com", role=Role.LISTENER, accounts=[ACCOUNT_A])
    browser = vault.client()
    assert [
        post_login(browser, "lena@example.com", password="wrong password!!").status_code for _ in range(2)
    ] == [401, 401]
    throttled = post_login(browser, "lena@example.com")  # even the right password
    assert throttled.status_code == 429
    assert int(throttled.headers["retry-after"]) > 0
    assert "Too many failed attempts" in throttled.text


def test_a_session_planted_before_login_is_not_honoured_after_it(lite_vault: Vault) -> None:
    browser = lite_vault.client()
    browser.cookies.set(SESSION, "attacker-chosen-value")
    answer = post_login(browser, "lena@example.com")
    assert answer.status_code == 303
    issued = answer.cookies.get(SESSION)
    assert issued and issued != "attacker-chosen-value"
    attacker = lite_vault.client()
    attacker.cookies.set(SESSION, "attacker-chosen-value")
    assert attacker.get("/", headers=HTML).status_code == 302


def test_logging_in_again_ends_the_previous_session(vault: Vault) -> None:
    browser = vault.login("lena@example.com")
    first = browser.cookies.get(SESSION)
    vault.login("lena@example.com", client=browser)
    second = browser.cookies.get(SESSION)
    assert first and second and first != second
    replay = vault.client()
    replay.cookies.set(SESSION, first)
    assert replay.get("/api/v1/recordings").status_code == 401


def test_login_never_redirects_off_site(lite_vault: Vault) -> None:
    for target in ("https://evil.example", "//evil.example", "/\\evil.example", "javascript:alert(1)"):
        answer = post_login(lite_vault.client(), "lena@example.com", next=target)
        assert answer.headers["location"] == "/", target


def test_logout_needs_csrf_and_ends_the_session(lite_vault: Vault) -> None:
    browser = lite_vault.login("lena@example.com")
    raw = browser.cookies.get(SESSION)
    assert browser.post("/logout", data={"csrf_token": "nope"}).status_code == 403
    assert browser.get("/").status_code == 200  # still logged in
    answer = browser.post("/logout", data={"csrf_token": lite_vault.csrf_of(browser)})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login"
    replay = lite_vault.client()
    replay.cookies.set(SESSION, raw)
    assert replay.get("/").status_code == 401
    assert [e.actor for e in lite_vault.audit("logout")] == ["lena@example.com"]


def test_an_unauthenticated_browser_is_sent_to_login(lite_vault: Vault) -> None:
    for path in ("/", "/audit", "/admin/users", "/recordings/RE" + "0" * 32):
        answer = lite_vault.client().get(path, headers=HTML)
        assert answer.status_code == 302
        assert answer.headers["location"] == f"/login?next={path}"


# --------------------------------------------------------------------------------------------- pages
def test_every_page_carries_the_strict_csp_and_no_inline_script_or_style(lite_vault: Vault) -> None:
    sid = lite_vault.seed()
    browser = lite_vault.login("admin@example.com")
    for path in ("/login", "/", f"/recordings/{sid}", "/admin/users", "/admin/tokens", "/audit", "/nowhere"):
        answer = browser.get(path, headers=HTML)
        assert answer.headers["content-security-policy"] == CSP, path
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "no-referrer"
        assert answer.headers["cache-control"] == "no-store"
        assert "<style" not in answer.text and " style=" not in answer.text, path
        assert re.findall(r"<script(?![^>]*\bsrc=)", answer.text) == [], path
        assert re.search(r"\son[a-z]+=", answer.text) is None, path


def test_the_recordings_page_lists_only_the_listeners_accounts_in_human_units(lite_vault: Vault) -> None:
    mine = lite_vault.seed(account_sid=ACCOUNT_A, body=wav_bytes(5.0))  # 80 044 bytes, 5 s
    theirs = lite_vault.seed(account_sid=ACCOUNT_B)
    page = lite_vault.login("lena@example.com").get("/")
    assert mine in page.text
    assert theirs not in page.text
    assert "0:05" in page.text
    assert "78.2 KB" in page.text
    assert " UTC" in page.text


def test_the_recordings_page_searches_by_sid_and_filters_by_status(lite_vault: Vault) -> None:
    stored = lite_vault.seed()
    pending = lite_vault.seed(status=RecordingStatus.PENDING)
    browser = lite_vault.login("admin@example.com")
    by_sid = browser.get("/", params={"q": stored}).text
    assert stored in by_sid and pending not in by_sid
    by_status = browser.get("/", params={"status": "pending"}).text
    assert pending in by_status and stored not in by_status
    bad = browser.get("/", params={"q": "not a sid"}).text
    assert "Search by a RecordingSid" in bad


def test_the_recordings_page_pages_with_a_cursor(lite_vault: Vault) -> None:
    from callvault.web.pages.recordings import PAGE_SIZE

    sids = [lite_vault.seed() for _ in range(PAGE_SIZE + 1)]
    browser = lite_vault.login("admin@example.com")
    first = browser.get("/").text
    older = re.search(r'href="(/\?[^"]*cursor=[^"]+)"', first)
    assert older is not None
    second = browser.get(older.group(1).replace("&amp;", "&")).text
    shown = [sid for sid in sids if sid in second]
    assert len(shown) == 1
    assert shown[0] not in first


def test_the_recording_page_plays_through_the_permalink(lite_vault: Vault) -> None:
    sid = lite_vault.seed()
    page = lite_vault.login("lena@example.com").get(f"/recordings/{sid}")
    assert page.status_code == 200
    assert (
        f'<audio id="player" controls preload="metadata" src="/r/{sid}" data-permalink="/r/{sid}">'
        in page.text
    )
    assert f'value="http://testserver/r/{sid}"' in page.text
    assert 'data-copy="permalink"' in page.text
    assert '<script src="/static/app.js' in page.text
    assert lite_vault.audit("playback.issue") == []  # rendering the page issues no link


def test_a_listener_gets_a_404_page_for_another_accounts_recording(lite_vault: Vault) -> None:
    theirs = lite_vault.seed(account_sid=ACCOUNT_B)
    page = lite_vault.login("lena@example.com").get(f"/recordings/{theirs}", headers=HTML)
    assert page.status_code == 404
    assert "Not found" in page.text
    assert "text/html" in page.headers["content-type"]


def test_the_demo_banner_shows_only_in_demo_mode(lite_vault_factory: Any) -> None:
    demo: Vault = lite_vault_factory()
    assert demo.ctx.settings.demo
    assert "DEMO MODE — simulated Twilio" in demo.client().get("/login").text
    real: Vault = lite_vault_factory(
        twilio_account_sid=ACCOUNT_A, twilio_auth_token="t" * 32, public_url="https://vault.example.com"
    )
    assert "DEMO MODE" not in real.client().get("/login").text


def test_static_assets_are_served(lite_vault: Vault) -> None:
    client = lite_vault.client()
    assert "color-scheme" in client.get("/static/app.css").text
    assert "data-copy" in client.get("/static/app.js").text


def test_an_admin_deletes_from_the_recording_page_with_csrf(lite_vault: Vault) -> None:
    sid = lite_vault.seed()
    browser = lite_vault.login("admin@example.com")
    assert browser.post(f"/recordings/{sid}/delete", data={"csrf_token": "x"}).status_code == 403
    assert lite_vault.recording(sid).status == RecordingStatus.STORED
    answer = browser.post(f"/recordings/{sid}/delete", data={"csrf_token": lite_vault.csrf_of(browser)})
    assert answer.status_code == 303
    assert lite_vault.recording(sid).status == RecordingStatus.DELETED
    assert "Deleted" in browser.get(f"/recordings/{sid}").text


# --------------------------------------------------------------------------------------------- admin
def test_an_admin_adds_a_user_who_can_then_log_in(lite_vault: Vault) -> None:
    browser = lite_vault.login("admin@example.com")
    data = {"email": "new@example.com", "role": "listener", "accounts": ACCOUNT_B, "password": PASSWORD}
    assert browser.post("/admin/users", data=data).status_code == 403  # no CSRF token
    answer = browser.post("/admin/users", data=data | {"csrf_token": lite_vault.csrf_of(browser)})
    assert answer.status_code == 200
    assert "Added new@example.com." in answer.text
    assert [e.detail["email"] for e in lite_vault.audit("user.add")][-1] == "new@example.com"
    newcomer = lite_vault.login("new@example.com")
    other = lite_vault.seed(account_sid=ACCOUNT_B)
    assert newcomer.get(f"/r/{other}").status_code == 302


def test_adding_a_user_with_bad_input_explains_and_adds_nobody(lite_vault: Vault) -> None:
    browser = lite_vault.login("admin@example.com")
    csrf = lite_vault.csrf_of(browser)
    answer = browser.post(
        "/admin/users",
        data={"email": "x@example.com", "role": "listener", "accounts": "AC12", "csrf_token": csrf},
    )
    assert answer.status_code == 400
    assert "AccountSid" in answer.text or "account" in answer.text
    assert "x@example.com" not in [e.detail["email"] for e in lite_vault.audit("user.add")]


def test_a_disabled_user_is_logged_out_on_the_next_request(lite_vault: Vault) -> None:
    lena = lite_vault.login("lena@example.com")
    admin = lite_vault.login("admin@example.com")
    answer = admin.post(
        "/admin/users/state",
        data={"email": "lena@example.com", "action": "disable", "csrf_token": lite_vault.csrf_of(admin)},
    )
    assert answer.status_code == 303
    assert lena.get("/", headers=HTML).status_code == 302


def test_non_admins_cannot_reach_admin_pages_or_forms(lite_vault: Vault) -> None:
    lena = lite_vault.login("lena@example.com")
    assert lena.get("/admin/users", headers=HTML).status_code == 403
    assert lena.get("/admin/tokens", headers=HTML).status_code == 403
    csrf = lite_vault.csrf_of(lena)
    data = {"email": "evil@example.com", "role": "admin", "password": PASSWORD, "csrf_token": csrf}
    assert lena.post("/admin/users", data=data).status_code == 403
    assert "evil@example.com" not in [e.detail["email"] for e in lite_vault.audit("user.add")]


def test_a_token_is_shown_once_works_and_can_be_revoked(lite_vault: Vault) -> None:
    sid = lite_vault.seed()
    admin = lite_vault.login("admin@example.com")
    data = {
        "email": "lena@example.com",
        "name": "CRM",
        "expires_days": "30",
        "csrf_token": lite_vault.csrf_of(admin),
    }
    created = admin.post("/admin/tokens", data=data)
    assert created.status_code == 200
    match = re.search(r'id="new-token" type="text" value="(cvt_[^"]+)"', created.text)
    assert match is not None
    raw = match.group(1)
    assert raw not in admin.get("/admin/tokens").text  # shown once
    crm = lite_vault.client(Authorization=f"Bearer {raw}")
    assert crm.get(f"/r/{sid}").status_code == 302
    token_id = re.search(r'action="/admin/tokens/(\d+)/revoke"', admin.get("/admin/tokens").text)
    assert token_id is not None
    revoked = admin.post(
        f"/admin/tokens/{token_id.group(1)}/revoke", data={"csrf_token": lite_vault.csrf_of(admin)}
    )
    assert revoked.status_code == 303
    assert crm.get(f"/r/{sid}").status_code == 401


# --------------------------------------------------------------------------------------------- audit
def test_auditors_read_the_trail_with_its_chain_status_and_filters(lite_vault: Vault) -> None:
    sid = lite_vault.seed()
    lite_vault.login("lena@example.com").get(f"/r/{sid}")
    auditor = lite_vault.login("audrey@example.com")
    page = auditor.get("/audit")
    assert page.status_code == 200
    assert "Chain intact." in page.text
    assert "playback.issue" in page.text and "login.success" in page.text
    filtered = auditor.get("/audit", params={"action": "playback.issue"}).text
    assert "login.success</span>" not in filtered
    assert sid in filtered
    by_recording = auditor.get("/audit", params={"recording": sid}).text
    assert "playback.issue" in by_recording


def test_the_audit_page_shows_a_broken_chain(lite_vault: Vault) -> None:
    from sqlalchemy import update

    from callvault.db.models import AuditEntry

    lite_vault.login("lena@example.com")
    with lite_vault.ctx.db.write() as session:
        session.execute(update(AuditEntry).where(AuditEntry.id == 1).values(actor="someone else"))
    page = lite_vault.login("audrey@example.com").get("/audit").text
    assert "Chain broken at entry 1." in page


def test_listeners_cannot_read_the_audit_trail(lite_vault: Vault) -> None:
    assert lite_vault.login("lena@example.com").get("/audit", headers=HTML).status_code == 403
