"""The ``callvault`` command. Every command builds the settings once and passes them down; errors from
callvault's error tree end the command with one line on stderr and the error's exit code, never a
traceback."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

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
    return Database(cfg.database_url, sqlite_busy_timeout=cfg.sqlite_busy_timeout_seconds)


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


# ------------------------------------------------------------------------------- operations checks
@app.command("bucket-policy")
@handle_errors
def bucket_policy_command(
    apply: bool = typer.Option(
        False, "--apply", help="Apply it, with Block Public Access and default encryption."
    ),
    exempt_arn: list[str] = typer.Option(  # noqa: B008 - typer's way to declare options
        [], "--exempt-arn", help="Principal allowed direct reads (the workers' role; repeatable)."
    ),
    no_tls: bool = typer.Option(
        False, "--no-tls", help="Omit the TLS-only statement (plain-http S3 servers)."
    ),
) -> None:
    """Print (or --apply) a bucket policy: object reads only through presigned URLs, TLS only.

    S3 authorizes HEAD as s3:GetObject, so the principal that verifies uploads must be exempt: by default
    the principal of callvault's own S3 credentials (STS GetCallerIdentity). Give the web processes a
    different, non-exempt role in production (docs/deployment.md).
    """
    import json

    from callvault.audit.trail import append
    from callvault.doctor import apply_policy, bucket_of, caller_arn, policy_for

    cfg = settings()
    bucket_of(cfg)  # the local store has no bucket: say so before asking STS anything
    arns = exempt_arn or [caller_arn(cfg)]
    policy = policy_for(cfg, exempt_arns=arns, require_tls=not no_tls)
    out.print(json.dumps(policy, indent=2), markup=False)
    if apply:
        apply_policy(cfg, policy)
        db = open_database(cfg)
        try:
            with db.write() as session:
                append(
                    session, actor="cli", action="bucket.harden", detail={"exempt": arns, "tls": not no_tls}
                )
        finally:
            db.dispose()
        err.print("applied: bucket policy, Block Public Access, default encryption")


@app.command("doctor")
@handle_errors
def doctor() -> None:
    """Check configuration, database, storage, Twilio credentials and the bucket's hardening; one line per
    check; exit non-zero when any fails."""
    from callvault.doctor import run_checks

    checks = run_checks(settings())
    for check in checks:
        mark = "[green]pass[/green]" if check.ok else "[red]FAIL[/red]"
        out.print(f"{mark}  {check.name}: ", end="")
        out.print(check.detail, markup=False)
    if not all(check.ok for check in checks):
        raise typer.Exit(1)


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


# ------------------------------------------------------------------------------------- users, tokens
def _prompt_password(password_stdin: bool) -> str:
    from callvault.errors import InvalidInput

    if password_stdin:
        return sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    if not sys.stdin.isatty():
        raise InvalidInput("no terminal to ask for a password on: pipe it with --password-stdin")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


def _split_accounts(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


@users_app.command("add")
@handle_errors
def users_add(
    email: str = typer.Argument(..., help="Login email (stored lower-case)."),
    role: str = typer.Option(..., "--role", help="admin | auditor | listener"),
    accounts: Annotated[
        list[str] | None,
        typer.Option("--accounts", help="AccountSid (AC…) the user may hear; repeatable or comma-separated."),
    ] = None,
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin."),
    no_password: bool = typer.Option(False, "--no-password", help="Only API tokens, no login."),
) -> None:
    """Add a user (the first admin is made this way). Asks twice for the password, hidden, unless
    --password-stdin or --no-password is given; there is never a default password."""
    from callvault import sids
    from callvault.auth.passwords import check_policy
    from callvault.auth.principal import CLI_PRINCIPAL
    from callvault.auth.users import add_user, normalise_email
    from callvault.db.models import Role
    from callvault.errors import Conflict, InvalidInput

    if role not in set(Role):
        raise InvalidInput("--role must be one of admin, auditor, listener")
    email = normalise_email(email)
    scope = _split_accounts(accounts)
    for account in scope or []:
        sids.account_sid(account, field="--accounts")
    db = open_database(settings())
    try:
        # Checked before asking for a password, and outside a write transaction: the prompt may take a while.
        with db.read() as session:
            from callvault.auth.users import list_users

            if any(user.email == email for user in list_users(session)):
                raise Conflict(f"a user {email} already exists")
        password = None
        if not no_password:
            password = _prompt_password(password_stdin)
            check_policy(password)
        with db.write() as session:
            user = add_user(
                session,
                email=email,
                role=Role(role),
                accounts=scope,
                password=password,
                actor=CLI_PRINCIPAL.actor,
            )
            user_id = user.id
    finally:
        db.dispose()
    err.print(f"user {user_id} {email} added as {role}", markup=False)


@users_app.command("list")
@handle_errors
def users_list(as_json: bool = typer.Option(False, "--json", help="One JSON object per line.")) -> None:
    """List users, oldest first."""
    import json

    from rich.table import Table

    from callvault.auth.users import list_users

    db = open_database(settings())
    try:
        with db.read() as session:
            views: list[dict[str, Any]] = [
                {
                    "id": user.id,
                    "email": user.email,
                    "role": user.role,
                    "accounts": user.accounts,
                    "disabled": user.disabled,
                    "password": user.password_hash is not None,
                    "created_at": user.created_at.isoformat(),
                }
                for user in list_users(session)
            ]
    finally:
        db.dispose()
    if as_json:
        for view in views:
            out.print(json.dumps(view), markup=False)
        return
    table = Table("id", "email", "role", "accounts", "state", "password", "created")
    for view in views:
        accounts = view["accounts"]
        table.add_row(
            str(view["id"]),
            str(view["email"]),
            str(view["role"]),
            "all" if accounts is None else ", ".join(accounts) or "none",
            "disabled" if view["disabled"] else "active",
            "yes" if view["password"] else "no",
            str(view["created_at"])[:19],
        )
    out.print(table)


@users_app.command("disable")
@handle_errors
def users_disable(email: str = typer.Argument(..., help="The user's email.")) -> None:
    """Disable a user: their sessions end now, their API tokens fail from the next request on."""
    from callvault.auth.principal import CLI_PRINCIPAL
    from callvault.auth.users import disable_user

    db = open_database(settings())
    try:
        with db.write() as session:
            user = disable_user(session, email, actor=CLI_PRINCIPAL.actor)
            shown = user.email
    finally:
        db.dispose()
    err.print(f"user {shown} is disabled", markup=False)


@users_app.command("enable")
@handle_errors
def users_enable(email: str = typer.Argument(..., help="The user's email.")) -> None:
    """Enable a disabled user again."""
    from callvault.auth.principal import CLI_PRINCIPAL
    from callvault.auth.users import enable_user

    db = open_database(settings())
    try:
        with db.write() as session:
            shown = enable_user(session, email, actor=CLI_PRINCIPAL.actor).email
    finally:
        db.dispose()
    err.print(f"user {shown} is enabled", markup=False)


@users_app.command("set-password")
@handle_errors
def users_set_password(
    email: str = typer.Argument(..., help="The user's email."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin."),
) -> None:
    """Set a user's password (asked twice, hidden, unless --password-stdin). Their sessions end."""
    from callvault.auth.passwords import check_policy
    from callvault.auth.principal import CLI_PRINCIPAL
    from callvault.auth.users import get_user_by_email, set_password

    db = open_database(settings())
    try:
        with db.read() as session:
            shown = get_user_by_email(session, email).email
        password = _prompt_password(password_stdin)
        check_policy(password)
        with db.write() as session:
            set_password(session, email=shown, password=password, actor=CLI_PRINCIPAL.actor)
    finally:
        db.dispose()
    err.print(f"password of {shown} changed", markup=False)


