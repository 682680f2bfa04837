"""The recordings repository: the webhook's insert, the workers' claims and fenced updates, and listings."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from callvault.db.models import Recording, RecordingStatus, Stage
from callvault.errors import InvalidInput, NotFound


def recording_view(rec: Recording) -> dict[str, Any]:
    """The public shape of a recording (``recordings show --json`` and ``GET /api/v1/recordings/{sid}``)."""

    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "sid": rec.sid,
        "account_sid": rec.account_sid,
        "call_sid": rec.call_sid,
        "conference_sid": rec.conference_sid,
        "status": rec.status,
        "duration_seconds": rec.duration_seconds,
        "channels": rec.channels,
        "source": rec.source,
        "content_type": rec.content_type,
        "size_bytes": rec.size_bytes,
        "sha256": rec.sha256,
        "storage_key": rec.storage_key,
        "recorded_at": iso(rec.recorded_at),
        "created_at": iso(rec.created_at),
        "stored_at": iso(rec.stored_at),
        "twilio_deleted_at": iso(rec.twilio_deleted_at),
        "deleted_at": iso(rec.deleted_at),
        "attempts": rec.attempts,
        "next_attempt_at": iso(rec.next_attempt_at) if rec.status == RecordingStatus.PENDING else None,
        "last_error": rec.last_error,
    }


def get_recording(session: Session, sid: str) -> Recording:
    rec = session.get(Recording, sid)
    if rec is None:
        raise NotFound(f"no recording {sid}")
    return rec


def insert_if_absent(session: Session, values: dict[str, Any]) -> bool:
    """Insert a recording row unless one with the same SID exists. True when this call inserted it.

    One statement (``INSERT … ON CONFLICT DO NOTHING``), so duplicate and concurrent callbacks for the same
    recording never create a second unit of work, on SQLite and PostgreSQL alike.
    """
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = insert(Recording).values(**values).on_conflict_do_nothing(index_elements=["sid"])
    # RETURNING, not rowcount: psycopg reports a rowcount for ON CONFLICT DO NOTHING that SQLAlchemy
    # does not pass through reliably.
    return session.execute(stmt.returning(Recording.sid)).first() is not None


@dataclass(frozen=True)
class Claim:
    """A recording claimed by one worker until ``lease_expires_at``."""

    sid: str
    account_sid: str
    stage: Stage
    attempts: int
    created_at: datetime
    storage_key: str | None
    size_bytes: int | None
    sha256: str | None
    store_checksum: str | None
    content_type: str | None
    owner: str


def claim_next(session: Session, *, owner: str, lease_seconds: float, now: datetime) -> Claim | None:
    """Claim the next due pending recording for ``owner``, or None.

    Runs inside ``Database.write()``: on SQLite the transaction already holds the write lock (``BEGIN
    IMMEDIATE``); on PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets concurrent workers skip each other's rows.
    A row whose lease expired (its worker died) is due again.
    """
    stmt = (
        select(Recording)
        .where(
            Recording.status == RecordingStatus.PENDING,
            Recording.next_attempt_at <= now,
            or_(Recording.lease_expires_at.is_(None), Recording.lease_expires_at < now),
        )
        .order_by(Recording.next_attempt_at)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    rec = session.execute(stmt).scalars().first()
    if rec is None:
        return None
    rec.lease_owner = owner
    rec.lease_expires_at = now + timedelta(seconds=lease_seconds)
    rec.attempts += 1
    session.flush()
    return Claim(
        sid=rec.sid,
        account_sid=rec.account_sid,
        stage=Stage(rec.stage),
        attempts=rec.attempts,
        created_at=rec.created_at,
        storage_key=rec.storage_key,
        size_bytes=rec.size_bytes,
        sha256=rec.sha256,
        store_checksum=rec.store_checksum,
        content_type=rec.content_type,
        owner=owner,
    )


def fenced_update(session: Session, *, sid: str, owner: str, now: datetime, values: dict[str, Any]) -> bool:
    """Apply ``values`` to the recording only while ``owner`` still holds an unexpired lease on it.

    False means the lease was lost (expired and taken over): the caller must stop working on the recording.
    """
    stmt = (
        update(Recording)
        .where(
            and_(
                Recording.sid == sid,
                Recording.lease_owner == owner,
                Recording.lease_expires_at >= now,
                Recording.status == RecordingStatus.PENDING,
            )
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(session.execute(stmt).rowcount)  # type: ignore[attr-defined]


_SORT_SEP = "|"


def encode_cursor(rec: Recording) -> str:
    raw = f"{rec.created_at.isoformat()}{_SORT_SEP}{rec.sid}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, sid = raw.split(_SORT_SEP, 1)
        return datetime.fromisoformat(created), sid
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInput("cursor is not valid") from None


def list_recordings(
    session: Session,
    *,
    limit: int,
    status: str | None = None,
    accounts: frozenset[str] | None = None,
    account_sid: str | None = None,
    call_sid: str | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    search: str | None = None,
    cursor: str | None = None,
) -> tuple[list[Recording], str | None]:
    """Newest first, ``limit`` at a time; returns the page and the cursor of the next page (or None).

    ``accounts`` restricts to the caller's accounts (None = all): the caller never learns of others.
    """
    stmt = select(Recording)
    if status is not None:
        stmt = stmt.where(Recording.status == status)
    if accounts is not None:
        stmt = stmt.where(Recording.account_sid.in_(sorted(accounts)))
    if account_sid is not None:
        stmt = stmt.where(Recording.account_sid == account_sid)
    if call_sid is not None:
        stmt = stmt.where(Recording.call_sid == call_sid)
    if created_from is not None:
        stmt = stmt.where(Recording.created_at >= created_from)
    if created_to is not None:
        stmt = stmt.where(Recording.created_at < created_to)
    if search:
        term = search.strip()
        stmt = stmt.where(
            or_(Recording.sid == term, Recording.call_sid == term, Recording.account_sid == term)
        )
    if cursor:
        created, sid = decode_cursor(cursor)
        stmt = stmt.where(
            or_(Recording.created_at < created, and_(Recording.created_at == created, Recording.sid < sid))
        )
    stmt = stmt.order_by(Recording.created_at.desc(), Recording.sid.desc()).limit(limit + 1)
    rows = list(session.execute(stmt).scalars())
    next_cursor = encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    return rows[:limit], next_cursor
