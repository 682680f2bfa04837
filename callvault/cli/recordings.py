"""``callvault recordings …`` and ``callvault presign``."""

from __future__ import annotations

import typer

from callvault.cli.base import (
    app,
    err,
    handle_errors,
    open_database,
    out,
    reading,
    recordings_app,
    settings,
)


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
    with reading() as session:
        rows, _ = list_recordings(session, limit=limit, status=status)
        views = [recording_view(row) for row in rows]
    if as_json:
        for view in views:
            out.print(json.dumps(view), markup=False)
        return
    table = Table()
    table.add_column("sid", no_wrap=True)
    for column in ("status", "duration", "size", "created", "last error"):
        table.add_column(column)
    for view in views:
        table.add_row(
            view["sid"],
            view["status"],
            f"{view['duration_seconds']}s" if view["duration_seconds"] is not None else "",
            str(view["size_bytes"] or ""),
            (view["created_at"] or "")[:19].replace("T", " "),
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
    with reading() as session:
        view = recording_view(get_recording(session, sid))
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


# ------------------------------------------------------------------------------------- users, tokens


@app.command("presign")
@handle_errors
def presign(
    sid: str = typer.Argument(..., help="The RecordingSid (RE…)."),
    ttl: int | None = typer.Option(
        None,
        "--ttl",
        min=1,
        max=3600,
        help="Seconds the URL stays valid (default CALLVAULT_PLAYBACK_TTL_SECONDS).",
    ),
) -> None:
    """Print a short-lived playback URL for one stored recording (audited, actor "cli").

    File-store and proxy URLs are built on CALLVAULT_PUBLIC_URL, where `callvault serve` must be running to
    answer them.
    """
    from callvault.auth.principal import CLI_PRINCIPAL
    from callvault.playback.service import StandaloneContext, issue_link
    from callvault.storage.factory import open_store

    cfg = settings()
    db = open_database(cfg)
    try:
        ctx = StandaloneContext(settings=cfg, db=db, store=open_store(cfg), secret_key=cfg.load_secret_key())
        link = issue_link(
            ctx,
            CLI_PRINCIPAL,
            sid,
            client_ip=None,
            user_agent=None,
            via="cli",
            ttl_seconds=ttl,
        )
    finally:
        db.dispose()
    out.print(link.url, markup=False)
    err.print(f"valid until {link.expires_at.isoformat()} ({link.mode})")
