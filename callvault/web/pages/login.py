"""``/login`` and ``/logout``.

The login form is CSRF-protected before any session exists, with a token bound to a random pre-session
cookie. A successful login always mints a new session value (``auth.sessions.login``) and ends the one the
browser brought along, if any, so a session planted before login is never honoured after it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from callvault.auth import sessions as auth_sessions
from callvault.errors import Forbidden, TooManyRequests, Unauthenticated
from callvault.web.deps import ContextDep, client_ip
from callvault.web.pages.templating import render
from callvault.web.sessions import (
    SESSION_COOKIE,
    CallerDep,
    check_form_csrf,
    clear_presession,
    clear_session_cookie,
    new_presession,
    presession,
    set_presession,
    set_session_cookie,
)

router = APIRouter()


def safe_next(value: str | None) -> str:
    """A local path to return to after login; anything else (``https://x``, ``//x``, ``/\\x``) is ``/``."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")) or "\\" in value:
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


def _form(
    request: Request,
    ctx: ContextDep,
    *,
    next_path: str,
    email: str = "",
    error: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    existing = presession(request)
    raw = existing or new_presession()
    response = render(
        request,
        "login.html",
        ctx=ctx,
        caller=None,
        status_code=status_code,
        headers=headers,
        next=next_path,
        email=email,
        error=error,
        login_csrf=auth_sessions.csrf_token(ctx.secret_key, raw),
    )
    if existing is None:
        set_presession(response, raw, settings=ctx.settings)
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(*, request: Request, ctx: ContextDep, next: str | None = None) -> HTMLResponse:
    return _form(request, ctx, next_path=safe_next(next))


@router.post("/login")
def login(
    *,
    request: Request,
    ctx: ContextDep,
    email: Annotated[str, Form(max_length=254)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf_token: Annotated[str, Form(max_length=128)] = "",
    next: Annotated[str, Form(max_length=2048)] = "/",
) -> Response:
    """Check the form's CSRF token, then the password (throttled); on success set a new session cookie."""
    next_path = safe_next(next)
    pre = presession(request)
    if pre is None:
        raise Forbidden("the login form expired; reload the page and try again")
    auth_sessions.check_csrf(ctx.secret_key, pre, csrf_token)
    now = datetime.now(UTC)
    try:
        with ctx.db.write() as session:
            _, raw = auth_sessions.login(
                session,
                email=email,
                password=password,
                client_ip=client_ip(request),
                user_agent=request.headers.get("user-agent"),
                settings=ctx.settings,
                now=now,
            )
            previous = request.cookies.get(SESSION_COOKIE)
            if previous:
                auth_sessions.logout(session, previous)
    except TooManyRequests as exc:
        return _form(
            request,
            ctx,
            next_path=next_path,
            email=email,
            error="Too many failed attempts. Wait a few minutes, then try again.",
            status_code=429,
            headers={"Retry-After": str(exc.retry_after)},
        )
    except Unauthenticated:
        return _form(
            request, ctx, next_path=next_path, email=email, error="Wrong email or password.", status_code=401
        )
    response = RedirectResponse(next_path, status_code=303)
    set_session_cookie(response, raw, settings=ctx.settings)
    clear_presession(response, settings=ctx.settings)
    return response


@router.post("/logout")
def logout(
    *,
    request: Request,
    ctx: ContextDep,
    caller: CallerDep,
    csrf_token: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """End the session (CSRF-checked) and return to the login page."""
    check_form_csrf(ctx, caller, submitted=csrf_token)
    if caller.raw_session is not None:
        with ctx.db.write() as session:
            auth_sessions.logout(session, caller.raw_session)
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response, settings=ctx.settings)
    return response
