"""Intake: turn a verified recording-status callback into durable work. No network I/O here."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from sqlalchemy import update

from callvault import sids
from callvault.db.database import Database
from callvault.db.models import Recording, RecordingStatus, Stage
from callvault.db.recordings import insert_if_absent
from callvault.errors import Forbidden, InvalidInput

# TWILIO.md: the events of recordingStatusCallback. Only `completed` has media to move.
KNOWN_STATUSES = frozenset({"in-progress", "completed", "absent", "failed"})
_TWILIO_REPORTED = "Twilio reported the recording as "


class IntakeResult(enum.StrEnum):
    QUEUED = "queued"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"
    NOTED_FAILED = "noted-failed"


@dataclass(frozen=True)
class StatusCallback:
    account_sid: str
    recording_sid: str
    call_sid: str | None
    status: str
    duration_seconds: int | None
    channels: int | None
    source: str | None
    started_at: datetime | None
    error_code: str | None


def single(params: Mapping[str, list[str]], name: str) -> str | None:
    """The one value of a form field; repeated fields with different values are refused."""
    values = params.get(name)
    if not values:
        return None
    if len(set(values)) > 1:
        raise InvalidInput(f"{name} is given more than once")
    return values[0]


def parse_status_callback(
    params: Mapping[str, list[str]], *, api_base_url: str, accounts: frozenset[str]
) -> StatusCallback:
    """Validate the fields of a (signature-checked) callback. Unknown parameters are accepted: Twilio says
    the set can grow. SIDs and the status are strict; informational fields are kept only when well formed."""
    account = sids.account_sid(single(params, "AccountSid"))
    if account not in accounts:
        raise Forbidden("AccountSid is not an account this vault keeps recordings for")
    recording = sids.recording_sid(single(params, "RecordingSid"))
    call = single(params, "CallSid")
    if call is not None:
        call = sids.call_sid(call)
    status = single(params, "RecordingStatus")
    if status not in KNOWN_STATUSES:
        raise InvalidInput(f"RecordingStatus must be one of {', '.join(sorted(KNOWN_STATUSES))}")
    _check_recording_url(
        single(params, "RecordingUrl"), api_base_url=api_base_url, account=account, sid=recording
    )
    return StatusCallback(
        account_sid=account,
        recording_sid=recording,
        call_sid=call,
        status=status,
        duration_seconds=_non_negative_int(single(params, "RecordingDuration")),
        channels=_non_negative_int(single(params, "RecordingChannels")),
        source=_short_word(single(params, "RecordingSource")),
        started_at=_rfc2822(single(params, "RecordingStartTime")),
        error_code=_short_word(single(params, "ErrorCode")),
    )


def _check_recording_url(url: str | None, *, api_base_url: str, account: str, sid: str) -> None:
    # callvault never fetches this URL (media URLs are built from settings and validated SIDs); a URL that
    # points anywhere else means the callback is not what it claims to be.
    if url is None:
        return
    expected = urlsplit(f"{api_base_url}/2010-04-01/Accounts/{account}/Recordings/{sid}")
    given = urlsplit(url)
    same_origin = (given.scheme, given.hostname, given.port) == (
        expected.scheme,
        expected.hostname,
        expected.port,
    )
    path_ok = given.path in (
        expected.path,
        expected.path + ".wav",
        expected.path + ".mp3",
        expected.path + ".json",
    )
    if not (same_origin and path_ok) or given.query or given.fragment:
        raise InvalidInput("RecordingUrl does not point at this recording on the configured Twilio API")


def _non_negative_int(value: str | None) -> int | None:
    if value is None or not value.isdigit():
        return None
    return int(value)


def _short_word(value: str | None) -> str | None:
    if value is None or not value.isalnum() or len(value) > 40:
        return None
    return value


def _rfc2822(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo is not None else None


def record_status_callback(db: Database, callback: StatusCallback, *, now: datetime) -> IntakeResult:
    """Make the callback durable. Idempotent: duplicates and retries never create a second unit of work,
    and a late or out-of-order event (``in-progress`` after ``completed``) never downgrades a recording."""
    if callback.status == "in-progress":
        return IntakeResult.IGNORED
    values: dict[str, object] = {
        "sid": callback.recording_sid,
        "account_sid": callback.account_sid,
        "call_sid": callback.call_sid,
        "duration_seconds": callback.duration_seconds,
        "channels": callback.channels,
        "source": callback.source,
        "recorded_at": callback.started_at,
        "created_at": now,
        "next_attempt_at": now,
        "attempts": 0,
        "stage": Stage.FETCH,
    }
    with db.write() as session:
        if callback.status == "completed":
            if insert_if_absent(session, {**values, "status": RecordingStatus.PENDING}):
                return IntakeResult.QUEUED
            # A recording Twilio first reported absent/failed and now reports completed has media after all.
            revived = session.execute(
                update(Recording)
                .where(
                    Recording.sid == callback.recording_sid,
                    Recording.status == RecordingStatus.FAILED,
                    Recording.last_error.startswith(_TWILIO_REPORTED),
                )
                .values(
                    status=RecordingStatus.PENDING, stage=Stage.FETCH, last_error=None, next_attempt_at=now
                )
            )
            return IntakeResult.QUEUED if revived.rowcount else IntakeResult.DUPLICATE  # type: ignore[attr-defined]
        code = f" (error {callback.error_code})" if callback.error_code else ""
        reason = f"{_TWILIO_REPORTED}{callback.status}{code}; there is no media to keep"
        inserted = insert_if_absent(
            session, {**values, "status": RecordingStatus.FAILED, "last_error": reason}
        )
        return IntakeResult.NOTED_FAILED if inserted else IntakeResult.DUPLICATE
