"""Browser logins: fresh sessions, uniform failures, throttling by email and address, expiry, CSRF."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from callvault.audit import trail
from callvault.auth import sessions, tokens, users
from callvault.db.database import Database
from callvault.db.models import AuditEntry, LoginFailure, Role, WebSession
from callvault.errors import CallvaultError, Forbidden, TooManyRequests, Unauthenticated
from callvault.settings import Settings
from tests.auth.conftest import PASSWORD, MakeUser

NOW = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
KEY = b"k" * 32


def attempt(
    db: Database,
    cfg: Settings,
    email: str,
    password: str,
    *,
    ip: str | None = "198.51.100.7",
    now: datetime = NOW,
) -> str:
    """One login through a write session, as the web layer does; returns the raw session token."""
    with db.write() as session:
        _, raw = sessions.login(
            session,
            email=email,
            password=password,
            client_ip=ip,
            user_agent="pytest/1",
            settings=cfg,
            now=now,
        )
    return raw


def test_each_login_mints_a_new_session_and_a_value_chosen_before_login_is_never_accepted(
    db: Database, cfg: Settings, make_user: MakeUser
) -> None:
    user_id = make_user("alice@example.com", role=Role.ADMIN)
    planted = "attacker-chosen-session-value"
    first = attempt(db, cfg, "Alice@Example.com", PASSWORD)
    second = attempt(db, cfg, "alice@example.com", PASSWORD)
    assert len({planted, first, second}) == 3
    with db.read() as session:
        principal = sessions.resolve_session(session, second, now=NOW)
        assert sessions.resolve_session(session, first, now=NOW).user_id == user_id
        with pytest.raises(Unauthenticated):
            sessions.resolve_session(session, planted, now=NOW)
        stored = session.scalars(select(WebSession.expires_at)).all()
        entry = trail.list_entries(session, limit=1)[0]
    assert (principal.user_id, principal.email, principal.role, principal.via) == (
        user_id,
        "alice@example.com",
        Role.ADMIN,
        "session",
    )
    assert stored == [NOW + timedelta(hours=1)] * 2
    assert (entry.actor, entry.action, entry.client_ip, entry.user_agent, entry.detail) == (
        "alice@example.com",
        "login.success",
        "198.51.100.7",
        "pytest/1",
        {"email": "alice@example.com"},
    )


def test_wrong_password_unknown_email_and_disabled_user_fail_alike_and_are_recorded(
    db: Database, cfg: Settings, make_user: MakeUser
) -> None:
    make_user("bob@example.com")
    make_user("carol@example.com")
    make_user("tokens-only@example.com", password=None)
    with db.write() as session:
        users.disable_user(session, "carol@example.com")
    messages = []
    for email, password in [
        ("bob@example.com", "not the password"),
        ("nobody@example.com", PASSWORD),
        ("carol@example.com", PASSWORD),
        ("tokens-only@example.com", ""),
    ]:
        with pytest.raises(Unauthenticated) as caught:
            attempt(db, cfg, email, password, ip=None)
        messages.append(caught.value.message)
    assert set(messages) == {"invalid email or password"}
    # The failures survived the exception that rolled back each caller's write() block.
    with db.read() as session:
        failures = session.scalars(select(LoginFailure.email).order_by(LoginFailure.id)).all()
        entries = trail.list_entries(session, limit=4, action="login.failure")
    assert failures == [
        "bob@example.com",
        "nobody@example.com",
        "carol@example.com",
        "tokens-only@example.com",
    ]
    assert [(e.actor, e.detail) for e in reversed(entries)] == [
        ("anonymous", {"email": "bob@example.com", "reason": "wrong password"}),
        ("anonymous", {"email": "nobody@example.com", "reason": "unknown email"}),
        ("anonymous", {"email": "carol@example.com", "reason": "user disabled"}),
        ("anonymous", {"email": "tokens-only@example.com", "reason": "no password set"}),
    ]


def test_logins_for_an_email_are_refused_after_too_many_failures_until_the_window_passes(
    db: Database, cfg: Settings, make_user: MakeUser
) -> None:
    make_user("dave@example.com")
    for n in range(cfg.login_max_failures):
        with pytest.raises(Unauthenticated):
            attempt(
                db, cfg, "dave@example.com", "wrong guess", ip=f"192.0.2.{n}", now=NOW + timedelta(seconds=n)
            )
    # Even the right password, from a fresh address, is refused now; so is an unknown email at the same count.
    with pytest.raises(TooManyRequests) as caught:
        attempt(db, cfg, "dave@example.com", PASSWORD, ip="192.0.2.99", now=NOW + timedelta(seconds=10))
    assert caught.value.retry_after == 600 - 10
    for n in range(cfg.login_max_failures):
        with pytest.raises(Unauthenticated):
            attempt(
                db, cfg, "ghost@example.com", "guess", ip=f"192.0.2.{n + 10}", now=NOW + timedelta(seconds=n)
            )
    with pytest.raises(TooManyRequests) as ghost:
        attempt(db, cfg, "ghost@example.com", PASSWORD, ip="192.0.2.99", now=NOW + timedelta(seconds=10))
    assert ghost.value.message == caught.value.message
    # Once the first failure leaves the window, one more attempt is allowed, and it succeeds.
    raw = attempt(db, cfg, "dave@example.com", PASSWORD, ip="192.0.2.99", now=NOW + timedelta(seconds=600))
    with db.read() as session:
        assert (
            sessions.resolve_session(session, raw, now=NOW + timedelta(seconds=600)).email
            == "dave@example.com"
        )
        # Failures that left the window were swept by that attempt; the others still count.
        remaining = session.scalars(select(LoginFailure.at).order_by(LoginFailure.at)).all()
        assert remaining[0] > NOW
        reasons = [
            e.detail["reason"]
            for e in trail.list_entries(session, limit=100, action="login.failure")
            if e.detail
        ]
    assert reasons.count("throttled") == 2


def test_logins_from_one_address_are_refused_after_too_many_failures_across_emails(
    db: Database, cfg: Settings, make_user: MakeUser
) -> None:
    make_user("erin@example.com")
    for n in range(cfg.login_max_failures):
        with pytest.raises(Unauthenticated):
            attempt(db, cfg, f"guess{n}@example.com", "wrong guess", ip="203.0.113.5")
    with pytest.raises(TooManyRequests):
        attempt(db, cfg, "erin@example.com", PASSWORD, ip="203.0.113.5")
    assert attempt(db, cfg, "erin@example.com", PASSWORD, ip="203.0.113.6")


def test_parallel_wrong_passwords_cannot_exceed_the_throttle(
    database_url: str, cfg: Settings, make_user: MakeUser
) -> None:
    make_user("frank@example.com")
    outcomes: list[str] = []
    start = threading.Barrier(8)

    def guess(n: int) -> None:
        db = Database(database_url)
        try:
            start.wait()
            attempt(db, cfg, "frank@example.com", f"wrong guess {n}", ip=f"192.0.2.{n}")
        except CallvaultError as exc:
            outcomes.append(type(exc).__name__)
        finally:
            db.dispose()

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["TooManyRequests"] * 5 + ["Unauthenticated"] * cfg.login_max_failures


def test_sessions_end_at_their_expiry_on_logout_and_when_the_user_is_disabled(
    db: Database, cfg: Settings, make_user: MakeUser
) -> None:
    make_user("gina@example.com")
    expiring, leaving, disabled = (attempt(db, cfg, "gina@example.com", PASSWORD) for _ in range(3))
    with db.write() as session:
        token, raw_token = tokens.create_token(
            session, email="gina@example.com", name="crm", expires_days=None, actor="cli"
        )
    with db.read() as session:
        sessions.resolve_session(session, expiring, now=NOW + timedelta(minutes=59))
        with pytest.raises(Unauthenticated):
            sessions.resolve_session(session, expiring, now=NOW + timedelta(hours=1))
    with db.write() as session:
        sessions.logout(session, leaving)
        sessions.logout(session, leaving)  # already gone: no error, no second entry
    with db.write() as session:
        with pytest.raises(Unauthenticated):
            sessions.resolve_session(session, leaving, now=NOW)
        sessions.resolve_session(session, disabled, now=NOW)
        tokens.resolve_token(session, raw_token, now=NOW)
    with db.write() as session:
        users.disable_user(session, "gina@example.com")
    with db.write() as session:
        with pytest.raises(Unauthenticated):
            sessions.resolve_session(session, disabled, now=NOW)
        with pytest.raises(Unauthenticated):
            tokens.resolve_token(session, raw_token, now=NOW)
        logouts = session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "logout")
        )
    assert logouts == 1


def test_csrf_token_is_bound_to_the_session_and_the_key() -> None:
    token = sessions.csrf_token(KEY, "session-a")
    assert len(token) == 64
    sessions.check_csrf(KEY, "session-a", token)
    for submitted in [None, "", token.upper(), sessions.csrf_token(KEY, "session-b"), "é" * 64, token + "0"]:
        with pytest.raises(Forbidden):
            sessions.check_csrf(KEY, "session-a", submitted)
    with pytest.raises(Forbidden):
        sessions.check_csrf(b"another key", "session-a", token)
