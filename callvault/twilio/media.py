"""Streaming a recording's media from Twilio with httpx, checked to be audio before anyone stores it.

The URL is built only from the configured API base and validated SIDs, never taken from a request or a
callback. Redirects are followed by hand so the Basic credentials go only to the API's own origin
(TWILIO.md: if media redirects to a CDN host, do not send the credentials there).
"""

from __future__ import annotations

import base64
import functools
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final

import certifi
import httpx

from callvault.errors import (
    InvalidInput,
    MediaNotReady,
    MediaTooLarge,
    NotAudio,
    TwilioError,
    TwilioRateLimited,
)
from callvault.twilio.retry_after import parse_retry_after

CHUNK_SIZE: Final = 64 * 1024
MAX_REDIRECTS: Final = 5
_SNIFF_BYTES: Final = 12
_REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})
# Content types Twilio (or a CDN in front of it) may use, normalised to one per format.
_CONTENT_TYPES: Final[dict[str, dict[str, str]]] = {
    "wav": {"audio/x-wav": "audio/wav", "audio/wav": "audio/wav", "audio/wave": "audio/wav"},
    "mp3": {"audio/mpeg": "audio/mpeg", "audio/mp3": "audio/mpeg"},
}


@dataclass
class MediaStream:
    """An open media download. ``content_type`` is normalised (``audio/wav`` or ``audio/mpeg``);
    ``chunks`` yields the body in pieces of about 64 KiB and may be iterated once."""

    content_type: str
    content_length: int | None
    chunks: Iterator[bytes]


class MediaDownloader:
    """Opens media downloads; thread-safe (one shared httpx connection pool)."""

    def __init__(
        self, *, base_url: str, credentials: tuple[str, str], timeout_seconds: float, max_media_bytes: int
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._origin = _origin(httpx.URL(self._base_url))
        user, secret = credentials
        self._authorization = "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()
        self._max_bytes = max_media_bytes
        # follow_redirects=False: redirects are followed by _get, which decides where credentials go.
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout_seconds), follow_redirects=False, verify=_tls_context()
        )

    @contextmanager
    def open(self, *, account_sid: str, recording_sid: str, media_format: str) -> Iterator[MediaStream]:
        """``account_sid`` and ``recording_sid`` must already be validated SIDs."""
        if media_format not in _CONTENT_TYPES:
            raise InvalidInput("media_format must be 'wav' or 'mp3'")
        url = f"{self._base_url}/2010-04-01/Accounts/{account_sid}/Recordings/{recording_sid}.{media_format}"
        response = self._get(httpx.URL(url))
        try:
            yield self._checked(response, media_format=media_format, recording_sid=recording_sid)
        finally:
            response.close()

    def close(self) -> None:
        self._http.close()

    def _get(self, url: httpx.URL) -> httpx.Response:
        for _ in range(MAX_REDIRECTS + 1):
            headers = {"Accept": "audio/*"}
            if _origin(url) == self._origin:
                headers["Authorization"] = self._authorization
            try:
                response = self._http.send(self._http.build_request("GET", url, headers=headers), stream=True)
            except httpx.HTTPError as exc:
                raise TwilioError(f"media download failed: {type(exc).__name__}") from None
            location = response.headers.get("location")
            if response.status_code not in _REDIRECT_STATUSES or not location:
                return response
            response.close()
            url = url.join(location)
            if url.scheme not in ("http", "https"):
                raise TwilioError("media redirected to a non-HTTP URL")
        raise TwilioError(f"media redirected more than {MAX_REDIRECTS} times")

    def _checked(self, response: httpx.Response, *, media_format: str, recording_sid: str) -> MediaStream:
        status = response.status_code
        if status == 404:
            raise MediaNotReady(f"media of {recording_sid} not available yet (404)")
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            raise TwilioRateLimited("Twilio rate limit on media (429)", retry_after=retry_after)
        if status != 200:
            raise TwilioError(
                f"Twilio answered {status} to the media request for {recording_sid}", status=status
            )
        raw_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        content_type = _CONTENT_TYPES[media_format].get(raw_type)
        if content_type is None:
            # e.g. Twilio's XML/JSON error document with a 200: never store it as the recording.
            raise NotAudio(f"media of {recording_sid} is {raw_type or 'untyped'}, not {media_format} audio")
        length = _content_length(response)
        if length is not None and length > self._max_bytes:
            raise MediaTooLarge(
                f"media of {recording_sid} is {length} bytes, above the limit of {self._max_bytes}"
            )
        body = response.iter_bytes(chunk_size=CHUNK_SIZE)
        head = _read_head(body)
        if not _looks_like(media_format, head):
            raise NotAudio(f"media of {recording_sid} does not start like a {media_format} file")
        chunks = _counted(head, body, declared=length, limit=self._max_bytes, recording_sid=recording_sid)
        return MediaStream(content_type=content_type, content_length=length, chunks=chunks)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One certificate-verifying TLS context per process: loading the CA bundle takes ~0.1 s, too much to
    repeat for every gateway (httpx builds a new one per client by default)."""
    return ssl.create_default_context(cafile=certifi.where())


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host, url.port or default


def _content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length")
    if value is None:
        return None
    try:
        length = int(value)
    except ValueError:
        raise TwilioError("media has an unreadable Content-Length") from None
    if length < 0:
        raise TwilioError("media has a negative Content-Length")
    return length


def _read_head(body: Iterator[bytes]) -> bytes:
    """At least the first bytes needed to recognise the format (fewer only when the body is shorter)."""
    head = b""
    try:
        while len(head) < _SNIFF_BYTES:
            chunk = next(body, None)
            if chunk is None:
                break
            head += chunk
    except httpx.HTTPError as exc:
        raise TwilioError(f"media download failed: {type(exc).__name__}") from None
    return head


def _looks_like(media_format: str, head: bytes) -> bool:
    if media_format == "wav":
        return head[:4] == b"RIFF" and head[8:12] == b"WAVE"
    # An ID3v2 tag, or an MPEG audio frame: 11 bits of frame sync (0xFFE).
    return head[:3] == b"ID3" or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0)


def _counted(
    head: bytes, body: Iterator[bytes], *, declared: int | None, limit: int, recording_sid: str
) -> Iterator[bytes]:
    received = len(head)
    if received > limit:
        raise MediaTooLarge(f"media of {recording_sid} exceeds the limit of {limit} bytes")
    yield head
    try:
        for chunk in body:
            received += len(chunk)
            if received > limit:
                raise MediaTooLarge(f"media of {recording_sid} exceeds the limit of {limit} bytes")
            yield chunk
    except (httpx.HTTPError, httpx.StreamError) as exc:
        # RemoteProtocolError for a body cut short, ReadError for a reset, ReadTimeout for a stall.
        raise TwilioError(f"media download of {recording_sid} broke off: {type(exc).__name__}") from None
    if declared is not None and received != declared:
        raise TwilioError(f"media of {recording_sid} ended after {received} of {declared} bytes")
