"""The Twilio REST and media gateway: the only code that calls Twilio.

REST calls (fetch, delete, list) go through twilio-python, pointed at ``api_base_url`` by an HTTP client that
rewrites ``https://api.twilio.com`` and refuses every other host. Media is streamed with httpx
(:mod:`callvault.twilio.media`) from a URL built only from the configured base and validated SIDs.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Protocol

from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from callvault import sids
from callvault.errors import InvalidInput, TwilioError
from callvault.twilio.media import MediaDownloader, MediaStream
from callvault.twilio.rest import TWILIO_API, BaseUrlHttpClient

if TYPE_CHECKING:
    from callvault.settings import Settings

__all__ = ["Gateway", "MediaStream", "RecordingMetadata", "TwilioAccount", "TwilioGateway"]


# twilio-python reads TWILIO_EDGE/TWILIO_REGION from the environment when given an empty mapping, which
# would change the host it calls; a non-empty mapping without those keys keeps it on api.twilio.com.
_NO_ENVIRONMENT = {"CALLVAULT": "1"}


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
    # Voice Recording Encryption: {encrypted_cek, iv, public_key_sid} when the media is encrypted.
    encryption_details: Mapping[str, Any] | None = None


class Gateway(Protocol):
    def fetch_metadata(self, account_sid: str, recording_sid: str) -> RecordingMetadata | None:
        """Twilio's metadata for the recording; ``None`` when Twilio answers 404 (unknown or deleted).

        Raises :class:`TwilioRateLimited` on 429 and :class:`TwilioError` on any other failure.
        """
        ...

    def open_media(
        self, account_sid: str, recording_sid: str, media_format: str
    ) -> AbstractContextManager[MediaStream]:
        """Open the recording's media (``"wav"`` or ``"mp3"``) as a stream of audio bytes.

        On entry the response is known to be audio (status, Content-Type and first bytes checked), or
        :class:`MediaNotReady` (404), :class:`TwilioRateLimited` (429), :class:`NotAudio` or
        :class:`TwilioError` is raised. Iterating ``chunks`` raises :class:`TwilioError` when the body is
        cut short or exceeds the size limit. Memory stays bounded by one chunk; the connection is released
        on exit.
        """
        ...

    def delete_recording(self, account_sid: str, recording_sid: str) -> bool:
        """Delete the recording at Twilio: True when Twilio answered 204, False on 404 (already gone).

        Raises :class:`TwilioRateLimited` on 429 and :class:`TwilioError` otherwise.
        """
        ...

    def list_recordings(
        self,
        *,
        account_sid: str,
        created_on_or_after: date | None,
        created_on_or_before: date | None,
        page_size: int = 1000,
    ) -> Iterator[RecordingMetadata]:
        """Every recording of the account created in the inclusive UTC day range, following pages lazily."""
        ...

    def close(self) -> None:
        """Release connections; the gateway is not used afterwards."""
        ...


@dataclass(frozen=True)
class TwilioAccount:
    """Who callvault is at Twilio, and where Twilio is (``api_base_url``: the simulator in tests)."""

    account_sid: str
    auth_token: str = field(repr=False)
    api_key_sid: str | None = None
    api_key_secret: str | None = field(default=None, repr=False)
    api_base_url: str = TWILIO_API

    @property
    def rest_credentials(self) -> tuple[str, str]:
        """Basic-auth pair for REST and media: the API key when set (TWILIO.md: keep the auth token for
        signature validation), else AccountSid:AuthToken."""
        if self.api_key_sid and self.api_key_secret:
            return self.api_key_sid, self.api_key_secret
        return self.account_sid, self.auth_token

    @classmethod
    def from_settings(cls, settings: Settings) -> TwilioAccount | None:
        """The configured account; ``None`` in demo mode (no Twilio credentials)."""
        if settings.demo or settings.twilio_account_sid is None or settings.twilio_auth_token is None:
            return None
        secret = settings.twilio_api_key_secret
        return cls(
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token.get_secret_value(),
            api_key_sid=settings.twilio_api_key_sid,
            api_key_secret=secret.get_secret_value() if secret is not None else None,
            api_base_url=settings.twilio_api_base_url.rstrip("/"),
        )


class TwilioGateway:
    """:class:`Gateway` over Twilio's REST API. Safe to share between threads: each thread gets its own
    twilio-python client (requests sessions are not documented as thread-safe); media uses one httpx client,
    whose connection pool is."""

    def __init__(self, account: TwilioAccount, *, timeout_seconds: float, max_media_bytes: int) -> None:
        self.account = account
        self._base_url = account.api_base_url.rstrip("/")
        self._timeout = timeout_seconds
        self._local = threading.local()
        self._lock = threading.Lock()
        self._http_clients: list[BaseUrlHttpClient] = []
        self._media = MediaDownloader(
            base_url=self._base_url,
            credentials=account.rest_credentials,
            timeout_seconds=timeout_seconds,
            max_media_bytes=max_media_bytes,
        )

    def fetch_metadata(self, account_sid: str, recording_sid: str) -> RecordingMetadata | None:
        account, recording = sids.account_sid(account_sid), sids.recording_sid(recording_sid)
        try:
            instance = self._client().api.v2010.accounts(account).recordings(recording).fetch()
        except TwilioRestException as exc:
            if exc.status == 404:
                return None
            raise TwilioError(
                f"Twilio answered {exc.status} to fetching {recording}", status=exc.status
            ) from None
        except (TwilioException, ValueError) as exc:  # ValueError: a body that is not JSON
            raise TwilioError(
                f"unusable answer from Twilio fetching {recording}: {type(exc).__name__}"
            ) from None
        return _metadata(instance)

    def open_media(
        self, account_sid: str, recording_sid: str, media_format: str
    ) -> AbstractContextManager[MediaStream]:
        account, recording = sids.account_sid(account_sid), sids.recording_sid(recording_sid)
        return self._media.open(account_sid=account, recording_sid=recording, media_format=media_format)

    def delete_recording(self, account_sid: str, recording_sid: str) -> bool:
        account, recording = sids.account_sid(account_sid), sids.recording_sid(recording_sid)
        try:
            answer = self._client().api.v2010.accounts(account).recordings(recording).delete_with_http_info()
        except TwilioRestException as exc:
            if exc.status == 404:  # already gone (TWILIO.md)
                return False
            raise TwilioError(
                f"Twilio answered {exc.status} to deleting {recording}", status=exc.status
            ) from None
        except TwilioException as exc:
            raise TwilioError(
                f"unusable answer from Twilio deleting {recording}: {type(exc).__name__}"
            ) from None
        if answer.status_code != 204:
            # Any other 2xx is not Twilio's documented answer: do not assume the audio is gone.
            raise TwilioError(
                f"Twilio answered {answer.status_code} to deleting {recording}", status=answer.status_code
            )
        return True

    def list_recordings(
        self,
        *,
        account_sid: str,
        created_on_or_after: date | None,
        created_on_or_before: date | None,
        page_size: int = 1000,
    ) -> Iterator[RecordingMetadata]:
        """Every recording of the account created in the (inclusive, whole-day, UTC) range, newest first,
        following ``next_page_uri`` lazily. Raises like :meth:`fetch_metadata`, also between pages."""
        account = sids.account_sid(account_sid)
        if not 1 <= page_size <= 1000:
            raise InvalidInput("page_size must be between 1 and 1000")
        filters: dict[str, Any] = {"page_size": page_size}
        # Passed as YYYY-MM-DD strings: twilio-python sends them as DateCreated>=/<= unchanged, which is
        # the documented form (a datetime would be sent as a full timestamp).
        if created_on_or_after is not None:
            filters["date_created_after"] = created_on_or_after.isoformat()
        if created_on_or_before is not None:
            filters["date_created_before"] = created_on_or_before.isoformat()
        return self._list(account, filters)

    def close(self) -> None:
        """Release every connection pool. The gateway must not be used afterwards."""
        with self._lock:
            clients, self._http_clients = self._http_clients, []
        for client in clients:
            client.close()
        self._media.close()

    # -- internals ---------------------------------------------------------------------------------------
    def _list(self, account: str, filters: dict[str, Any]) -> Iterator[RecordingMetadata]:
        try:
            for instance in self._client().api.v2010.accounts(account).recordings.stream(**filters):
                yield _metadata(instance)
        except TwilioRestException as exc:
            raise TwilioError(
                f"Twilio answered {exc.status} to listing recordings", status=exc.status
            ) from None
        except (TwilioException, ValueError) as exc:
            raise TwilioError(
                f"unusable answer from Twilio listing recordings: {type(exc).__name__}"
            ) from None

    def _client(self) -> Any:
        client = getattr(self._local, "client", None)
        if client is None:
            http_client = BaseUrlHttpClient(base_url=self._base_url, timeout=self._timeout)
            username, password = self.account.rest_credentials
            client = Client(
                username,
                password,
                account_sid=self.account.account_sid,
                http_client=http_client,
                environment=_NO_ENVIRONMENT,
            )
            self._local.client = client
            with self._lock:
                self._http_clients.append(http_client)
        return client


def _metadata(instance: Any) -> RecordingMetadata:
    """Twilio's recording resource as callvault's value object; SIDs are validated before they go anywhere."""
    created = instance.date_created
    if not isinstance(created, datetime):
        raise TwilioError("Twilio returned a recording without a readable date_created")
    created = created.replace(tzinfo=UTC) if created.tzinfo is None else created.astimezone(UTC)
    try:
        sid = sids.recording_sid(instance.sid)
        account = sids.account_sid(instance.account_sid)
        call = sids.call_sid(instance.call_sid) if instance.call_sid else None
        conference = sids.require_sid(instance.conference_sid, "CF") if instance.conference_sid else None
    except InvalidInput as exc:
        raise TwilioError(f"Twilio returned a malformed SID: {exc.message}") from None
    return RecordingMetadata(
        sid=sid,
        account_sid=account,
        call_sid=call,
        conference_sid=conference,
        date_created=created,
        duration_seconds=_non_negative_int(instance.duration),
        channels=_non_negative_int(instance.channels),
        source=str(instance.source) if instance.source is not None else None,
        status=str(instance.status or "unknown"),
        error_code=_non_negative_int(instance.error_code),
        encryption_details=instance.encryption_details or None,
    )


def _non_negative_int(value: object) -> int | None:
    # Twilio sends duration as a string, "-1" while a recording is still processing.
    try:
        number = int(str(value))
    except ValueError:
        return None
    return number if number >= 0 else None
