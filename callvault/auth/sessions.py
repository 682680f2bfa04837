"""Browser logins: password check with throttling, server-side sessions, CSRF tokens bound to a session.

A session is a random value handed to the browser once; only its SHA-256 is stored. Every login mints a
new one, and a value the server did not mint at login is never accepted, so session fixation is impossible.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import math
import secrets
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import delete, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from callvault.audit import trail
from callvault.auth.passwords import dummy_hash, hash_password, needs_rehash, verify_password
from callvault.auth.principal import Principal
from callvault.auth.tokens import token_hash
from callvault.auth.users import principal_for
from callvault.db.models import LoginFailure, User, WebSession
from callvault.errors import Forbidden, InvalidInput, TooManyRequests, Unauthenticated
from callvault.settings import Settings

ANONYMOUS: Final = "anonymous"
_CSRF_CONTEXT: Final = b"callvault csrf\x00"  # domain separation: the same key signs playback URLs
_MAX_RAW_LENGTH: Final = 100
_SWEEP_BATCH: Final = 100


def login(
    session: Session,
    *,
    email: str,
    password: str,
    client_ip: str | None,
    user_agent: str | None,
    settings: Settings,
    now: datetime,
) -> tuple[Principal, str]:
    """Check a password and open a session: return the principal and the raw session token (a fresh random
    value each time, stored only hashed, valid ``settings.session_ttl_hours``).

    Call it in a ``Database.write()`` session. Throttling comes first: once ``login_max_failures``
    failures for this email or this client address fall within ``login_window_seconds``, the attempt is
    refused with :class:`TooManyRequests` whether or not the email exists. A wrong password, unknown email,
    disabled user or user without a password all raise the same :class:`Unauthenticated`, after the same
    argon2 work. Both outcomes are audited ("login.success" / "login.failure", never the password). On
    failure this function commits the session before raising, so the failure record and its audit entry
    survive the exception (the caller's ``write()`` would otherwise roll them back).
    """
    attempted = email.strip().lower()[:254]
    ip = client_ip[:64] if client_ip else None
    if session.get_bind().dialect.name == "postgresql":
        _serialise(session, attempted, ip)
    window = timedelta(seconds=settings.login_window_seconds)
    since = now - window
    _sweep(session, since)
    retry_after = max(
        _retry_after(session, LoginFailure.email, attempted, since=since, now=now, settings=settings),
        _retry_after(session, LoginFailure.client_ip, ip, since=since, now=now, settings=settings),
    )
    if retry_after:
        _fail(session, attempted=attempted, ip=ip, user_agent=user_agent, reason="throttled", now=now)
        raise TooManyRequests("too many failed logins; try again later", retry_after=retry_after)

    user = session.scalar(select(User).where(User.email == attempted))
    stored = user.password_hash if user is not None and not user.disabled else None
    # Unknown users are checked against a dummy hash so they cost the same time as known ones.
    matches = verify_password(stored or dummy_hash(), password)
    if user is None or stored is None or not matches:
        reason = _failure_reason(user, matches=matches)
        session.add(LoginFailure(email=attempted, client_ip=ip, at=now))
        _fail(session, attempted=attempted, ip=ip, user_agent=user_agent, reason=reason, now=now)
        raise Unauthenticated("invalid email or password")

    if needs_rehash(stored):
        # If the policy tightened since this password was set, hash_password refuses it: keep the old hash.
        with contextlib.suppress(InvalidInput):
            user.password_hash = hash_password(password)
    raw = secrets.token_urlsafe(32)
    session.execute(delete(WebSession).where(WebSession.user_id == user.id, WebSession.expires_at <= now))
    expires_at = now + timedelta(hours=settings.session_ttl_hours)
    session.add(
        WebSession(token_hash=token_hash(raw), user_id=user.id, created_at=now, expires_at=expires_at)
    )
    principal = principal_for(user, via="session")
    trail.append(
        session,
        actor=principal.actor,
        action="login.success",
        client_ip=ip,
        user_agent=user_agent,
        detail={"email": user.email},
        now=now,
    )
    return principal, raw


def _serialise(session: Session, email: str, ip: str | None) -> None:
    # Without this, parallel attempts on PostgreSQL could all pass the throttle check before any of them
    # records a failure. Locks are per email and per address (taken in a fixed order, so two logins never
    # wait on each other crosswise) and end with the transaction.
    keys = sorted({_lock_key("email", email)} | ({_lock_key("ip", ip)} if ip else set()))
    for key in keys:
        session.execute(select(func.pg_advisory_xact_lock(key)))


def _sweep(session: Session, since: datetime) -> None:
    # Forget failures older than the window, a bounded batch per attempt (each attempt adds at most one row,
    # so this keeps up). SKIP LOCKED: concurrent logins never wait on, or deadlock over, the same old rows.
    stale = select(LoginFailure.id).where(LoginFailure.at <= since).limit(_SWEEP_BATCH)
    session.execute(delete(LoginFailure).where(LoginFailure.id.in_(stale.with_for_update(skip_locked=True))))


def _lock_key(kind: str, value: str) -> int:
    digest = hashlib.sha256(f"callvault login {kind}\x00{value}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _retry_after(
    session: Session,
    column: InstrumentedAttribute[str] | InstrumentedAttribute[str | None],
    value: str | None,
    *,
    since: datetime,
    now: datetime,
    settings: Settings,
) -> int:
    """Seconds until an attempt keyed by ``value`` is allowed again; 0 when it is allowed now."""
    if value is None:
        return 0
    limit = settings.login_max_failures
    newest = session.scalars(
        select(LoginFailure.at)
        .where(column == value, LoginFailure.at > since)
        .order_by(LoginFailure.at.desc())
        .limit(limit)
    ).all()
    if len(newest) < limit:
        return 0
    # Allowed again once the limit-th newest failure leaves the window.
    free_at = newest[-1] + timedelta(seconds=settings.login_window_seconds)
    return max(1, math.ceil((free_at - now).total_seconds()))


def _failure_reason(user: User | None, *, matches: bool) -> str:
    # For the audit trail only (admins and auditors): the caller always gets the same message.
    if user is None:
        return "unknown email"
    if user.disabled:
        return "user disabled"
    if user.password_hash is None:
        return "no password set"
    return "wrong password"


def _fail(
    session: Session, *, attempted: str, ip: str | None, user_agent: str | None, reason: str, now: datetime
) -> None:
    detail = {"email": attempted, "reason": reason}
    trail.append(
        session,
        actor=ANONYMOUS,
        action="login.failure",
        client_ip=ip,
        user_agent=user_agent,
        detail=detail,
        now=now,
    )
    session.commit()


def resolve_session(session: Session, raw: str, *, now: datetime) -> Principal:
    """The principal of a browser session (``via="session"``). :class:`Unauthenticated` when the value is
    unknown (never minted by :func:`login`, or logged out), expired, or its user disabled."""
    if not raw or len(raw) > _MAX_RAW_LENGTH:
        raise Unauthenticated("log in again")
    row = session.execute(
        select(WebSession, User)
        .join(User, User.id == WebSession.user_id)
        .where(WebSession.token_hash == token_hash(raw))
    ).one_or_none()
    if row is None:
        raise Unauthenticated("log in again")
    web_session, user = row
    if web_session.expires_at <= now or user.disabled:
        raise Unauthenticated("log in again")
    return principal_for(user, via="session")


def logout(session: Session, raw: str) -> None:
    """End a browser session (no error when it is already gone). Audited "logout"."""
    if not raw or len(raw) > _MAX_RAW_LENGTH:
        return
    row = session.execute(
        select(WebSession, User)
        .join(User, User.id == WebSession.user_id)
        .where(WebSession.token_hash == token_hash(raw))
    ).one_or_none()
    if row is None:
        return
    web_session, user = row
    session.delete(web_session)
    trail.append(session, actor=user.email, action="logout", detail={"email": user.email})


def csrf_token(secret_key: bytes, raw_session: str) -> str:
    """The CSRF token bound to a session: HMAC-SHA256 (hex) of the raw session value."""
    message = _CSRF_CONTEXT + raw_session.encode("utf-8", "surrogateescape")
    return hmac.new(secret_key, message, hashlib.sha256).hexdigest()


def check_csrf(secret_key: bytes, raw_session: str, submitted: str | None) -> None:
    """Raise :class:`Forbidden` unless ``submitted`` is the session's CSRF token (constant-time compare)."""
    expected = csrf_token(secret_key, raw_session).encode("ascii")
    given = (submitted or "").encode("utf-8", "replace")
    if not submitted or not hmac.compare_digest(expected, given):
        raise Forbidden("missing or invalid CSRF token")
