"""Alembic, driven from code: ``callvault db upgrade`` and the test suite call :func:`upgrade`."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from callvault.db.database import Database

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(db: Database) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = db.engine
    return config


def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the schema to ``revision``. Idempotent; safe to run from several processes on PostgreSQL
    (Alembic's version table update is transactional)."""
    if db.is_sqlite:
        _ensure_sqlite_dir(db.url)
    command.upgrade(alembic_config(db), revision)


def _ensure_sqlite_dir(url: str) -> None:
    path = url.split(":///", 1)[-1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
