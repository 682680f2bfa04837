"""``callvault users …`` and ``callvault tokens …``."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from callvault.cli.base import (
    err,
    handle_errors,
    open_database,
    out,
    reading,
    settings,
    tokens_app,
    users_app,
    writing,
)


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

    with reading() as session:
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

    with writing() as session:
        user = disable_user(session, email, actor=CLI_PRINCIPAL.actor)
        shown = user.email
    err.print(f"user {shown} is disabled", markup=False)


@users_app.command("enable")
@handle_errors
def users_enable(email: str = typer.Argument(..., help="The user's email.")) -> None:
    """Enable a disabled user again."""
    from callvault.auth.principal import CLI_PRINCIPAL
    from callvault.auth.users import enable_user

    with writing() as session:
        shown = enable_user(session, email, actor=CLI_PRINCIPAL.actor).email
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

    with writing() as session:
        token, raw = create_token(
            session, email=email, name=name, expires_days=expires_days, actor=CLI_PRINCIPAL.actor
        )
        token_id, expires = token.id, token.expires_at
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
    with reading() as session:
        emails = {user.id: user.email for user in list_users(session)}
        tokens = list_tokens(session)

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

    with writing() as session:
        revoke_token(session, token_id=token_id, actor=CLI_PRINCIPAL.actor)
    err.print(f"token {token_id} is revoked")


# -------------------------------------------------------------------------------------------- audit
