"""Object keys, built only from validated input: ``{prefix}/{AccountSid}/{YYYY}/{MM}/{DD}/{RecordingSid}.{ext}``."""

from __future__ import annotations

from datetime import UTC, datetime

from callvault import sids
from callvault.settings import MediaFormat


def recording_key(
    *, account_sid: str, recording_sid: str, recorded_at: datetime, media_format: MediaFormat
) -> str:
    """The key (without the store's own prefix) of one recording. SIDs are validated here, again, so no
    caller can smuggle a path separator or ``..`` into a key."""
    account = sids.account_sid(account_sid)
    recording = sids.recording_sid(recording_sid)
    day = recorded_at.astimezone(UTC)
    return f"{account}/{day:%Y}/{day:%m}/{day:%d}/{recording}.{MediaFormat(media_format).value}"


CONTENT_TYPES = {MediaFormat.WAV: "audio/wav", MediaFormat.MP3: "audio/mpeg"}
