"""``callvault audit …``: verify, export and list the audit trail."""

from __future__ import annotations

import sys

import typer

from callvault.cli.base import (
    audit_app,
    handle_errors,
    open_database,
    out,
    reading,
    settings,
)


@audit_app.command("verify")
@handle_errors
def audit_verify() -> None:
    """Recompute the hash chain. Exit 0 when intact; otherwise exit 3 naming the first bad entry."""
    from callvault.audit.trail import verify
    from callvault.errors import AuditChainBroken

    with reading() as session:
        result = verify(session)
    if not result.ok:
        where = f" at entry {result.first_bad_id}" if result.first_bad_id is not None else ""
        raise AuditChainBroken(
            f"audit trail broken{where}: {result.reason} ({result.checked} entries intact before it)",
            entry_id=result.first_bad_id or 0,
        )
    out.print(f"audit trail intact: {result.checked} entries")


@audit_app.command("export")
@handle_errors
def audit_export(
    since: str | None = typer.Option(None, "--since", help="Only entries from this UTC day on (YYYY-MM-DD)."),
    fmt: str = typer.Option("jsonl", "--format", help="jsonl (canonical, re-verifiable) | csv"),
) -> None:
    """Write the audit trail to stdout, hashes included, oldest first."""
    import os
    from datetime import UTC, datetime

    from callvault.audit.trail import export
    from callvault.errors import InvalidInput

    if fmt not in ("jsonl", "csv"):
        raise InvalidInput("--format must be jsonl or csv")
    start = None
    if since is not None:
        try:
            start = datetime.strptime(since, "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError:
            raise InvalidInput("--since must be a date, YYYY-MM-DD") from None
    db = open_database(settings())
    try:
        with db.read() as session:
            for chunk in export(session, since=start, fmt="csv" if fmt == "csv" else "jsonl"):
                sys.stdout.write(chunk)
            sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly; point stdout at devnull so the exit flush is silent.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(1) from None
    finally:
        db.dispose()


@audit_app.command("list")
@handle_errors
def audit_list(
    limit: int = typer.Option(50, min=1, max=1000, help="At most this many, newest first."),
    action: str | None = typer.Option(None, help="Only this action, e.g. login.failure."),
    recording: str | None = typer.Option(None, help="Only entries about this RecordingSid (RE…)."),
) -> None:
    """Show the newest audit entries."""
    from rich.table import Table

    from callvault.audit.chain import canonical_json
    from callvault.audit.trail import list_entries

    with reading() as session:
        entries = list_entries(session, limit=limit, action=action, recording_sid=recording)
    table = Table("id", "at", "actor", "action", "recording", "client", "detail")
    for entry in entries:
        detail = canonical_json(entry.detail) if entry.detail is not None else ""
        at = entry.at.isoformat(timespec="seconds")
        where = (entry.recording_sid or "", entry.client_ip or "")
        table.add_row(str(entry.id), at, entry.actor, entry.action, *where, detail)
    out.print(table, markup=False)


# ------------------------------------------------------------------------------------------ presign
