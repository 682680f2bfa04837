"""Reconciliation: catch recordings whose callback never arrived (lost, refused while the database was down,
or Elastic SIP Trunking recordings that send none — TWILIO.md) by walking Twilio's list API."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime

from callvault.context import Context
from callvault.db.models import RecordingStatus, Stage
from callvault.db.recordings import insert_if_absent
from callvault.twilio.gateway import RecordingMetadata

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReconcileReport:
    seen: int
    queued: int
    skipped_not_completed: int


def reconcile(ctx: Context, *, account_sid: str, since: date, until: date | None = None) -> ReconcileReport:
    """Queue every completed recording Twilio lists for ``account_sid`` between ``since`` and ``until``
    (inclusive, UTC days) that the vault does not know yet. Idempotent: known recordings are left alone, so
    it is safe to run from several workers at once."""
    seen = queued = skipped = 0
    listing = ctx.gateway.list_recordings(
        account_sid=account_sid, created_on_or_after=since, created_on_or_before=until
    )
    for meta in listing:
        seen += 1
        if meta.status != "completed":
            skipped += 1
            continue
        if _queue(ctx, meta):
            queued += 1
            log.info("reconcile: queued %s, which no callback announced", meta.sid)
    return ReconcileReport(seen=seen, queued=queued, skipped_not_completed=skipped)


def _queue(ctx: Context, meta: RecordingMetadata) -> bool:
    now = datetime.now(UTC)
    with ctx.db.write() as session:
        return insert_if_absent(
            session,
            {
                "sid": meta.sid,
                "account_sid": meta.account_sid,
                "call_sid": meta.call_sid,
                "conference_sid": meta.conference_sid,
                "duration_seconds": meta.duration_seconds,
                "channels": meta.channels,
                "source": meta.source,
                "recorded_at": meta.date_created,
                "status": RecordingStatus.PENDING,
                "stage": Stage.FETCH,
                "attempts": 0,
                "created_at": now,
                "next_attempt_at": now,
            },
        )
