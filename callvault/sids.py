"""Twilio SID validation: every SID is matched against its exact pattern before it touches a key, a path,
a URL or a query (TWILIO.md: two uppercase letters + 32 lowercase hex digits)."""

from __future__ import annotations

import re
from typing import Final

from callvault.errors import InvalidSid

_HEX32: Final = "[0-9a-f]{32}"
PATTERNS: Final[dict[str, re.Pattern[str]]] = {
    prefix: re.compile(rf"\A{prefix}{_HEX32}\Z") for prefix in ("AC", "CA", "RE", "CF", "SK", "CR")
}
_NAMES: Final = {
    "AC": "AccountSid",
    "CA": "CallSid",
    "RE": "RecordingSid",
    "CF": "ConferenceSid",
    "SK": "API key SID",
    "CR": "public key SID",
}


def is_sid(value: object, prefix: str) -> bool:
    """True when ``value`` is a string matching the exact SID pattern for ``prefix``."""
    return isinstance(value, str) and PATTERNS[prefix].match(value) is not None


def require_sid(value: object, prefix: str, *, field: str | None = None) -> str:
    """Return ``value`` when it is a well-formed SID of kind ``prefix``, else raise :class:`InvalidSid`."""
    if is_sid(value, prefix):
        assert isinstance(value, str)
        return value
    name = field or _NAMES[prefix]
    raise InvalidSid(f"{name} must be '{prefix}' followed by 32 lowercase hex digits")


def account_sid(value: object, *, field: str = "AccountSid") -> str:
    return require_sid(value, "AC", field=field)


def call_sid(value: object, *, field: str = "CallSid") -> str:
    return require_sid(value, "CA", field=field)


def recording_sid(value: object, *, field: str = "RecordingSid") -> str:
    return require_sid(value, "RE", field=field)
