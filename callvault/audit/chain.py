"""How one audit entry is hashed. Kept apart from the storage code so an auditor can read the whole rule here.

``entry_hash = sha256(prev_hash + canonical_json(fields))``, where ``prev_hash`` is the previous entry's
``entry_hash`` as 64 lowercase hex characters (64 zeros for entry 1), and ``canonical_json`` is the UTF-8 of
``json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)`` over
``id, at, actor, action, recording_sid, client_ip, user_agent, detail`` with ``at`` as ISO 8601 in UTC with
microseconds (``2026-01-02T03:04:05.000006+00:00``). An exported JSONL line carries everything needed to
recompute it.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any, Final

from callvault.errors import InvalidInput

GENESIS_HASH: Final = "0" * 64
HASHED_FIELDS: Final = ("id", "at", "actor", "action", "recording_sid", "client_ip", "user_agent", "detail")


def iso(at: datetime) -> str:
    """The one textual form of an entry's time: UTC, microseconds always present."""
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no whitespace, ASCII only, no NaN/Infinity."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def normalise_detail(detail: dict[str, Any] | None) -> dict[str, Any] | None:
    """``detail`` as it will read back from the JSON column (tuples become lists, keys become strings), so
    the hash computed at append time equals the hash recomputed from the stored row."""
    if detail is None:
        return None
    try:
        normalised: dict[str, Any] = json.loads(canonical_json(detail))
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"audit detail must be plain JSON: {exc}") from None
    return normalised


def entry_fields(
    *,
    entry_id: int,
    at: datetime,
    actor: str,
    action: str,
    recording_sid: str | None,
    client_ip: str | None,
    user_agent: str | None,
    detail: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        "id": entry_id,
        "at": iso(at),
        "actor": actor,
        "action": action,
        "recording_sid": recording_sid,
        "client_ip": client_ip,
        "user_agent": user_agent,
        "detail": detail,
    }


def entry_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    """SHA-256 (hex) chaining ``fields`` to the previous entry."""
    return hashlib.sha256((prev_hash + canonical_json(fields)).encode("ascii")).hexdigest()
