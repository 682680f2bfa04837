"""The ``callvault`` command. Every command builds the settings once and passes them down; errors from
callvault's error tree end the command with one line on stderr and the error's exit code, never a traceback."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

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
    return Database(cfg.database_url)


# --------------------------------------------------------------------------------------------- db
@db_app.command("upgrade")
@handle_errors
def db_upgrade() -> None:
    """Create or migrate the database schema to the newest version (idempotent)."""
    from callvault.db.migrate import upgrade

    cfg = settings()
    db = open_database(cfg)
    try:
        upgrade(db)
    finally:
        db.dispose()
    err.print("database is up to date")


# ------------------------------------------------------------------------------------ serve, worker
@app.command("serve")
@handle_errors
def serve(
    host: str | None = typer.Option(None, help="Listen address (default CALLVAULT_HOST)."),
    port: int | None = typer.Option(None, help="Listen port (default CALLVAULT_PORT)."),
    no_worker: bool = typer.Option(False, "--no-worker", help="Serve the web only; run `callvault worker` apart."),
) -> None:
    """Run the web service (webhooks, API, UI) with embedded worker threads.

    Without Twilio credentials this starts a clearly labelled demo: a built-in Twilio simulator places a few
    simulated calls, so you can watch recordings arrive, verify, and leave "Twilio".
    """
    from callvault.web.server import run_server

    overrides: dict[str, object] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    run_server(load_settings(**overrides), with_worker=not no_worker)


@app.command("worker")
@handle_errors
def worker(
    concurrency: int | None = typer.Option(None, min=1, max=64, help="Worker threads (default CALLVAULT_WORKER_CONCURRENCY)."),
) -> None:
    """Work the transfer queue until SIGTERM/SIGINT: each recording is fetched, stored, verified, then
    deleted at Twilio. On SIGTERM the current recordings are finished or released for another worker."""
    from callvault.pipeline.runner import run_worker

    run_worker(settings(), concurrency=concurrency)


# -------------------------------------------------------------------------------------- recordings
@recordings_app.command("list")
@handle_errors
def recordings_list(
    status: str | None = typer.Option(None, help="pending | stored | failed | deleted"),
    limit: int = typer.Option(100, min=1, max=10000, help="At most this many, newest first."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """List recordings, newest first."""
    import json

    from rich.table import Table

    from callvault.db.models import RecordingStatus
    from callvault.db.recordings import list_recordings, recording_view
    from callvault.errors import InvalidInput

    if status is not None and status not in set(RecordingStatus):
        raise InvalidInput("--status must be one of pending, stored, failed, deleted")
    db = open_database(settings())
    try:
        with db.read() as session:
            rows, _ = list_recordings(session, limit=limit, status=status)
            views = [recording_view(row) for row in rows]
    finally:
        db.dispose()
    if as_json:
        for view in views:
            out.print(json.dumps(view), markup=False)
        return
    table = Table("sid", "status", "account", "duration", "size", "created", "last error")
    for view in views:
        table.add_row(
            view["sid"],
            view["status"],
            view["account_sid"],
            f"{view['duration_seconds']}s" if view["duration_seconds"] is not None else "",
            str(view["size_bytes"] or ""),
            (view["created_at"] or "")[:19],
            (view["last_error"] or "")[:60],
        )
    out.print(table)


@recordings_app.command("show")
@handle_errors
def recordings_show(
    sid: str = typer.Argument(..., help="RecordingSid (RE…)"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Show one recording."""
    import json

    from callvault import sids
    from callvault.db.recordings import get_recording, recording_view

    sids.recording_sid(sid)
    db = open_database(settings())
    try:
        with db.read() as session:
            view = recording_view(get_recording(session, sid))
    finally:
        db.dispose()
    if as_json:
        out.print(json.dumps(view), markup=False)
        return
    for name, value in view.items():
        out.print(f"{name:>18}  {'' if value is None else value}", markup=False)


@recordings_app.command("retry")
@handle_errors
def recordings_retry(sid: str = typer.Argument(..., help="RecordingSid (RE…)")) -> None:
    """Queue a failed (or waiting) recording for an immediate new attempt, with a fresh attempt budget."""
    from callvault import sids
    from callvault.pipeline.admin import retry_recording

    sids.recording_sid(sid)
    db = open_database(settings())
    try:
        retry_recording(db, sid)
    finally:
        db.dispose()
    err.print(f"{sid} queued for a new attempt")


def main() -> None:
    try:
        app()
    except CallvaultError as exc:  # raised outside a command body (e.g. option callbacks)
        err.print(f"error: {exc.message}", markup=False)
        sys.exit(exc.exit_code)
