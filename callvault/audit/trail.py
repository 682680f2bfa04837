"""The audit trail: append, verify, export and list hash-chained entries (the hash rule is in ``chain``).

Appends are serialised through the single ``audit_head`` row: on PostgreSQL it is locked with
``SELECT … FOR UPDATE``; on SQLite the caller's ``Database.write()`` already holds the database write lock
(``BEGIN IMMEDIATE``). So appenders in any number of threads or processes extend one chain, and ids are
gap-free (``last_id + 1``). Call :func:`append` inside a ``Database.write()`` session; the entry becomes
visible when that transaction commits, atomically with whatever the caller recorded alongside it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal, cast

from sqlalchemy import Select, Table, bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from callvault import sids
from callvault.audit.chain import GENESIS_HASH, canonical_json, entry_fields, entry_hash, normalise_detail
from callvault.db.models import AuditEntry, AuditHead
from callvault.errors import AuditChainBroken, InvalidInput

HEAD_ID: Final = 1
_ENTRIES: Final = cast(Table, AuditEntry.__table__)
_HEAD: Final = cast(Table, AuditHead.__table__)
# Built once: constructing statements per call costs more than executing them on SQLite.
_LOCK_HEAD: Final = select(_HEAD.c.last_id, _HEAD.c.last_hash).where(_HEAD.c.id == HEAD_ID).with_for_update()
_INSERT_ENTRY: Final = insert(_ENTRIES)
_MOVE_HEAD: Final = (
    update(_HEAD)
    .where(_HEAD.c.id == HEAD_ID)
    .values(last_id=bindparam("new_id"), last_hash=bindparam("new_hash"))
)
MAX_LIST_LIMIT: Final = 1000
_STREAM_BATCH: Final = 1000
EXPORT_COLUMNS: Final = (
    "id",
    "at",
    "actor",
    "action",
    "recording_sid",
    "client_ip",
    "user_agent",
    "detail",
    "prev_hash",
    "entry_hash",
)


@dataclass(frozen=True)
class VerifyResult:
    """``ok``: every entry recomputes, links to its predecessor, ids run 1..N, the head names entry N."""

    ok: bool
    checked: int
    first_bad_id: int | None
    reason: str | None


def append(
    session: Session,
    *,
    actor: str,
    action: str,
    recording_sid: str | None = None,
    client_ip: str | None = None,
    user_agent: str | None = None,
    detail: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> AuditEntry:
    """Append one entry to the chain and return it (written, not committed; a detached copy of the row).

    Free-text fields are clipped to their column sizes before hashing, so the stored row always recomputes.
    Raises :class:`InvalidInput` for an empty action, a malformed RecordingSid or a non-JSON ``detail``, and
    :class:`AuditChainBroken` when the head row was removed or rolled back behind existing entries.
    """
    at = now if now is not None else datetime.now(UTC)
    if at.tzinfo is None:
        raise InvalidInput("audit time must be timezone-aware")
    if not action or len(action) > 64:
        raise InvalidInput("audit action must be 1 to 64 characters")
    if recording_sid is not None:
        sids.recording_sid(recording_sid)
    fields = entry_fields(
        entry_id=0,
        at=at,
        actor=_clip(actor, 300) or "",
        action=action,
        recording_sid=recording_sid,
        client_ip=_clip(client_ip, 64),
        user_agent=_clip(user_agent, 512),
        detail=normalise_detail(detail),
    )
    last_id, last_hash = _lock_head(session)
    entry_id = fields["id"] = last_id + 1
    digest = entry_hash(last_hash, fields)
    row = {**fields, "at": at, "prev_hash": last_hash, "entry_hash": digest}
    # Core statements on the tables, not the ORM unit of work: this runs once per playback link, and the
    # head row stays locked until the caller commits, so every millisecond here caps the trail's throughput.
    try:
        session.execute(_INSERT_ENTRY, row)
    except IntegrityError:
        # The only unique key of audit_entries is its id: an entry with this id already exists, so the
        # head row was moved back behind the chain. Refuse rather than fork it.
        raise AuditChainBroken(
            f"audit entry {entry_id} already exists behind the head row; run `callvault audit verify`",
            entry_id=entry_id,
        ) from None
    session.execute(_MOVE_HEAD, {"new_id": entry_id, "new_hash": digest})
    return AuditEntry(**row)


def _lock_head(session: Session) -> tuple[int, str]:
    """The head's (last_id, last_hash), locked until the transaction ends; created on the first append."""
    head = session.execute(_LOCK_HEAD).one_or_none()
    if head is None:
        first = session.scalar(select(_ENTRIES.c.id).order_by(_ENTRIES.c.id).limit(1))
        if first is not None:
            raise AuditChainBroken("the audit head row is missing", entry_id=first)
        # Insert-or-ignore, so two processes racing to make the first entry both end up locking the same
        # row instead of one failing on the primary key.
        upsert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        values = {"id": HEAD_ID, "last_id": 0, "last_hash": GENESIS_HASH}
        session.execute(upsert(_HEAD).values(**values).on_conflict_do_nothing(index_elements=["id"]))
        head = session.execute(_LOCK_HEAD).one()
    return int(head.last_id), str(head.last_hash)


def _clip(value: str | None, size: int) -> str | None:
    return value[:size] if value is not None else None


