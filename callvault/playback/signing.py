"""callvault's own signed media URLs: ``/media/{token}``.

A token names exactly one stored object and carries everything needed to serve it (key, content type,
size, download name) plus an expiry, authenticated with HMAC-SHA256. The media route never takes a key
from anywhere but a token that verifies, so a caller can neither pick another object nor extend a link.

Token = ``base64url(json payload) "." base64url(HMAC-SHA256(k, payload part))``, where ``k`` is derived
from the process secret key for this one purpose (the same secret also keys sessions and CSRF tokens; a
distinct derived key means a value signed for one purpose can never verify for another).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from callvault import sids
from callvault.errors import Forbidden, InvalidSid

_PURPOSE = b"callvault/media-url/v1"
# A generous bound: tokens are a few hundred bytes; anything longer is not ours and is not parsed.
_MAX_TOKEN_CHARS = 2048


@dataclass(frozen=True)
class MediaGrant:
    """What one verified token allows: reading one object until ``expires_at``."""

    recording_sid: str
    key: str
    content_type: str
    size: int
    expires_at: datetime

    @property
    def filename(self) -> str:
        ext = {"audio/wav": "wav", "audio/x-wav": "wav", "audio/mpeg": "mp3"}.get(self.content_type, "bin")
        return f"{self.recording_sid}.{ext}"


def _mac(secret_key: bytes, payload: bytes) -> bytes:
    derived = hmac.new(secret_key, _PURPOSE, hashlib.sha256).digest()
    return hmac.new(derived, payload, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(secret_key: bytes, grant: MediaGrant) -> str:
    """The URL-safe token for ``grant`` (no ``/``, ``+`` or ``=``, so it fits one path segment)."""
    body = {
        "s": sids.recording_sid(grant.recording_sid),
        "k": grant.key,
        "t": grant.content_type,
        "z": grant.size,
        "e": int(grant.expires_at.timestamp()),
    }
    payload = _b64(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
    return f"{payload}.{_b64(_mac(secret_key, payload.encode('ascii')))}"


def verify(secret_key: bytes, token: str, *, now: datetime) -> MediaGrant:
    """Return the grant ``token`` carries; raise :class:`Forbidden` when it was not signed with
    ``secret_key``, was altered in any way, is malformed, or has expired at ``now``.

    The signature is checked (in constant time) before the payload is parsed at all.
    """
    if len(token) > _MAX_TOKEN_CHARS or token.count(".") != 1:
        raise Forbidden("this link is not valid")
    payload, mac = token.split(".")
    try:
        given = _unb64(mac)
        expected = _mac(secret_key, payload.encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise Forbidden("this link is not valid") from None
    if not hmac.compare_digest(given, expected):
        raise Forbidden("this link is not valid")
    try:
        body = json.loads(_unb64(payload))
        grant = MediaGrant(
            recording_sid=sids.recording_sid(body["s"]),
            key=str(body["k"]),
            content_type=str(body["t"]),
            size=int(body["z"]),
            expires_at=datetime.fromtimestamp(int(body["e"]), UTC),
        )
    except (ValueError, KeyError, TypeError, binascii.Error, InvalidSid):
        # Only reachable with a valid MAC, i.e. a token we signed in an older format.
        raise Forbidden("this link is not valid") from None
    if now >= grant.expires_at:
        raise Forbidden("this link has expired")
    return grant
