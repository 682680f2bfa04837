"""Operator actions on the queue."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import update

from callvault.db.database import Database
from callvault.db.models import Recording, RecordingStatus
from callvault.db.recordings import get_recording
from callvault.errors import Conflict


def retry_recording(db: Database, sid: str) -> None:
    """Make a failed or waiting recording due now, with a fresh attempt budget. The stage is kept, so a
    recording already verified in the vault resumes at its Twilio deletion, never re-fetched needlessly."""
    now = datetime.now(UTC)
    with db.write() as session:
        rec = get_recording(session, sid)
        if rec.status not in (RecordingStatus.FAILED, RecordingStatus.PENDING):
            raise Conflict(f"{sid} is {rec.status}; only failed or pending recordings can be retried")
        session.execute(
            update(Recording)
            .where(Recording.sid == sid)
            .values(status=RecordingStatus.PENDING, attempts=0, next_attempt_at=now)
        )
