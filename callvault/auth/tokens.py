"""API tokens for integrations (CRMs): ``Authorization: Bearer cvt_…``.

A token is ``cvt_`` + 256 random bits, shown once at creation; only its SHA-256 is stored. A slow hash would
add latency to every request and nothing else: nobody brute-forces 256 random bits.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from callvault.audit import trail
from callvault.auth.principal import Principal
from callvault.auth.users import get_user_by_email, principal_for
from callvault.db.models import ApiToken, User
from callvault.errors import Conflict, InvalidInput, NotFound, Unauthenticated

PREFIX: Final = "cvt_"
MAX_EXPIRES_DAYS: Final = 3650
# How stale last_used_at may get: writing it on every request would turn each API read into a write.
LAST_USED_RESOLUTION: Final = timedelta(minutes=1)
_MAX_RAW_LENGTH: Final = 100


def token_hash(raw: str) -> str:
    """The stored form of a raw token (SHA-256, hex)."""
    return hashlib.sha256(raw.encode("utf-8", "surrogateescape")).hexdigest()


def create_token(
    session: Session,
    *,
    email: str,
    name: str,
    expires_days: int | None,
    actor: str,
    now: datetime | None = None,
) -> tuple[ApiToken, str]:
    """Create a token for an enabled user and return it with the raw token, which is never stored and cannot
    be shown again. ``expires_days=None``: no expiry. Raises :class:`NotFound` (user), :class:`Conflict`
    (disabled user), :class:`InvalidInput` (name, expiry). Audited "token.create"."""
    now = now or datetime.now(UTC)
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput("a token name must be 1 to 100 characters")
    if expires_days is not None and not 1 <= expires_days <= MAX_EXPIRES_DAYS:
        raise InvalidInput(f"expiry must be between 1 and {MAX_EXPIRES_DAYS} days")
    user = get_user_by_email(session, email)
    if user.disabled:
        raise Conflict(f"user {user.email} is disabled")
    raw = PREFIX + secrets.token_urlsafe(32)
    expires_at = now + timedelta(days=expires_days) if expires_days is not None else None
    token = ApiToken(
        user_id=user.id, name=name, token_hash=token_hash(raw), created_at=now, expires_at=expires_at
    )
    session.add(token)
    session.flush()
    detail = {
        "email": user.email,
        "token_id": token.id,
        "name": name,
        "expires_at": _when(expires_at),
    }
    trail.append(session, actor=actor, action="token.create", detail=detail, now=now)
    return token, raw


def revoke_token(session: Session, *, token_id: int, actor: str, now: datetime | None = None) -> ApiToken:
    """Revoke a token; it fails from the next request on. :class:`NotFound` for an unknown id. Idempotent
    (audited "token.revoke" only the first time)."""
    token = session.get(ApiToken, token_id)
    if token is None:
        raise NotFound(f"no token {token_id}")
    if token.revoked_at is not None:
        return token
    now = now or datetime.now(UTC)
    token.revoked_at = now
    session.flush()
    user = session.get(User, token.user_id)
    detail = {"email": user.email if user else None, "token_id": token.id, "name": token.name}
    trail.append(session, actor=actor, action="token.revoke", detail=detail, now=now)
    return token


def list_tokens(session: Session, *, user_id: int | None = None) -> list[ApiToken]:
    """Tokens (revoked and expired included), oldest first; only ``user_id``'s when given."""
    query = select(ApiToken).order_by(ApiToken.id)
    if user_id is not None:
        query = query.where(ApiToken.user_id == user_id)
    return list(session.scalars(query))


def resolve_token(session: Session, raw: str, *, now: datetime) -> Principal:
    """The principal a raw token acts as (``via="token:<id>"``).

    Raises :class:`Unauthenticated` when the token is unknown, revoked, expired or its user disabled —
    checked on every call, so a revocation bites on the next request. Call it in a ``Database.write()``
    session: it records ``last_used_at`` (at most once a minute per token).
    """
    if not raw.startswith(PREFIX) or len(raw) > _MAX_RAW_LENGTH:
        raise Unauthenticated("invalid API token")
    row = session.execute(
        select(ApiToken, User)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == token_hash(raw))
    ).one_or_none()
    if row is None:
        raise Unauthenticated("invalid API token")
    token, user = row
    if token.revoked_at is not None or (token.expires_at is not None and token.expires_at <= now):
        raise Unauthenticated("invalid API token")
    if user.disabled:
        raise Unauthenticated("invalid API token")
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        token.last_used_at = now
        session.flush()
    return principal_for(user, via=f"token:{token.id}")


def _when(at: datetime | None) -> str | None:
    return at.astimezone(UTC).isoformat() if at is not None else None
