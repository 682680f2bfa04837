"""Real Chromium against a real ``callvault serve --no-worker``: log in, play a stored recording, let the
2 s playback TTL pass, seek and resume, and a logged-out browser meets the login page. Screenshots go to
test-artifacts/ (gitignored)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from callvault.db.database import Database
from callvault.db.migrate import upgrade
from callvault.db.models import RecordingStatus, Role
from callvault.storage.local import FileStore
from tests.plugins.playback import ACCOUNT_B, PASSWORD, SECRET, Vault, make_context, make_settings, wav_bytes
from tests.plugins.processes import CallvaultProcess, free_port

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]
TTL = 2
# 24 s of 96 kHz stereo (9 MB): Chromium buffers ~14 s ahead and at least 2 MB, so after a pause near the
# start, a seek to SEEK_TO needs new bytes, i.e. a new request made after the TTL has passed.
DURATION = 24.0
SEEK_TO = 20
PLAYER = "document.getElementById('player')"


@dataclass
class Served:
    base: str
    sid: str
    vault: Vault


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One server for the module: starting `callvault serve` costs seconds on a busy machine."""
    if not CHROMIUM.exists():
        pytest.skip(f"browser tests skipped: no Chromium at {CHROMIUM} (Debian package 'chromium')")
    tmp_path = tmp_path_factory.mktemp("browser")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    url = f"sqlite:///{data_dir / 'callvault.db'}"
    port = free_port()
    database = Database(url)
    upgrade(database)
    settings = make_settings(url, data_dir, storage_url=f"file://{data_dir / 'recordings'}")
    vault = Vault(make_context(database, FileStore(data_dir / "recordings"), settings))
    vault.add_user("maria@example.com", role=Role.ADMIN)  # through the auth service, like `users add`
    now = datetime.now(UTC)
    sid = vault.seed(body=wav_bytes(DURATION, rate=96000, channels=2), created_at=now)
    # A few more rows so the list screenshot shows real variety.
    vault.seed(body=wav_bytes(7.0), created_at=now - timedelta(hours=2))
    vault.seed(body=wav_bytes(95.0), created_at=now - timedelta(days=1), account_sid=ACCOUNT_B)
    vault.seed(status=RecordingStatus.PENDING, created_at=now - timedelta(minutes=3))
    env = {
        "CALLVAULT_DATA_DIR": str(data_dir),
        "CALLVAULT_DATABASE_URL": url,
        "CALLVAULT_SECRET_KEY": SECRET,
        "CALLVAULT_HOST": "127.0.0.1",
        "CALLVAULT_PORT": str(port),
        "CALLVAULT_PLAYBACK_TTL_SECONDS": str(TTL),
        "CALLVAULT_DEMO_CALLS": "0",
        "CALLVAULT_LOG_LEVEL": "WARNING",
    }
    process = CallvaultProcess(["serve", "--no-worker"], env=env, log_path=tmp_path / "serve.log")
    try:
        base = f"http://127.0.0.1:{port}"
        process.wait_healthy(base)
        yield Served(base, sid, vault)
    finally:
        process.stop()
        vault.close()
        database.dispose()


@pytest.fixture(scope="module")
def chromium(served: Served) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def player_state(page: Any) -> dict[str, Any]:
    return page.evaluate(  # type: ignore[no-any-return]
        f"(p => ({{t: p.currentTime, paused: p.paused, error: p.error && p.error.code,"
        f" buffered: p.buffered.length ? p.buffered.end(p.buffered.length - 1) : 0}}))({PLAYER})"
    )


