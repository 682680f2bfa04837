"""The Twilio REST and media gateway (INTERFACE STUB: implemented by the twilio/ work package)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class RecordingMetadata:
    sid: str
    account_sid: str
    call_sid: str | None
    conference_sid: str | None
    date_created: datetime  # tz-aware UTC
    duration_seconds: int | None
    channels: int | None
    source: str | None
    status: str  # Twilio's: processing | completed | absent | failed | deleted ...
    error_code: int | None


@dataclass
class MediaStream:
    content_type: str
    content_length: int | None
    chunks: Iterator[bytes]


class Gateway(Protocol):
    def fetch_metadata(self, account_sid: str, recording_sid: str) -> RecordingMetadata | None: ...

    def open_media(
        self, account_sid: str, recording_sid: str, media_format: str
    ) -> AbstractContextManager[MediaStream]: ...

    def delete_recording(self, account_sid: str, recording_sid: str) -> bool: ...
