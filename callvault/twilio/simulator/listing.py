"""The list endpoint: Twilio's filters and its keyset paging (``PageToken``), newest first."""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request

from callvault.twilio.simulator.responses import API_PREFIX, recording_json
from callvault.twilio.simulator.state import SimRecording, SimState

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
# ``DateCreated<=2024-01-31`` parses as the key ``DateCreated<`` with the value ``2024-01-31``; twilio-python
# sends the same keys URL-encoded, with a full timestamp as value. Only the day counts (Twilio: "on or
# before/after midnight of this date"); the simulator treats both bounds as whole days, inclusive.
_FILTER_KEYS = (
    "DateCreated",
    "DateCreated<",
    "DateCreated>",
    "CallSid",
    "ConferenceSid",
    "IncludeSoftDeleted",
)


class BadQueryError(ValueError):
    pass


def page(state: SimState, request: Request, *, base_url: str) -> dict[str, Any]:
    """One page of Twilio's list response for the request's filters and paging parameters."""
    account_sid = str(request.path_params["account"])
    query = request.query_params
    page_size = _int(query.get("PageSize"), "PageSize", default=DEFAULT_PAGE_SIZE)
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise BadQueryError(f"PageSize must be between 1 and {MAX_PAGE_SIZE}")
    page_number = _int(query.get("Page"), "Page", default=0)
    matching = sorted(
        (rec for rec in state.recordings() if _matches(rec, request)),
        key=lambda rec: (rec.date_created, rec.sid),
        reverse=True,
    )
    token = query.get("PageToken")
    start = _after_token(state, matching, token) if token else page_number * page_size
    items = matching[start : start + page_size]
    filters = [(key, query[key]) for key in _FILTER_KEYS if key in query]
    path = f"{API_PREFIX}/Accounts/{account_sid}/Recordings.json"

    def uri(number: int, token: str | None) -> str:
        params = [*filters, ("PageSize", str(page_size)), ("Page", str(number))]
        if token:
            params.append(("PageToken", token))
        return f"{path}?{urlencode(params)}"

    has_more = start + page_size < len(matching)
    return {
        "recordings": [recording_json(rec, base_url=base_url) for rec in items],
        "page": page_number,
        "page_size": page_size,
        "start": start,
        "end": start + max(len(items) - 1, 0),
        "uri": uri(page_number, token),
        "first_page_uri": uri(0, None),
        "previous_page_uri": None,
        "next_page_uri": uri(page_number + 1, "PA" + items[-1].sid) if has_more and items else None,
    }


def _matches(recording: SimRecording, request: Request) -> bool:
    query = request.query_params
    if recording.account_sid != request.path_params["account"]:
        return False
    if recording.deleted and query.get("IncludeSoftDeleted", "").lower() != "true":
        return False
    day = recording.date_created.date()
    if "DateCreated" in query and day != _day(query["DateCreated"], "DateCreated"):
        return False
    if "DateCreated<" in query and day > _day(query["DateCreated<"], "DateCreated<="):
        return False
    if "DateCreated>" in query and day < _day(query["DateCreated>"], "DateCreated>="):
        return False
    if "CallSid" in query and recording.call_sid != query["CallSid"]:
        return False
    return not ("ConferenceSid" in query and recording.conference_sid != query["ConferenceSid"])


def _after_token(state: SimState, ordered: list[SimRecording], token: str) -> int:
    """Index of the first recording after the one named by the token (keyset paging: stable when
    recordings are added or deleted between pages)."""
    anchor = state.recording(token.removeprefix("PA"))
    if not token.startswith("PA") or anchor is None:
        raise BadQueryError("invalid PageToken")
    key = (anchor.date_created, anchor.sid)
    for index, recording in enumerate(ordered):
        if (recording.date_created, recording.sid) < key:
            return index
    return len(ordered)


def _day(value: str, key: str) -> date:
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        raise BadQueryError(f"{key} must be a date YYYY-MM-DD") from None


def _int(value: str | None, key: str, *, default: int) -> int:
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise BadQueryError(f"{key} must be an integer") from None