@tokens_app.command("create")
@handle_errors
def tokens_create(
    email: str = typer.Argument(..., help="The user the token acts as."),
    name: str = typer.Option(..., "--name", help="What it is for, e.g. 'crm'."),
    expires_days: int | None = typer.Option(None, "--expires-days", help="Days until it expires."),
) -> None:
    """Create an API token, printed once, alone on the last line of stdout (only its hash is kept)."""
    from callvault.auth.principal import CLI_PRINCIPAL
    from callvault.auth.tokens import create_token

    db = open_database(settings())
    try:
        with db.write() as session:
            token, raw = create_token(
                session, email=email, name=name, expires_days=expires_days, actor=CLI_PRINCIPAL.actor
            )
            token_id, expires = token.id, token.expires_at
    finally:
        db.dispose()
    until = f"expires {expires.isoformat(timespec='seconds')}" if expires else "does not expire"
    out.print(f"API token {token_id} ({name.strip()}) for {email.strip().lower()}, {until}.", markup=False)
    out.print("Send it as 'Authorization: Bearer <token>'. It is shown only now: copy it.", markup=False)
    typer.echo(raw)


@tokens_app.command("list")
@handle_errors
def tokens_list(as_json: bool = typer.Option(False, "--json", help="One JSON object per line.")) -> None:
    """List API tokens (never the tokens themselves), oldest first."""
    import json
    from datetime import UTC, datetime

    from rich.table import Table

    from callvault.auth.tokens import list_tokens
    from callvault.auth.users import list_users

    now = datetime.now(UTC)
    db = open_database(settings())
    try:
        with db.read() as session:
            emails = {user.id: user.email for user in list_users(session)}
            tokens = list_tokens(session)
    finally:
        db.dispose()

    def when(at: datetime | None) -> str | None:
        return at.isoformat(timespec="seconds") if at else None

    views = [
        {
            "id": token.id,
            "email": emails.get(token.user_id),
            "name": token.name,
            "state": "revoked"
            if token.revoked_at
            else "expired"
            if token.expires_at and token.expires_at <= now
            else "active",
            "created_at": when(token.created_at),
            "expires_at": when(token.expires_at),
            "revoked_at": when(token.revoked_at),
            "last_used_at": when(token.last_used_at),
        }
        for token in tokens
    ]
    if as_json:
        for view in views:
            out.print(json.dumps(view), markup=False)
        return
    table = Table("id", "user", "name", "state", "created", "expires", "last used")
    for view in views:
        cells = (view["id"], view["email"], view["name"], view["state"])
        times = (view["created_at"], view["expires_at"], view["last_used_at"])
        table.add_row(*(str(cell) for cell in cells), *(str(at or "")[:19] for at in times))
    out.print(table)


