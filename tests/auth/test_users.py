"""Users: validated, unique, audited; disabling and password changes end sessions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from callvault.audit import trail
from callvault.auth import sessions, users
from callvault.auth.passwords import verify_password
from callvault.db.database import Database
from callvault.db.models import AuditEntry, Role, User, WebSession
from callvault.errors import Conflict, InvalidInput, InvalidSid, NotFound, Unauthenticated
from callvault.settings import Settings
from tests.auth.conftest import AC1, AC2, PASSWORD, MakeUser


def audit_actions(db: Database) -> list[tuple[str, str, dict[str, object] | None]]:
    with db.read() as session:
        return [
            (e.actor, e.action, e.detail) for e in session.scalars(select(AuditEntry).order_by(AuditEntry.id))
        ]


def log_in(db: Database, cfg: Settings, email: str, *, now: datetime) -> str:
    """The raw session token of a successful login."""
    with db.write() as session:
        _, raw = sessions.login(
            session, email=email, password=PASSWORD, client_ip=None, user_agent=None, settings=cfg, now=now
        )
    return raw


def test_add_user_normalises_the_email_scopes_accounts_and_audits_without_the_password(db: Database) -> None:
    with db.write() as session:
        user = users.add_user(
            session,
            email="  Alice@Example.COM ",
            role=Role.LISTENER,
            accounts=[AC2, AC1, AC2],
            password=PASSWORD,
            actor="root@example.com",
        )
    with db.read() as session:
        stored = users.get_user_by_email(session, "ALICE@example.com")
    assert stored.id == user.id
    assert (stored.email, stored.role, stored.accounts, stored.disabled) == (
        "alice@example.com",
        "listener",
        [AC1, AC2],
        False,
    )
    assert stored.password_hash is not None and verify_password(stored.password_hash, PASSWORD)
    assert audit_actions(db) == [
        (
            "root@example.com",
            "user.add",
            {"email": "alice@example.com", "role": "listener", "accounts": [AC1, AC2], "password": True},
        )
    ]


def test_adding_an_existing_email_in_any_case_is_a_conflict(db: Database, make_user: MakeUser) -> None:
    make_user("bob@example.com")
    with pytest.raises(Conflict), db.write() as session:
        users.add_user(session, email="BOB@example.com", role=Role.ADMIN, accounts=None, password=None)
    with db.read() as session:
        assert [u.email for u in users.list_users(session)] == ["bob@example.com"]


def test_malformed_emails_are_rejected() -> None:
    for email in ["", "bob", "bob@", "@example.com", "bob@@example.com", "bo b@example.com", "a@-x.com"]:
        with pytest.raises(InvalidInput):
            users.normalise_email(email)
    assert users.normalise_email(" Bob.O'Neil+x@Mail.Example.com ") == "bob.o'neil+x@mail.example.com"


def test_add_user_rejects_malformed_account_sids_and_short_passwords(db: Database) -> None:
    with pytest.raises(InvalidSid), db.write() as session:
        users.add_user(session, email="a@example.com", role=Role.LISTENER, accounts=["AC123"], password=None)
    with pytest.raises(InvalidInput), db.write() as session:
        users.add_user(session, email="a@example.com", role=Role.LISTENER, accounts=None, password="short")
    with db.read() as session:
        assert users.list_users(session) == []
        assert session.scalar(select(AuditEntry.id)) is None


def test_get_user_by_email_raises_not_found_for_an_unknown_email(db: Database) -> None:
    with pytest.raises(NotFound), db.read() as session:
        users.get_user_by_email(session, "nobody@example.com")


def test_disable_user_ends_sessions_is_audited_once_and_can_be_undone(
    db: Database, make_user: MakeUser, cfg: Settings
) -> None:
    make_user("carol@example.com")
    now = datetime.now(UTC)
    raw = log_in(db, cfg, "carol@example.com", now=now)
    with db.write() as session:
        assert users.disable_user(session, "carol@example.com", actor="root@example.com").disabled is True
    with db.write() as session:
        users.disable_user(session, "carol@example.com", actor="root@example.com")  # no second entry
    with db.read() as session:
        assert session.scalar(select(WebSession.token_hash)) is None
        with pytest.raises(Unauthenticated):
            sessions.resolve_session(session, raw, now=now)
    with db.write() as session:
        assert users.enable_user(session, "carol@example.com").disabled is False
    assert [(actor, action) for actor, action, _ in audit_actions(db)] == [
        ("cli", "user.add"),
        ("carol@example.com", "login.success"),
        ("root@example.com", "user.disable"),
        ("cli", "user.enable"),
    ]
    assert audit_actions(db)[2][2] == {"email": "carol@example.com", "sessions": 1}


def test_set_password_replaces_the_old_one_and_ends_sessions(
    db: Database, make_user: MakeUser, cfg: Settings
) -> None:
    make_user("dave@example.com")
    now = datetime.now(UTC)
    raw = log_in(db, cfg, "dave@example.com", now=now)
    with db.write() as session:
        users.set_password(session, email="dave@example.com", password="a brand new passphrase", actor="ops")
    with db.read() as session:
        user = session.scalar(select(User).where(User.email == "dave@example.com"))
        assert user is not None and user.password_hash is not None
        assert verify_password(user.password_hash, "a brand new passphrase")
        assert not verify_password(user.password_hash, PASSWORD)
        with pytest.raises(Unauthenticated):
            sessions.resolve_session(session, raw, now=now)
        entries = trail.list_entries(session, limit=1)
    assert (entries[0].actor, entries[0].action, entries[0].detail) == (
        "ops",
        "user.password",
        {"email": "dave@example.com", "sessions": 1},
    )


def test_principal_for_carries_role_scope_and_channel(db: Database, make_user: MakeUser) -> None:
    user_id = make_user("erin@example.com", role=Role.AUDITOR, accounts=[AC1])
    with db.read() as session:
        user = session.get(User, user_id)
        assert user is not None
        principal = users.principal_for(user, via="token:7")
    assert (principal.user_id, principal.email, principal.role, principal.accounts, principal.via) == (
        user_id,
        "erin@example.com",
        Role.AUDITOR,
        frozenset({AC1}),
        "token:7",
    )
    assert principal.can_hear(AC1) and not principal.can_hear(AC2)
    assert principal.actor == "erin@example.com (token:7)"
