"""``callvault db upgrade``, ``serve``, ``worker`` and ``reconcile``: running callvault."""

from __future__ import annotations

import typer

from callvault.cli.base import (
    app,
    db_app,
    err,
    handle_errors,
    open_database,
    out,
    settings,
)
from callvault.settings import load_settings


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
    no_worker: bool = typer.Option(
        False, "--no-worker", help="Serve the web only; run `callvault worker` apart."
    ),
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
    concurrency: int | None = typer.Option(
        None, min=1, max=64, help="Worker threads (default CALLVAULT_WORKER_CONCURRENCY)."
    ),
) -> None:
    """Work the transfer queue until SIGTERM/SIGINT: each recording is fetched, stored, verified, then
    deleted at Twilio. On SIGTERM the current recordings are finished or released for another worker."""
    from callvault.pipeline.runner import run_worker

    run_worker(settings(), concurrency=concurrency)


@app.command("reconcile")
@handle_errors
def reconcile_command(
    since: str | None = typer.Option(None, help="First day (YYYY-MM-DD, UTC); default: LOOKBACK days ago."),
    until: str | None = typer.Option(None, help="Last day (YYYY-MM-DD, UTC); default: today."),
) -> None:
    """Queue completed recordings Twilio lists but no callback announced (lost callbacks, SIP trunks)."""
    from datetime import UTC, date, datetime, timedelta

    from callvault.errors import InvalidInput
    from callvault.pipeline.reconcile import reconcile
    from callvault.runtime import build_context

    def day(value: str, option: str) -> date:
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise InvalidInput(f"{option} must be a date like 2026-11-28") from None

    cfg = settings()
    first = (
        day(since, "--since")
        if since
        else (datetime.now(UTC) - timedelta(days=cfg.reconcile_lookback_days)).date()
    )
    last = day(until, "--until") if until else None
    ctx = build_context(cfg)
    try:
        report = reconcile(ctx, account_sid=next(iter(ctx.auth_tokens)), since=first, until=last)
    finally:
        ctx.close()
    out.print(
        f"{report.seen} listed at Twilio, {report.queued} queued, "
        f"{report.skipped_not_completed} not completed"
    )
