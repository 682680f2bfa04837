"""API tokens: shown once, stored hashed, checked on every request (revocation, expiry, disabled users)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from callvault.audit import trail
from callvault.auth import tokens, users
from callvault.db.database import Database
from callvault.db.models import ApiToken, Role
from callvault.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from tests.auth.conftest import AC1, MakeUser

NOW = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


def test_a_created_token_is_stored_only_as_its_sha256_and_resolves_to_its_user(
    db: Database, make_user: MakeUser
) -> None:
    user_id = make_user("crm@example.com", role=Role.LISTENER, accounts=[AC1])
    with db.write() as session:
        token, raw = tokens.create_token(
            session,
            email="CRM@example.com",
            name=" crm ",
            expires_days=None,
            actor="root@example.com",
            now=NOW,
        )
        token_id = token.id
    assert raw.startswith("cvt_") and len(raw) == 4 + 43
    with db.write() as session:
        principal = tokens.resolve_token(session, raw, now=NOW)
    assert (principal.user_id, principal.email, principal.via, principal.accounts) == (
        user_id,
        "crm@example.com",
        f"token:{token_id}",
        frozenset({AC1}),
    )
    with db.read() as session:
        stored = tokens.list_tokens(session, user_id=user_id)
        assert tokens.list_tokens(session, user_id=user_id + 1) == []
        entry = trail.list_entries(session, limit=1)[0]
    assert [(t.id, t.name, t.token_hash) for t in stored] == [
        (token_id, "crm", hashlib.sha256(raw.encode()).hexdigest())
    ]
    assert (entry.actor, entry.action, entry.detail) == (
        "root@example.com",
        "token.create",
        {"email": "crm@example.com", "token_id": token_id, "name": "crm", "expires_at": None},
    )


def test_a_revoked_token_fails_on_the_next_request(db: Database, make_user: MakeUser) -> None:
    make_user("crm@example.com")
    with db.write() as session:
        token, raw = tokens.create_token(
            session, email="crm@example.com", name="crm", expires_days=None, actor="cli"
        )
    with db.write() as session:
        tokens.resolve_token(session, raw, now=NOW)
        tokens.revoke_token(session, token_id=token.id, actor="root@example.com")
    with db.write() as session:
        with pytest.raises(Unauthenticated):
            tokens.resolve_token(session, raw, now=NOW)
        tokens.revoke_token(
            session, token_id=token.id, actor="root@example.com"
        )  # idempotent, not re-audited
        with pytest.raises(NotFound):
            tokens.revoke_token(session, token_id=token.id + 1, actor="cli")
    with db.read() as session:
        actions = [e.action for e in trail.list_entries(session, limit=10)]
    assert actions == ["token.revoke", "token.create", "user.add"]


def test_unknown_and_malformed_tokens_are_unauthenticated(db: Database) -> None:
    with db.write() as session:
        for raw in ["", "cvt_", "cvt_" + "A" * 43, "Bearer cvt_x", "cvt_" + "A" * 5000, "cvt_\udcff"]:
            with pytest.raises(Unauthenticated):
                tokens.resolve_token(session, raw, now=NOW)


def test_a_token_stops_working_at_its_expiry_time(db: Database, make_user: MakeUser) -> None:
    make_user("crm@example.com")
    with db.write() as session:
        token, raw = tokens.create_token(
            session, email="crm@example.com", name="crm", expires_days=30, actor="cli", now=NOW
        )
    assert token.expires_at == NOW + timedelta(days=30)
    with db.write() as session:
        tokens.resolve_token(session, raw, now=NOW + timedelta(days=30) - timedelta(seconds=1))
        with pytest.raises(Unauthenticated):
            tokens.resolve_token(session, raw, now=NOW + timedelta(days=30))


def test_last_used_at_is_written_at_most_once_a_minute(db: Database, make_user: MakeUser) -> None:
    make_user("crm@example.com")
    with db.write() as session:
        token, raw = tokens.create_token(
            session, email="crm@example.com", name="crm", expires_days=None, actor="cli"
        )
    seen = []
    for offset in (0, 30, 59, 60, 61):
        with db.write() as session:
            tokens.resolve_token(session, raw, now=NOW + timedelta(seconds=offset))
        with db.read() as session:
            seen.append(session.scalar(select(ApiToken.last_used_at).where(ApiToken.id == token.id)))
    assert seen == [NOW, NOW, NOW, NOW + timedelta(seconds=60), NOW + timedelta(seconds=60)]


def test_tokens_need_an_enabled_user_a_name_and_a_sane_expiry(db: Database, make_user: MakeUser) -> None:
    make_user("crm@example.com")
    with db.write() as session:
        for name, days in [("", None), ("x" * 101, None), ("crm", 0), ("crm", 100_000)]:
            with pytest.raises(InvalidInput):
                tokens.create_token(
                    session, email="crm@example.com", name=name, expires_days=days, actor="cli"
                )
        with pytest.raises(NotFound):
            tokens.create_token(session, email="who@example.com", name="crm", expires_days=None, actor="cli")
        users.disable_user(session, "crm@example.com")
        with pytest.raises(Conflict):
            tokens.create_token(session, email="crm@example.com", name="crm", expires_days=None, actor="cli")
    with db.read() as session:
        assert tokens.list_tokens(session) == []
