"""The engine wrapper: one :class:`Database` per process, built from settings in the entry point."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from callvault.errors import Unavailable


class Database:
    """Sessions for reading and for writing.

    ``write()`` on SQLite opens the transaction with ``BEGIN IMMEDIATE``: the write lock is taken up front,
    so two writers never deadlock upgrading a shared lock, and a claim is atomic. PostgreSQL claims use
    ``FOR UPDATE SKIP LOCKED`` instead (see ``callvault.db.recordings``).
    """

    def __init__(self, url: str, *, pool_size: int = 10, sqlite_busy_timeout: float = 10.0) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        # A pre-ping costs a round trip per checkout (0.7 ms of a 2.6 ms webhook insert on PostgreSQL,
        # bench/webhook.py); a local SQLite file has no connection to lose, so it is skipped there.
        kwargs: dict[str, Any] = {"pool_pre_ping": not self.is_sqlite}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": sqlite_busy_timeout, "check_same_thread": False}
        else:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_timeout=10)
            kwargs["connect_args"] = {"connect_timeout": 5}
        self.engine: Engine = create_engine(url, **kwargs)
        if self.is_sqlite:
            _sqlite_transaction_control(self.engine, busy_timeout_ms=round(sqlite_busy_timeout * 1000))
        self._reader = sessionmaker(self.engine, expire_on_commit=False)
        writer_engine = (
            self.engine.execution_options(sqlite_begin="IMMEDIATE") if self.is_sqlite else self.engine
        )
        self._writer = sessionmaker(writer_engine, expire_on_commit=False)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reads; rolled back at the end."""
        with _unavailable_on_connect_error(), self._reader() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A session whose transaction commits when the block ends without an exception."""
        with _unavailable_on_connect_error(), self._writer() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


@contextmanager
def _unavailable_on_connect_error() -> Iterator[None]:
    try:
        yield
    except OperationalError as exc:
        # Connection refused, database locked past the timeout, server gone: a condition to retry,
        # not a bug. The original is chained for logs; the message shown carries no URL or password.
        raise Unavailable("the database is unavailable") from exc


def _sqlite_transaction_control(engine: Engine, *, busy_timeout_ms: int) -> None:
    # SQLAlchemy's documented recipe: take transaction control away from pysqlite, so BEGIN is ours.
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # How long a writer waits for the lock before OperationalError, which becomes Unavailable (503).
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms:d}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")
