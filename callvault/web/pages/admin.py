"""Admin pages: ``/admin/users`` (list, add, disable, enable) and ``/admin/tokens`` (create — the token is
shown once — and revoke). Every form is CSRF-checked; every change is audited by the auth services."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from callvault.auth import tokens as auth_tokens
from callvault.auth import users as auth_users
from callvault.context import Context
from callvault.db.models import Role
from callvault.errors import Conflict, Forbidden, InvalidInput, NotFound
from callvault.web.deps import ContextDep
from callvault.web.pages.templating import render
from callvault.web.sessions import Caller, CallerDep, check_form_csrf

router = APIRouter(prefix="/admin")

ROLES = [role.value for role in Role]
_FormText = Annotated[str, Form(max_length=2000)]


def _admin(caller: Caller) -> None:
    if not caller.principal.is_admin:
        raise Forbidden("only admins may manage users and tokens")


def _accounts(text: str) -> list[str] | None:
    """Blank: every account. Otherwise AccountSids separated by commas, spaces or new lines."""
    parts = [part for part in re.split(r"[\s,]+", text.strip()) if part]
    return parts or None


def _users_page(
    request: Request, *, ctx: Context, caller: Caller, status_code: int = 200, **extra: Any
) -> HTMLResponse:
    with ctx.db.read() as session:
        users = auth_users.list_users(session)
    values: dict[str, Any] = {"error": None, "notice": None, "form": {}}
    values.update(extra)
    return render(
        request,
        "admin_users.html",
        ctx=ctx,
        caller=caller,
        status_code=status_code,
        users=users,
        roles=ROLES,
        **values,
    )


@router.get("/users", response_class=HTMLResponse)
def users(*, request: Request, ctx: ContextDep, caller: CallerDep) -> HTMLResponse:
    _admin(caller)
    return _users_page(request, ctx=ctx, caller=caller)


@router.post("/users")
def add_user(
    *,
    request: Request,
    ctx: ContextDep,
    caller: CallerDep,
    email: _FormText = "",
    role: _FormText = "listener",
    accounts: _FormText = "",
    password: _FormText = "",
    csrf_token: _FormText = "",
) -> Response:
    _admin(caller)
    check_form_csrf(ctx, caller, submitted=csrf_token)
    try:
        if role not in ROLES:
            raise InvalidInput("choose a role")
        with ctx.db.write() as session:
            user = auth_users.add_user(
                session,
                email=email,
                role=Role(role),
                accounts=_accounts(accounts),
                password=password or None,
                actor=caller.principal.actor,
            )
    except (InvalidInput, Conflict) as exc:
        form = {"email": email, "role": role, "accounts": accounts}
        return _users_page(
            request, ctx=ctx, caller=caller, status_code=exc.http_status, error=exc.message, form=form
        )
    return _users_page(request, ctx=ctx, caller=caller, notice=f"Added {user.email}.")


@router.post("/users/state")
def set_user_state(
    *,
    request: Request,
    ctx: ContextDep,
    caller: CallerDep,
    email: _FormText = "",
    action: _FormText = "",
    csrf_token: _FormText = "",
) -> Response:
    """Disable (ends their sessions; tokens stop working) or re-enable a user."""
    _admin(caller)
    check_form_csrf(ctx, caller, submitted=csrf_token)
    if action not in ("disable", "enable"):
        raise InvalidInput("action must be disable or enable")
    try:
        with ctx.db.write() as session:
            if action == "disable":
                if email.strip().lower() == caller.principal.email:
                    raise Conflict("you cannot disable yourself")
                auth_users.disable_user(session, email, actor=caller.principal.actor)
            else:
                auth_users.enable_user(session, email, actor=caller.principal.actor)
    except (NotFound, Conflict) as exc:
        return _users_page(request, ctx=ctx, caller=caller, status_code=exc.http_status, error=exc.message)
    return RedirectResponse("/admin/users", status_code=303)


def _tokens_page(
    request: Request, *, ctx: Context, caller: Caller, status_code: int = 200, **extra: Any
) -> HTMLResponse:
    with ctx.db.read() as session:
        users = auth_users.list_users(session)
        tokens = auth_tokens.list_tokens(session)
    emails = {user.id: user.email for user in users}
    values: dict[str, Any] = {"error": None, "created": None, "form": {}}
    values.update(extra)
    return render(
        request,
        "admin_tokens.html",
        ctx=ctx,
        caller=caller,
        status_code=status_code,
        tokens=list(reversed(tokens)),
        emails=emails,
        users=[user for user in users if not user.disabled],
        **values,
    )


@router.get("/tokens", response_class=HTMLResponse)
def tokens(*, request: Request, ctx: ContextDep, caller: CallerDep) -> HTMLResponse:
    _admin(caller)
    return _tokens_page(request, ctx=ctx, caller=caller)


@router.post("/tokens")
def create_token(
    *,
    request: Request,
    ctx: ContextDep,
    caller: CallerDep,
    email: _FormText = "",
    name: _FormText = "",
    expires_days: _FormText = "",
    csrf_token: _FormText = "",
) -> Response:
    """Create a token; the page shows the raw token this once (it is stored only hashed)."""
    _admin(caller)
    check_form_csrf(ctx, caller, submitted=csrf_token)
    try:
        days = int(expires_days) if expires_days.strip() else None
    except ValueError:
        days = -1  # rejected below with the service's own message
    try:
        with ctx.db.write() as session:
            token, raw = auth_tokens.create_token(
                session, email=email, name=name, expires_days=days, actor=caller.principal.actor
            )
            created = {"raw": raw, "name": token.name, "email": email.strip().lower()}
    except (InvalidInput, Conflict, NotFound) as exc:
        form = {"email": email, "name": name, "expires_days": expires_days}
        return _tokens_page(
            request, ctx=ctx, caller=caller, status_code=exc.http_status, error=exc.message, form=form
        )
    return _tokens_page(request, ctx=ctx, caller=caller, created=created)


@router.post("/tokens/{token_id}/revoke")
def revoke_token(
    *, token_id: int, request: Request, ctx: ContextDep, caller: CallerDep, csrf_token: _FormText = ""
) -> Response:
    _admin(caller)
    check_form_csrf(ctx, caller, submitted=csrf_token)
    with ctx.db.write() as session:
        auth_tokens.revoke_token(session, token_id=token_id, actor=caller.principal.actor)
    return RedirectResponse("/admin/tokens", status_code=303)
