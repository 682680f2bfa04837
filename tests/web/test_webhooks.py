"""The recording-status webhook: signature first, then fields, then one durable, idempotent insert."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from callvault.context import Context
from callvault.db.database import Database
from callvault.db.models import Recording
from callvault.twilio.gateway import TwilioAccount
from callvault.twilio.signature import compute_signature
from callvault.web.app import create_app
from tests.factories import make_context, make_settings, random_sid

PUBLIC = "https://vault.example.com"
API_BASE = "https://api.twilio.com"


@pytest.fixture
def account() -> TwilioAccount:
    return TwilioAccount(
        account_sid=random_sid("AC"),
        auth_token="token-" + random_sid("XX"),
        api_key_sid=None,
        api_key_secret=None,
        api_base_url=API_BASE,
    )


@pytest.fixture
def ctx(tmp_path: Path, database_url: str, account: TwilioAccount) -> Iterator[Context]:
    settings = make_settings(
        tmp_path,
        twilio_account_sid=account.account_sid,
        twilio_auth_token=account.auth_token,
        public_url=PUBLIC,
        database_url=database_url,
        webhook_max_body_bytes=4096,
    )
    context = make_context(settings=settings, database_url=database_url, account=account)
    yield context
    context.close()


@pytest.fixture
def client(ctx: Context) -> Iterator[TestClient]:
    with TestClient(create_app(ctx), raise_server_exceptions=False) as test_client:
        yield test_client


def callback_params(
    account: TwilioAccount, *, status: str = "completed", sid: str | None = None
) -> dict[str, str]:
    sid = sid or random_sid("RE")
    return {
        "AccountSid": account.account_sid,
        "CallSid": random_sid("CA"),
        "RecordingSid": sid,
        "RecordingUrl": f"{API_BASE}/2010-04-01/Accounts/{account.account_sid}/Recordings/{sid}",
        "RecordingStatus": status,
        "RecordingDuration": "42",
        "RecordingChannels": "1",
        "RecordingStartTime": "Sat, 28 Nov 2026 10:00:00 +0000",
        "RecordingSource": "DialVerb",
        "SomeFutureParameter": "accepted",
    }


def post(
    client: TestClient,
    account: TwilioAccount,
    params: dict[str, str],
    *,
    path: str = "/twilio/recording-status",
    token: str | None = None,
    signed_url: str | None = None,
    signature: str | None = None,
) -> int:
    url = signed_url or PUBLIC + path
    sig = (
        signature
        if signature is not None
        else compute_signature(auth_token=token or account.auth_token, url=url, params=params)
    )
    response = client.post(
        path,
        content=urlencode(params),
        headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": sig},
    )
    return response.status_code


def rows(db: Database) -> list[Recording]:
    with db.read() as session:
        return list(session.execute(select(Recording)).scalars())


def test_webhook_queues_a_completed_recording_once_despite_duplicates(
    client: TestClient, ctx: Context, account: TwilioAccount
) -> None:
    params = callback_params(account)
    assert post(client, account, params) == 204
    assert post(client, account, params) == 204
    assert post(client, account, {**params, "RecordingStatus": "in-progress"}) == 204
    [rec] = rows(ctx.db)
    assert (rec.sid, rec.status, rec.stage, rec.attempts) == (params["RecordingSid"], "pending", "fetch", 0)
    assert rec.call_sid == params["CallSid"]
    assert rec.duration_seconds == 42


def test_webhook_rejects_forged_signature_and_stores_nothing(
    client: TestClient, ctx: Context, account: TwilioAccount
) -> None:
    params = callback_params(account)
    assert post(client, account, params, token="not-the-auth-token") == 403
    assert post(client, account, params, signature="") == 403
    response = client.post(
        "/twilio/recording-status",
        content=urlencode(params),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 403
    assert "Traceback" not in response.text
    assert rows(ctx.db) == []


def test_webhook_rejects_a_signature_over_the_internal_url(
    client: TestClient, ctx: Context, account: TwilioAccount
) -> None:
    params = callback_params(account)
    assert post(client, account, params, signed_url="http://testserver/twilio/recording-status") == 403
    assert rows(ctx.db) == []


def test_webhook_accepts_a_signed_query_string_as_received(
    client: TestClient, ctx: Context, account: TwilioAccount
) -> None:
    params = callback_params(account)
    path = "/twilio/recording-status?tenant=north&x=a%20b"
    assert post(client, account, params, path=path) == 204
    assert len(rows(ctx.db)) == 1


def test_webhook_rejects_tampered_body(client: TestClient, ctx: Context, account: TwilioAccount) -> None:
    params = callback_params(account)
    signature = compute_signature(
        auth_token=account.auth_token, url=PUBLIC + "/twilio/recording-status", params=params
    )
    tampered = {**params, "RecordingSid": random_sid("RE")}
    assert post(client, account, tampered, signature=signature) == 403
    assert rows(ctx.db) == []


@pytest.mark.parametrize(
    ("field", "value", "status"),
    [
        ("RecordingSid", "RE../../etc/passwd", 400),
        ("RecordingSid", "RE" + "A" * 32, 400),
        ("CallSid", "CA123", 400),
        ("RecordingStatus", "exploded", 400),
        ("RecordingUrl", "https://evil.example.com/2010-04-01/Accounts/ACx/Recordings/REx", 400),
    ],
)
def test_webhook_refuses_malformed_fields_with_a_clear_4xx(
    client: TestClient, ctx: Context, account: TwilioAccount, field: str, value: str, status: int
) -> None:
    params = {**callback_params(account), field: value}
    response_status = post(client, account, params)
    assert response_status == status
    assert rows(ctx.db) == []


def test_webhook_refuses_recording_url_on_another_host_even_with_the_right_path(
    client: TestClient, ctx: Context, account: TwilioAccount
) -> None:
    params = callback_params(account)
    params["RecordingUrl"] = params["RecordingUrl"].replace("api.twilio.com", "api.twilio.com.evil.example")
    assert post(client, account, params) == 400
    assert rows(ctx.db) == []


def test_webhook_refuses_an_account_it_does_not_keep(
    client: TestClient, ctx: Context, account: TwilioAccount
) -> None:
    params = {**callback_params(account), "AccountSid": random_sid("AC")}
    params["RecordingUrl"] = (
        f"{API_BASE}/2010-04-01/Accounts/{params['AccountSid']}/Recordings/{params['RecordingSid']}"
    )
    assert post(client, account, params) == 403
    assert rows(ctx.db) == []


def test_webhook_answers_413_to_an_oversized_body(
    client: TestClient, ctx: Context, account: TwilioAccount
) -> None:
    params = {**callback_params(account), "Padding": "x" * 5000}
    assert post(client, account, params) == 413
    assert rows(ctx.db) == []


def test_webhook_refuses_a_non_form_body(client: TestClient, ctx: Context) -> None:
    response = client.post("/twilio/recording-status", json={"RecordingSid": random_sid("RE")})
    assert response.status_code == 400
    assert rows(ctx.db) == []


def test_absent_recording_is_noted_failed_and_revived_by_a_later_completed(
    client: TestClient, ctx: Context, account: TwilioAccount
) -> None:
    params = callback_params(account, status="absent")
    params["ErrorCode"] = "16101"
    assert post(client, account, params) == 204
    [rec] = rows(ctx.db)
    assert rec.status == "failed"
    assert rec.last_error is not None and "16101" in rec.last_error
    assert post(client, account, {**params, "RecordingStatus": "completed"}) == 204
    [rec] = rows(ctx.db)
    assert (rec.status, rec.last_error) == ("pending", None)


def test_in_progress_after_completed_changes_nothing(
    client: TestClient, ctx: Context, account: TwilioAccount
) -> None:
    params = callback_params(account)
    assert post(client, account, {**params, "RecordingStatus": "in-progress"}) == 204
    assert rows(ctx.db) == []
    assert post(client, account, params) == 204
    assert post(client, account, {**params, "RecordingStatus": "in-progress"}) == 204
    [rec] = rows(ctx.db)
    assert rec.status == "pending"


def test_record_action_answers_twiml(client: TestClient, account: TwilioAccount) -> None:
    params = {
        "AccountSid": account.account_sid,
        "CallSid": random_sid("CA"),
        "RecordingUrl": "x",
        "Digits": "hangup",
    }
    url = PUBLIC + "/twilio/record-action"
    response = client.post(
        "/twilio/record-action",
        content=urlencode(params),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": compute_signature(auth_token=account.auth_token, url=url, params=params),
        },
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    assert response.text.endswith("<Response/>")


def test_webhook_answers_503_when_the_database_is_down(tmp_path: Path, account: TwilioAccount) -> None:
    dead = "postgresql+psycopg://postgres@127.0.0.1:1/none"
    settings = make_settings(
        tmp_path,
        twilio_account_sid=account.account_sid,
        twilio_auth_token=account.auth_token,
        public_url=PUBLIC,
    )
    context = make_context(settings=settings, database_url=dead, account=account)
    with TestClient(create_app(context), raise_server_exceptions=False) as test_client:
        assert post(test_client, account, callback_params(account)) == 503
    context.close()
