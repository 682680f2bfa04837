"""Object keys, built only from validated input:
``{prefix}/{AccountSid}/{YYYY}/{MM}/{DD}/{RecordingSid}.{ext}``."""

from __future__ import annotations

from datetime import UTC, datetime

from callvault import sids
from callvault.errors import InvalidInput
from callvault.settings import MediaFormat

CONTENT_TYPES = {MediaFormat.WAV: "audio/wav", MediaFormat.MP3: "audio/mpeg"}
MAX_KEY_LENGTH = 512


def recording_key(
    *, account_sid: str, recording_sid: str, recorded_at: datetime, media_format: MediaFormat
) -> str:
    """The key (without the store's own prefix) of one recording. SIDs are validated here, again, so no
    caller can smuggle a path separator or ``..`` into a key."""
    account = sids.account_sid(account_sid)
    recording = sids.recording_sid(recording_sid)
    day = recorded_at.astimezone(UTC)
    return f"{account}/{day:%Y}/{day:%m}/{day:%d}/{recording}.{MediaFormat(media_format).value}"


def validate_key(key: str) -> str:
    """Return ``key`` when it is a safe relative key; raise :class:`InvalidInput` otherwise.

    Every store checks keys again before touching a path or an object name (django-storages' ``safe_join``
    idea): no absolute keys, no backslashes, no NUL or other control characters, no empty, ``.`` or ``..``
    segments, and no segment starting with ``.`` (the file store's temporary files start with one, so a key
    can never name or collide with them).
    """
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidInput(f"storage key must be 1..{MAX_KEY_LENGTH} characters")
    if key.startswith("/"):
        raise InvalidInput("storage key must be relative")
    if "\\" in key or any(ord(char) < 0x20 or ord(char) == 0x7F for char in key):
        raise InvalidInput("storage key must not contain backslashes or control characters")
    for segment in key.split("/"):
        if not segment or segment.startswith("."):
            raise InvalidInput("storage key segments must be non-empty and must not start with '.'")
    return key
