"""The simulator's in-memory state: recordings, queued faults and the event log, all behind one lock.

The HTTP handlers (event loop thread) and the test or benchmark driving the simulator (other threads) share
it, so every read and write goes through :class:`SimState`'s methods.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Literal

from callvault import sids
from callvault.twilio.simulator import audio

EndpointKind = Literal["metadata", "media", "delete", "list"]
EventKind = Literal["metadata", "media", "delete", "list", "cdn"]
MediaFormat = Literal["wav", "mp3"]

ENDPOINT_KINDS: Final = ("metadata", "media", "delete", "list")
FAULTS: Final = (
    "not_ready",
    "rate_limit",
    "server_error",
    "truncate",
    "reset",
    "wrong_content_type",
    "slow",
    "mutate",
    "redirect",
)
# Which faults make sense where: body faults need a body; ``reset`` on delete means "deleted, but the
# answer was lost" (the retry then sees 404); a redirect is only ever seen on media.
ALLOWED_FAULTS: Final[dict[str, frozenset[str]]] = {
    "metadata": frozenset(FAULTS) - {"redirect"},
    "media": frozenset(FAULTS),
    "list": frozenset(FAULTS) - {"redirect"},
    "delete": frozenset({"not_ready", "rate_limit", "server_error", "reset", "wrong_content_type"}),
}


@dataclass
class SimRecording:
    """One recording held by the simulated Twilio account. Mutated only under the state lock."""

    sid: str
    account_sid: str
    call_sid: str
    date_created: datetime
    size_bytes: int  # of the WAV media
    channels: int
    seed: int
    source: str = "RecordVerb"
    status: str = "completed"
    error_code: int | None = None
    conference_sid: str | None = None
    deleted: bool = False

    @property
    def exact_duration(self) -> float:
        return audio.wav_duration(size_bytes=self.size_bytes, channels=self.channels)

    @property
    def duration(self) -> int:
        """Whole seconds, as Twilio reports it."""
        return round(self.exact_duration)

    def media_size(self, media_format: MediaFormat) -> int:
        return self.size_bytes if media_format == "wav" else audio.mp3_size(self.exact_duration)

    def iter_media(self, media_format: MediaFormat, *, chunk_size: int = audio.CHUNK_SIZE) -> Iterator[bytes]:
        """The exact bytes the simulator serves for this recording, streamed."""
        if media_format == "wav":
            return audio.iter_wav(
                size_bytes=self.size_bytes, channels=self.channels, seed=self.seed, chunk_size=chunk_size
            )
        return audio.iter_mp3(size_bytes=self.media_size("mp3"), chunk_size=chunk_size)

    def media_bytes(self, media_format: MediaFormat = "wav") -> bytes:
        """The whole media in memory: for tests with small recordings only."""
        return b"".join(self.iter_media(media_format))

    def sha256(self, media_format: MediaFormat = "wav") -> str:
        digest = hashlib.sha256()
        for chunk in self.iter_media(media_format):
            digest.update(chunk)
        return digest.hexdigest()


@dataclass(frozen=True)
class Fault:
    """One injected failure, consumed by one request.

    ``status`` picks 500 or 503 for ``server_error``; ``retry_after`` is the Retry-After seconds of a
    ``rate_limit``; ``delay_seconds`` is the pause between chunks of a ``slow`` body.
    """

    name: str
    status: int = 500
    retry_after: int = 1
    delay_seconds: float = 0.05


@dataclass
class Event:
    """One request the simulator answered, in arrival order. ``t`` and ``t_done`` are ``time.monotonic()``
    at arrival and when the last byte was sent (or the connection given up); ``completed`` is True only when
    the whole response went out."""

    seq: int
    t: float
    method: str
    path: str
    kind: EventKind
    sid: str | None
    status: int
    bytes_sent: int = 0
    completed: bool = False
    t_done: float | None = None
    fault: str | None = None
    detail: str = ""
    user: str | None = None  # the Basic-auth username sent (AccountSid or API key SID), never the secret
    query: str = ""  # the raw query string


@dataclass
class SimState:
    account_sid: str
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _recordings: dict[str, SimRecording] = field(default_factory=dict)
    _faults: dict[tuple[str | None, str], deque[Fault]] = field(default_factory=dict)
    _events: dict[int, Event] = field(default_factory=dict)  # by seq; insertion order is arrival order
    _next_seq: int = 1  # never reset, so a request in flight across reset() cannot touch a new event
    _fail_rate: float = 0.0
    # Seeded, reproducible fault injection: not a secret (S311).
    _fail_rng: random.Random = field(default_factory=lambda: random.Random(0))  # noqa: S311
    _cdn_tokens: dict[str, tuple[str, MediaFormat]] = field(default_factory=dict)

    # -- recordings ------------------------------------------------------------------------------------
    def add_recording(
        self,
        *,
        size_bytes: int | None = None,
        duration_seconds: float | None = None,
        channels: int = 1,
        call_sid: str | None = None,
        date_created: datetime | None = None,
        source: str = "RecordVerb",
        status: str = "completed",
        error_code: int | None = None,
        conference_sid: str | None = None,
        seed: int | None = None,
        sid: str | None = None,
    ) -> SimRecording:
        """Add a recording whose WAV media has ``size_bytes`` exactly, or lasts ``duration_seconds``."""
        if (size_bytes is None) == (duration_seconds is None):
            raise ValueError("give exactly one of size_bytes and duration_seconds")
        if size_bytes is None:
            assert duration_seconds is not None
            if channels not in (1, 2) or duration_seconds < 0:
                raise ValueError("channels must be 1 or 2 and the duration not negative")
            size_bytes = audio.wav_size(duration_seconds=duration_seconds, channels=channels)
        audio.wav_header(size_bytes=size_bytes, channels=channels)  # validates size and channels
        if sid is not None and not sids.is_sid(sid, "RE"):
            raise ValueError("sid must be a RecordingSid")
        created = (date_created or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
        recording = SimRecording(
            sid=sid or "RE" + secrets.token_hex(16),
            account_sid=self.account_sid,
            call_sid=call_sid or "CA" + secrets.token_hex(16),
            date_created=created,
            size_bytes=size_bytes,
            channels=channels,
            seed=secrets.randbits(32) if seed is None else seed,
            source=source,
            status=status,
            error_code=error_code,
            conference_sid=conference_sid,
        )
        with self._lock:
            if recording.sid in self._recordings:
                raise ValueError(f"recording {recording.sid} exists")
            self._recordings[recording.sid] = recording
        return recording

    def recording(self, sid: str) -> SimRecording | None:
        """The recording, deleted or not."""
        with self._lock:
            return self._recordings.get(sid)

    def recordings(self) -> list[SimRecording]:
        with self._lock:
            return list(self._recordings.values())

    def set_status(self, sid: str, status: str, *, error_code: int | None = None) -> None:
        with self._lock:
            recording = self._recordings[sid]
            recording.status = status
            recording.error_code = error_code

    def delete(self, sid: str) -> bool:
        """Mark deleted; False when unknown or already deleted."""
        with self._lock:
            recording = self._recordings.get(sid)
            if recording is None or recording.deleted:
                return False
            recording.deleted = True
            return True

    # -- faults ----------------------------------------------------------------------------------------
    def add_fault(self, kind: str, fault: Fault, *, sid: str | None = None, times: int = 1) -> None:
        """Queue ``fault`` for the next ``times`` requests of ``kind`` (for recording ``sid``, or for any
        recording when ``sid`` is None; recording-specific faults are consumed first)."""
        if kind not in ALLOWED_FAULTS:
            raise ValueError(f"unknown endpoint kind {kind!r}; one of {', '.join(ENDPOINT_KINDS)}")
        if fault.name not in ALLOWED_FAULTS[kind]:
            raise ValueError(f"fault {fault.name!r} does not apply to {kind} requests")
        if fault.name == "server_error" and fault.status not in (500, 503):
            raise ValueError("server_error status must be 500 or 503")
        with self._lock:
            self._faults.setdefault((sid, kind), deque()).extend([fault] * times)

    def take_fault(self, kind: str, sid: str | None) -> Fault | None:
        with self._lock:
            for key in ((sid, kind), (None, kind)) if sid is not None else ((None, kind),):
                queue = self._faults.get(key)
                if queue:
                    return queue.popleft()
            if self._fail_rate and self._fail_rng.random() < self._fail_rate:
                if self._fail_rng.random() < 0.5:
                    return Fault("rate_limit")
                return Fault("server_error")
        return None

    def set_fail_rate(self, rate: float, *, seed: int = 0) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError("fail_rate must be between 0 and 1")
        with self._lock:
            self._fail_rate = rate
            self._fail_rng = random.Random(seed)  # noqa: S311

    # -- CDN redirect tokens ---------------------------------------------------------------------------
    def issue_cdn_token(self, sid: str, media_format: MediaFormat) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._cdn_tokens[token] = (sid, media_format)
        return token

    def redeem_cdn_token(self, token: str) -> tuple[str, MediaFormat] | None:
        with self._lock:
            return self._cdn_tokens.get(token)

    # -- events ----------------------------------------------------------------------------------------
    def log_event(
        self,
        *,
        method: str,
        path: str,
        kind: EventKind,
        sid: str | None,
        status: int,
        fault: str | None = None,
        detail: str = "",
        t: float | None = None,
        user: str | None = None,
        query: str = "",
    ) -> int:
        with self._lock:
            seq = self._next_seq
            self._next_seq += 1
            arrived = time.monotonic() if t is None else t
            self._events[seq] = Event(
                seq,
                arrived,
                method,
                path,
                kind,
                sid,
                status,
                fault=fault,
                detail=detail,
                user=user,
                query=query,
            )
            return seq

    def finish_event(self, seq: int, *, bytes_sent: int, completed: bool) -> None:
        with self._lock:
            event = self._events.get(seq)
            if event is None:  # forgotten by reset() while the response was streaming
                return
            event.bytes_sent = bytes_sent
            event.completed = completed
            event.t_done = time.monotonic()

    def events(self, kind: str | None = None, sid: str | None = None) -> list[Event]:
        """Copies of the logged events in arrival order, optionally only one kind and/or one recording."""
        with self._lock:
            return [
                dataclasses.replace(event)
                for event in self._events.values()
                if (kind is None or event.kind == kind) and (sid is None or event.sid == sid)
            ]

    def reset(self) -> None:
        """Forget recordings, faults, events, tokens and the fail rate."""
        with self._lock:
            self._recordings.clear()
            self._faults.clear()
            self._events.clear()
            self._cdn_tokens.clear()
            self._fail_rate = 0.0
            self._fail_rng = random.Random(0)  # noqa: S311
