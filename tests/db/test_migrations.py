from sqlalchemy import inspect

from callvault.db.database import Database
from callvault.db.migrate import upgrade


def test_upgrade_creates_every_table_and_is_idempotent(db: Database) -> None:
    upgrade(db)  # second run: nothing to do, no error
    tables = set(inspect(db.engine).get_table_names())
    assert {"recordings", "users", "api_tokens", "web_sessions", "audit_entries", "audit_head"} <= tables
