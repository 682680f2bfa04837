"""Raw secrets (passwords, API tokens, session values) reach neither the database nor the logs."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from sqlalchemy import MetaData, select

from callvault.auth import sessions, tokens, users
from callvault.db.database import Database
from callvault.db.models import Role
from callvault.errors import Unauthenticated
from callvault.settings import Settings

PASSWORD = "secret-passphrase-4242"
WRONG = "wrong-passphrase-9999"


def every_stored_text(db: Database) -> str:
    metadata = MetaData()
    metadata.reflect(db.engine)
    with db.engine.connect() as conn:
        return "\n".join(
            repr(value)
            for table in metadata.sorted_tables
            for row in conn.execute(select(table))
            for value in row
        )


def test_passwords_tokens_and_session_values_are_never_stored_or_logged(
    db: Database, cfg: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    # SQL statements and their parameters are logged at INFO by sqlalchemy.engine: capture them too.
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="sqlalchemy.engine")
    now = datetime.now(UTC)
    with db.write() as session:
        users.add_user(session, email="ann@example.com", role=Role.ADMIN, accounts=None, password=PASSWORD)
        _, raw_token = tokens.create_token(
            session, email="ann@example.com", name="crm", expires_days=1, actor="cli"
        )
    with db.write() as session:
        tokens.resolve_token(session, raw_token, now=now)
        _, raw_session = sessions.login(
            session,
            email="ann@example.com",
            password=PASSWORD,
            client_ip="192.0.2.1",
            user_agent="t",
            settings=cfg,
            now=now,
        )
    with pytest.raises(Unauthenticated), db.write() as session:
        sessions.login(
            session,
            email="ann@example.com",
            password=WRONG,
            client_ip="192.0.2.1",
            user_agent="t",
            settings=cfg,
            now=now,
        )
    with db.write() as session:
        users.set_password(session, email="ann@example.com", password=PASSWORD[::-1])

    stored = every_stored_text(db)
    assert "ann@example.com" in stored and "login.failure" in stored  # the scan does see the data
    assert any("sqlalchemy.engine" in r.name for r in caplog.records)  # and the log capture sees SQL
    logged = caplog.text + "\n".join(repr(r.args) for r in caplog.records)
    for secret in (PASSWORD, PASSWORD[::-1], WRONG, raw_token, raw_token.removeprefix("cvt_"), raw_session):
        assert secret not in stored
        assert secret not in logged
