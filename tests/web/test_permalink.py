"""``/r/{sid}``: a fresh 302 per request for authorized callers; login redirect or 401 otherwise; 404 for
recordings outside the caller's accounts."""

from urllib.parse import urlsplit

import pytest

from tests.plugins.playback import ACCOUNT_A, ACCOUNT_B, Vault, new_sid, wav_bytes

BODY = wav_bytes(1.5)
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def test_a_permalink_redirects_to_a_fresh_url_that_serves_the_recording(lite_vault: Vault) -> None:
    sid = lite_vault.seed(body=BODY)
    browser = lite_vault.login("lena@example.com")
    answer = browser.get(f"/r/{sid}")
    assert answer.status_code == 302
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["referrer-policy"] == "no-referrer"
    target = urlsplit(answer.headers["location"])
    assert (target.scheme, target.netloc) == ("http", "testserver")
    assert target.path.startswith("/media/")
    assert lite_vault.client().get(target.path).content == BODY  # the URL itself is the credential
    [entry] = lite_vault.audit("playback.issue")
    assert (entry.actor, entry.recording_sid, entry.detail["via"]) == ("lena@example.com", sid, "permalink")


def test_every_request_to_a_permalink_is_a_new_audited_issuance(lite_vault: Vault) -> None:
    sid = lite_vault.seed(body=BODY)
    browser = lite_vault.login("lena@example.com")
    for _ in range(3):
        fetched = browser.get(f"/r/{sid}")
        assert fetched.status_code == 302
        assert lite_vault.client().get(fetched.headers["location"]).content == BODY
    assert len(lite_vault.audit("playback.issue")) == 3


def test_a_media_elements_range_requests_are_streamed_by_the_permalink_itself(lite_vault: Vault) -> None:
    # A player that followed a 302 would send its next Range request (seek, resume) to the seconds-lived
    # target; streaming here keeps every one of them behind the access check, whatever the TTL.
    sid = lite_vault.seed(body=BODY)
    browser = lite_vault.login("lena@example.com")
    for start in (0, 1000, 20000):
        seek = browser.get(f"/r/{sid}", headers={"Range": f"bytes={start}-", "Sec-Fetch-Dest": "audio"})
        assert seek.status_code == 206
        assert seek.content == BODY[start:]
        assert seek.headers["content-range"] == f"bytes {start}-{len(BODY) - 1}/{len(BODY)}"
        assert seek.headers["cache-control"] == "private, no-store"
        assert "location" not in seek.headers
    whole = browser.get(f"/r/{sid}", headers={"Sec-Fetch-Dest": "audio"})
    assert (whole.status_code, whole.content) == (200, BODY)
    entries = lite_vault.audit("playback.issue")
    assert len(entries) == 4 and {e.detail["mode"] for e in entries} == {"stream"}
    stranger = lite_vault.client().get(f"/r/{sid}", headers={"Range": "bytes=0-", "Sec-Fetch-Dest": "audio"})
    assert stranger.status_code == 401
    assert len(lite_vault.audit("playback.issue")) == 4


def test_an_unauthenticated_browser_is_sent_to_login_and_back(lite_vault: Vault) -> None:
    sid = lite_vault.seed()
    answer = lite_vault.client().get(f"/r/{sid}", headers=BROWSER)
    assert answer.status_code == 302
    assert answer.headers["location"] == f"/login?next=/r/{sid}"
    assert lite_vault.audit("playback.issue") == []


def test_an_unauthenticated_api_client_gets_401_json(lite_vault: Vault) -> None:
    sid = lite_vault.seed()
    answer = lite_vault.client().get(f"/r/{sid}", headers={"Accept": "*/*"})
    assert answer.status_code == 401
    assert "error" in answer.json()
    assert "location" not in answer.headers


def test_a_bearer_token_opens_a_permalink(lite_vault: Vault) -> None:
    sid = lite_vault.seed(body=BODY)
    _, raw = lite_vault.token("lena@example.com")
    answer = lite_vault.client().get(f"/r/{sid}", headers={"Authorization": f"Bearer {raw}"})
    assert answer.status_code == 302
    [entry] = lite_vault.audit("playback.issue")
    assert entry.actor.startswith("lena@example.com (token:")


def test_a_listener_cannot_tell_another_accounts_recording_from_a_missing_one(lite_vault: Vault) -> None:
    other = lite_vault.seed(account_sid=ACCOUNT_B)
    browser = lite_vault.login("lena@example.com")
    hidden = browser.get(f"/r/{other}")
    missing = browser.get(f"/r/{(absent := new_sid('RE'))}")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["error"].replace(other, "X") == missing.json()["error"].replace(absent, "X")
    assert lite_vault.audit("playback.issue") == []


def test_an_admin_hears_every_account(lite_vault: Vault) -> None:
    sids = [lite_vault.seed(account_sid=ACCOUNT_A), lite_vault.seed(account_sid=ACCOUNT_B)]
    browser = lite_vault.login("admin@example.com")
    assert [browser.get(f"/r/{sid}").status_code for sid in sids] == [302, 302]


@pytest.mark.parametrize("sid", ["RE123", "RE" + "0" * 30 + "..", "RE" + "A" * 32, "RE" + "0" * 32 + "%00"])
def test_a_malformed_sid_is_a_400(lite_vault: Vault, sid: str) -> None:
    browser = lite_vault.login("admin@example.com")
    assert browser.get(f"/r/{sid}").status_code == 400
