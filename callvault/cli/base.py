"""Shared pieces of the ``callvault`` command: the Typer apps, the consoles, the one error wrapper, and the
settings and database every command builds once."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import typer
from rich.console import Console
from sqlalchemy.orm import Session

from callvault.db.database import Database
from callvault.errors import CallvaultError
from callvault.settings import Settings, load_settings

F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(
    name="callvault",
    help="A self-hosted vault for Twilio call recordings.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
recordings_app = typer.Typer(help="Inspect and retry recordings.", no_args_is_help=True)
users_app = typer.Typer(help="People who may log in.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens for integrations (CRMs).", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(recordings_app, name="recordings")
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")
app.add_typer(audit_app, name="audit")

err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)


def handle_errors(func: F) -> F:
    """Turn callvault errors into one clear line and an exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except CallvaultError as exc:
            err.print(f"error: {exc.message}", markup=False)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def settings() -> Settings:
    return load_settings()


def open_database(cfg: Settings) -> Database:
    return Database(cfg.database_url, sqlite_busy_timeout=cfg.sqlite_busy_timeout_seconds)


@contextmanager
def writing(cfg: Settings | None = None) -> Iterator[Session]:
    """One write transaction on the configured database, for one command."""
    db = open_database(cfg or settings())
    try:
        with db.write() as session:
            yield session
    finally:
        db.dispose()


@contextmanager
def reading(cfg: Settings | None = None) -> Iterator[Session]:
    """One read-only session on the configured database, for one command."""
    db = open_database(cfg or settings())
    try:
        with db.read() as session:
            yield session
    finally:
        db.dispose()