def verify(session: Session) -> VerifyResult:
    """Recompute the whole chain in id order.

    Detects an edited entry (hash mismatch), a removed or re-linked entry (id gap or ``prev_hash``
    mismatch), a truncated tail (head names an entry that is gone, or a different hash) and entries added
    behind the head's back. Safe to run while others append: only entries up to the head read first are
    checked, and the head is read again before entries past it count as foreign.
    """
    head = session.get(AuditHead, HEAD_ID, populate_existing=True)
    if head is None:
        first = session.scalar(select(func.min(AuditEntry.id)))
        if first is not None:
            return _bad(0, first, "the audit head row is missing")
    head_id = head.last_id if head is not None else 0
    head_hash = head.last_hash if head is not None else GENESIS_HASH
    prev, expected, checked = GENESIS_HASH, 1, 0
    query = _rows().where(AuditEntry.id <= head_id).order_by(AuditEntry.id)
    try:
        with closing(session.execute(query.execution_options(yield_per=_STREAM_BATCH))) as rows:
            for entry in rows:
                if entry.id != expected:
                    if entry.id < expected:
                        return _bad(checked, entry.id, f"entry {entry.id} is out of sequence")
                    return _bad(checked, expected, f"{_span(expected, entry.id - 1)} missing")
                if entry.prev_hash != prev:
                    return _bad(checked, entry.id, f"entry {entry.id} does not link to entry {entry.id - 1}")
                if entry_hash(entry.prev_hash, _fields(entry)) != entry.entry_hash:
                    return _bad(checked, entry.id, f"entry {entry.id} was altered: its hash does not match")
                prev, expected, checked = entry.entry_hash, expected + 1, checked + 1
    except ValueError as exc:  # a value edited into something the column type cannot read back
        return _bad(checked, expected, f"entry {expected} cannot be read: {exc}")
    if expected <= head_id:
        return _bad(checked, expected, f"{_span(expected, head_id)} missing at the tail")
    if prev != head_hash:
        return _bad(checked, head_id or None, "the head row does not match the last entry")
    newest = session.scalar(select(func.max(AuditEntry.id)))
    if newest is not None and newest > head_id:
        # Under READ COMMITTED a legitimate append may have committed since the head was read.
        again = session.get(AuditHead, HEAD_ID, populate_existing=True)
        if again is None or newest > again.last_id:
            return _bad(checked, head_id + 1, f"entries after {head_id} were added behind the head row")
    return VerifyResult(ok=True, checked=checked, first_bad_id=None, reason=None)


def _span(first: int, last: int) -> str:
    return f"entry {first} is" if first == last else f"entries {first}..{last} are"


def _bad(checked: int, entry_id: int | None, reason: str) -> VerifyResult:
    return VerifyResult(ok=False, checked=checked, first_bad_id=entry_id, reason=reason)


def _rows() -> Select[Any]:
    # Plain rows, not ORM objects: nothing lands in the identity map, so memory stays flat on long chains
    # and the caller's own objects are untouched. Column types still apply (UTC times, parsed JSON).
    return select(AuditEntry.__table__)


def _fields(entry: Any) -> dict[str, Any]:
    return entry_fields(
        entry_id=entry.id,
        at=entry.at,
        actor=entry.actor,
        action=entry.action,
        recording_sid=entry.recording_sid,
        client_ip=entry.client_ip,
        user_agent=entry.user_agent,
        detail=entry.detail,
    )


def export(session: Session, *, since: datetime | None, fmt: Literal["jsonl", "csv"]) -> Iterator[str]:
    """Entries in id order (from ``since`` on, when given), each chunk ending in a newline.

    JSONL lines are canonical JSON with every hashed field plus ``prev_hash`` and ``entry_hash``: enough to
    re-verify the chain outside callvault. CSV starts with a header; ``detail`` is a JSON cell, and text
    cells a spreadsheet would run as a formula are prefixed with ``'`` (OWASP CSV injection), so re-verify
    from JSONL, not CSV. The session must stay open while the iterator is consumed.
    """
    if fmt not in ("jsonl", "csv"):
        raise InvalidInput("export format must be jsonl or csv")
    if since is not None and since.tzinfo is None:
        raise InvalidInput("export start must be timezone-aware")
    query = _rows().order_by(AuditEntry.id)
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    rows = _export_rows(session, query)
    if fmt == "jsonl":
        return (canonical_json(row) + "\n" for row in rows)
    return _csv_lines(rows)


def _export_rows(session: Session, query: Select[Any]) -> Iterator[dict[str, Any]]:
    # Closed even when the consumer stops early: a streaming (server-side) cursor must not be left open.
    with closing(session.execute(query.execution_options(yield_per=_STREAM_BATCH))) as entries:
        for entry in entries:
            row = _fields(entry)
            row["prev_hash"] = entry.prev_hash
            row["entry_hash"] = entry.entry_hash
            yield row


def _csv_lines(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")

    def line(values: Iterable[Any]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(values)
        return buffer.getvalue()

    yield line(EXPORT_COLUMNS)
    for row in rows:
        row["detail"] = canonical_json(row["detail"]) if row["detail"] is not None else ""
        yield line(_defuse(row[name]) for name in EXPORT_COLUMNS)


def _defuse(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def list_entries(
    session: Session,
    *,
    limit: int,
    before_id: int | None = None,
    action: str | None = None,
    recording_sid: str | None = None,
) -> list[AuditEntry]:
    """Newest first, at most ``limit`` (1..1000) entries; ``before_id`` pages back from an entry id."""
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIST_LIMIT}")
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    if action is not None:
        query = query.where(AuditEntry.action == action)
    if recording_sid is not None:
        query = query.where(AuditEntry.recording_sid == sids.recording_sid(recording_sid))
    return list(session.scalars(query))


__all__ = ["EXPORT_COLUMNS", "VerifyResult", "append", "export", "list_entries", "verify"]
