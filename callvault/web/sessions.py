"""Who is calling a route: session cookies, bearer tokens and CSRF checks, for every router.

Browsers carry ``cv_session`` (HttpOnly, SameSite=Lax, Secure behind https); integrations send
``Authorization: Bearer <token>``. A state-changing request authenticated by cookie must also carry a CSRF
token bound to that session (the ``X-CSRF-Token`` header for the JSON API, a ``csrf_token`` form field for
pages); a bearer token is not sent automatically by browsers, so it needs none. The login form, before any
session exists, is protected by a token bound to a random ``cv_presession`` cookie.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request, Response

from callvault.auth import sessions as auth_sessions
from callvault.auth import tokens as auth_tokens
from callvault.auth.principal import Principal
from callvault.context import Context
from callvault.errors import Unauthenticated
from callvault.settings import Settings
from callvault.web.deps import ContextDep

SESSION_COOKIE = "cv_session"
PRESESSION_COOKIE = "cv_presession"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_PRESESSION_MAX_AGE = 3600


@dataclass(frozen=True)
class Caller:
    """An authenticated caller and, for browser sessions, the raw session (CSRF tokens are bound to it)."""

    principal: Principal
    raw_session: str | None

    def csrf(self, secret_key: bytes) -> str:
        """The CSRF token forms must carry; empty for token callers (they need none)."""
        if self.raw_session is None:
            return ""
        return auth_sessions.csrf_token(secret_key, self.raw_session)


def _secure(settings: Settings) -> bool:
    return bool(settings.public_url and settings.public_url.startswith("https://"))


def set_session_cookie(response: Response, raw: str, *, settings: Settings) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        raw,
        max_age=int(settings.session_ttl_hours * 3600),
        httponly=True,
        samesite="lax",
        secure=_secure(settings),
        path="/",
    )


def clear_session_cookie(response: Response, *, settings: Settings) -> None:
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="lax", secure=_secure(settings), path="/")


def presession(request: Request) -> str | None:
    return request.cookies.get(PRESESSION_COOKIE) or None


def new_presession() -> str:
    return secrets.token_urlsafe(32)


def set_presession(response: Response, raw: str, *, settings: Settings) -> None:
    response.set_cookie(
        PRESESSION_COOKIE,
        raw,
        max_age=_PRESESSION_MAX_AGE,
        httponly=True,
        samesite="lax",
        secure=_secure(settings),
        path="/",
    )


def clear_presession(response: Response, *, settings: Settings) -> None:
    response.delete_cookie(
        PRESESSION_COOKIE, httponly=True, samesite="lax", secure=_secure(settings), path="/"
    )


def identify(ctx: Context, request: Request, *, now: datetime | None = None) -> Caller | None:
    """The caller of ``request``, or ``None`` when it carries no credentials at all.

    Credentials that are present but not valid (unknown, expired, revoked, a disabled user) raise
    :class:`Unauthenticated`; they are never silently ignored. A bearer token wins over a cookie.
    """
    now = now or datetime.now(UTC)
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != "bearer" or not raw.strip():
            raise Unauthenticated("use 'Authorization: Bearer <token>'")
        # A write session: resolving a token records when it was last used.
        with ctx.db.write() as session:
            return Caller(auth_tokens.resolve_token(session, raw.strip(), now=now), None)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        with ctx.db.read() as session:
            return Caller(auth_sessions.resolve_session(session, cookie, now=now), cookie)
    return None


def require_caller(ctx: ContextDep, request: Request) -> Caller:
    """Dependency: the authenticated caller; :class:`Unauthenticated` (401 / login redirect) otherwise."""
    caller = identify(ctx, request)
    if caller is None:
        raise Unauthenticated("log in or send 'Authorization: Bearer <token>'")
    return caller


def require_api_caller(ctx: ContextDep, request: Request) -> Caller:
    """Dependency for the JSON API: like :func:`require_caller`, and a cookie-authenticated state change
    must carry the session's CSRF token in ``X-CSRF-Token`` (:class:`Forbidden` otherwise)."""
    caller = require_caller(ctx, request)
    if caller.raw_session is not None and request.method in _UNSAFE:
        auth_sessions.check_csrf(ctx.secret_key, caller.raw_session, request.headers.get(CSRF_HEADER))
    return caller


def check_form_csrf(ctx: Context, caller: Caller, *, submitted: str | None) -> None:
    """Check a page form's CSRF field (raises :class:`Forbidden`); token callers need none."""
    if caller.raw_session is not None:
        auth_sessions.check_csrf(ctx.secret_key, caller.raw_session, submitted)


CallerDep = Annotated[Caller, Depends(require_caller)]
ApiCallerDep = Annotated[Caller, Depends(require_api_caller)]
