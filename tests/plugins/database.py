"""Database fixtures: every test that asks for ``db`` runs on SQLite, and on PostgreSQL when
CALLVAULT_TEST_DATABASE_URL is set (skipped with a visible reason otherwise)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from callvault.db.database import Database
from callvault.db.migrate import upgrade

PG_ENV = "CALLVAULT_TEST_DATABASE_URL"


def postgres_base_url() -> str | None:
    url = os.environ.get(PG_ENV)
    return url or None


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str | None]:
    """A migrated PostgreSQL database made once per session; each test copies it (CREATE DATABASE …
    TEMPLATE), which is much faster than migrating a new database every time."""
    base = postgres_base_url()
    if base is None:
        yield None
        return
    name = f"cv_tmpl_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    db = Database(_database_url(base, name))
    upgrade(db)
    db.dispose()  # a template must have no open connections when it is copied
    try:
        yield name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty, migrated database URL: SQLite in tmp_path, or a new database on the PostgreSQL
    server named by CALLVAULT_TEST_DATABASE_URL (a copy of the session's migrated template, dropped after)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'callvault.db'}"
        db = Database(url)
        upgrade(db)
        db.dispose()
        yield url
        return
    base = postgres_base_url()
    if base is None:
        pytest.skip(f"PostgreSQL half skipped: set {PG_ENV}=postgresql+psycopg://… to run it")
    template = request.getfixturevalue("postgres_template")
    yield from _fresh_postgres(base, template)


def _database_url(base: str, name: str) -> str:
    return base.rsplit("/", 1)[0] + "/" + name


def _fresh_postgres(base: str, template: str) -> Iterator[str]:
    name = f"cv_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    try:
        yield _database_url(base, name)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()
