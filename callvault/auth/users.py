"""People who may log in or hold API tokens. Every change is written to the audit trail in the same
transaction, so a user change and its audit entry commit or vanish together."""

from __future__ import annotations

import re
from typing import Any, Final, cast

from sqlalchemy import CursorResult, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from callvault import sids
from callvault.audit import trail
from callvault.auth.passwords import hash_password
from callvault.auth.principal import Principal
from callvault.db.models import Role, User, WebSession
from callvault.errors import Conflict, InvalidInput, NotFound

# Deliberately plain: RFC 5322 "atext" local parts and DNS-label domains, checked after lower-casing. The
# point is catching typos in an operator's command, not accepting every address RFC 5321 allows.
_EMAIL: Final = re.compile(
    r"\A[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*\Z"
)


def normalise_email(email: str) -> str:
    """``email`` trimmed and lower-cased; :class:`InvalidInput` unless it looks like an address."""
    value = email.strip().lower()
    if len(value) > 254 or not _EMAIL.match(value) or len(value.split("@", 1)[0]) > 64:
        raise InvalidInput("not a valid email address")
    return value


def add_user(
    session: Session,
    *,
    email: str,
    role: Role,
    accounts: list[str] | None,
    password: str | None,
    actor: str = "cli",
) -> User:
    """Create a user. ``accounts=None`` lets them hear every account, a list only those AccountSids;
    ``password=None`` makes a user who cannot log in (API tokens only). Raises :class:`InvalidInput` for a
    bad email, AccountSid or password and :class:`Conflict` when the email is taken. Audited "user.add"."""
    email = normalise_email(email)
    role = Role(role)
    scope = None if accounts is None else sorted({sids.account_sid(a, field="account") for a in accounts})
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict(f"a user {email} already exists")
    password_hash = hash_password(password) if password is not None else None
    user = User(email=email, role=role.value, accounts=scope, password_hash=password_hash, disabled=False)
    session.add(user)
    try:
        session.flush()
    except IntegrityError:  # another transaction added the same email since the check above
        raise Conflict(f"a user {email} already exists") from None
    detail = {"email": email, "role": role.value, "accounts": scope, "password": password is not None}
    trail.append(session, actor=actor, action="user.add", detail=detail)
    return user


def list_users(session: Session) -> list[User]:
    """Every user, oldest first."""
    return list(session.scalars(select(User).order_by(User.id)))


def get_user_by_email(session: Session, email: str) -> User:
    """The user with this email (case-insensitive); :class:`NotFound` otherwise."""
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise NotFound(f"no user {email.strip()}")
    return user


def disable_user(session: Session, email: str, *, actor: str = "cli") -> User:
    """Disable a user and end their browser sessions; their tokens and sessions fail from the next request
    on. Idempotent (audited "user.disable" only when it changes something)."""
    user = get_user_by_email(session, email)
    if user.disabled:
        return user
    user.disabled = True
    ended = end_sessions(session, user.id)
    trail.append(session, actor=actor, action="user.disable", detail={"email": user.email, "sessions": ended})
    return user


def enable_user(session: Session, email: str, *, actor: str = "cli") -> User:
    """Undo :func:`disable_user`. Idempotent (audited "user.enable" only when it changes something)."""
    user = get_user_by_email(session, email)
    if not user.disabled:
        return user
    user.disabled = False
    trail.append(session, actor=actor, action="user.enable", detail={"email": user.email})
    return user


def set_password(session: Session, *, email: str, password: str, actor: str = "cli") -> User:
    """Replace a user's password and end their browser sessions. Audited "user.password" (never the
    password itself)."""
    user = get_user_by_email(session, email)
    user.password_hash = hash_password(password)
    ended = end_sessions(session, user.id)
    detail = {"email": user.email, "sessions": ended}
    trail.append(session, actor=actor, action="user.password", detail=detail)
    return user


def end_sessions(session: Session, user_id: int) -> int:
    """Delete every browser session of a user; return how many there were."""
    result = cast(CursorResult[Any], session.execute(delete(WebSession).where(WebSession.user_id == user_id)))
    return result.rowcount


def principal_for(user: User, *, via: str) -> Principal:
    """The :class:`Principal` a request made as ``user`` acts with (``via``: "session" or "token:<id>")."""
    accounts = frozenset(user.accounts) if user.accounts is not None else None
    return Principal(user_id=user.id, email=user.email, role=Role(user.role), accounts=accounts, via=via)