def test_a_listener_plays_seeks_after_the_ttl_and_resumes(served: Served, chromium: Any) -> None:
    page = chromium.new_context(viewport={"width": 1280, "height": 860}).new_page()
    requests: list[tuple[float, int, str]] = []
    page.on("response", lambda r: requests.append((time.monotonic(), r.status, r.url)))
    csp_violations: list[str] = []
    page.on(
        "console", lambda m: csp_violations.append(m.text) if "Content Security Policy" in m.text else None
    )

    page.goto(f"{served.base}/login")
    page.fill("input[name=email]", "maria@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{served.base}/")
    page.screenshot(path=str(ARTIFACTS / "recordings.png"), full_page=True)

    page.click(f"a[href='/recordings/{served.sid}']")
    page.wait_for_url(f"{served.base}/recordings/{served.sid}")
    page.evaluate(f"{PLAYER}.play()")
    page.wait_for_function(f"() => {PLAYER}.currentTime > 1.0", timeout=20000)
    page.screenshot(path=str(ARTIFACTS / "recording.png"), full_page=True)
    page.evaluate(f"{PLAYER}.pause()")
    paused = player_state(page)
    assert paused["error"] is None
    assert paused["buffered"] < SEEK_TO, "the seek must need bytes the first link did not deliver"
    issued_before = len(served.vault.audit("playback.issue"))
    count_errors = "window.playerErrors = 0; p.addEventListener('error', () => window.playerErrors++);"
    page.evaluate(f"(p => {{ {count_errors} }})({PLAYER})")

    time.sleep(TTL + 1.5)  # any link issued before has expired now
    seek_at = time.monotonic()
    page.evaluate(f"(p => {{ p.currentTime = {SEEK_TO}; p.play().catch(() => {{}}); }})({PLAYER})")
    page.wait_for_function(
        f"() => (p => p.currentTime > {SEEK_TO + 0.5} && !p.paused && p.error === null)({PLAYER})",
        timeout=20000,
    )
    resumed = player_state(page)
    assert resumed["error"] is None and not resumed["paused"] and resumed["t"] > SEEK_TO

    # It played on because the element's Range requests came back through the permalink, which checked the
    # caller again, audited, and streamed the bytes: no redirect to a seconds-lived URL, no error to recover.
    after = [(status, url) for at, status, url in requests if at > seek_at]
    permalink_hits = [status for status, url in after if f"/r/{served.sid}" in url]
    assert permalink_hits and set(permalink_hits) == {206}
    assert [url for _, url in after if "/media/" in url] == []
    assert page.evaluate("window.playerErrors") == 0
    assert len(served.vault.audit("playback.issue")) > issued_before
    assert csp_violations == []

    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(ARTIFACTS / "recording-mobile.png"), full_page=True)


def test_a_logged_out_browser_gets_the_login_page_for_a_permalink(served: Served, chromium: Any) -> None:
    issued_before = len(served.vault.audit("playback.issue"))
    page = chromium.new_context(viewport={"width": 1280, "height": 860}).new_page()
    page.goto(f"{served.base}/r/{served.sid}")
    assert page.url == f"{served.base}/login?next=/r/{served.sid}"
    assert page.locator("h1").inner_text() == "Sign in"
    assert page.locator("input[name=next]").input_value() == f"/r/{served.sid}"
    page.screenshot(path=str(ARTIFACTS / "login.png"), full_page=True)
    assert len(served.vault.audit("playback.issue")) == issued_before


def test_the_admin_and_audit_pages_work_under_the_csp(served: Served, chromium: Any) -> None:
    page = chromium.new_context(viewport={"width": 1280, "height": 860}).new_page()
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(f"{served.base}/login")
    page.fill("input[name=email]", "maria@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{served.base}/")

    page.goto(f"{served.base}/admin/users")
    page.fill("form[action='/admin/users'] input[name=email]", "lena@example.com")
    page.select_option("form[action='/admin/users'] select[name=role]", "listener")
    page.fill("form[action='/admin/users'] textarea[name=accounts]", ACCOUNT_B)
    page.fill("form[action='/admin/users'] input[name=password]", PASSWORD)
    page.click("form[action='/admin/users'] button[type=submit]")
    assert "Added lena@example.com." in page.locator(".alert").inner_text()
    page.screenshot(path=str(ARTIFACTS / "admin-users.png"), full_page=True)

    page.goto(f"{served.base}/admin/tokens")
    page.select_option("select[name=email]", "lena@example.com")
    page.fill("input[name=name]", "CRM integration")
    page.click("form[action='/admin/tokens'] button[type=submit]")
    token = page.locator("#new-token").input_value()
    assert token.startswith("cvt_")
    page.screenshot(path=str(ARTIFACTS / "admin-tokens.png"), full_page=True)

    page.goto(f"{served.base}/audit")
    assert "Chain intact." in page.locator(".alert.chain").inner_text()
    assert page.locator("td[data-label=Action]", has_text="token.create").count() == 1
    page.screenshot(path=str(ARTIFACTS / "audit.png"), full_page=True)

    page.goto(f"{served.base}/recordings/RE{'0' * 32}")
    assert page.locator("h1").inner_text() == "Not found"
    page.screenshot(path=str(ARTIFACTS / "not-found.png"), full_page=True)
    assert violations == []