@tokens_app.command("revoke")
@handle_errors
def tokens_revoke(token_id: int = typer.Argument(..., help="The token's id (see `tokens list`).")) -> None:
    """Revoke an API token; it fails from the next request on."""
    from callvault.auth.principal import CLI_PRINCIPAL
    from callvault.auth.tokens import revoke_token

    db = open_database(settings())
    try:
        with db.write() as session:
            revoke_token(session, token_id=token_id, actor=CLI_PRINCIPAL.actor)
    finally:
        db.dispose()
    err.print(f"token {token_id} is revoked")


# -------------------------------------------------------------------------------------------- audit
@audit_app.command("verify")
@handle_errors
def audit_verify() -> None:
    """Recompute the hash chain. Exit 0 when intact; otherwise exit 3 naming the first bad entry."""
    from callvault.audit.trail import verify
    from callvault.errors import AuditChainBroken

    db = open_database(settings())
    try:
        with db.read() as session:
            result = verify(session)
    finally:
        db.dispose()
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

    db = open_database(settings())
    try:
        with db.read() as session:
            entries = list_entries(session, limit=limit, action=action, recording_sid=recording)
    finally:
        db.dispose()
    table = Table("id", "at", "actor", "action", "recording", "client", "detail")
    for entry in entries:
        detail = canonical_json(entry.detail) if entry.detail is not None else ""
        at = entry.at.isoformat(timespec="seconds")
        where = (entry.recording_sid or "", entry.client_ip or "")
        table.add_row(str(entry.id), at, entry.actor, entry.action, *where, detail)
    out.print(table, markup=False)


# ------------------------------------------------------------------------------------------ presign
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


def main() -> None:
    try:
        app()
    except CallvaultError as exc:  # raised outside a command body (e.g. option callbacks)
        err.print(f"error: {exc.message}", markup=False)
        sys.exit(exc.exit_code)
