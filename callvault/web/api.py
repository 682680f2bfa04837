"""The JSON API, ``/api/v1``: list and show recordings, issue playback links, delete (admins).

Callers authenticate with ``Authorization: Bearer <token>`` or a browser session (plus ``X-CSRF-Token``
on state changes). Listeners only ever see their own accounts; another account's recording is a 404.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from callvault import sids
from callvault.db.models import RecordingStatus
from callvault.db.recordings import list_recordings, recording_view
from callvault.errors import InvalidInput
from callvault.playback import service
from callvault.web.deps import ContextDep, client_ip
from callvault.web.sessions import ApiCallerDep

router = APIRouter(prefix="/api/v1")

MAX_PAGE = 200


def day_bound(value: str | None, *, field: str, end: bool) -> datetime | None:
    """An ISO date (``2024-05-01``) or datetime as a UTC bound. A date as the end of a range includes that
    whole day (the repository's upper bound is exclusive)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return start + timedelta(days=1) if end else start
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{field} must be an ISO 8601 date (YYYY-MM-DD) or date-time") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def status_filter(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return RecordingStatus(value).value
    except ValueError:
        choices = ", ".join(s.value for s in RecordingStatus)
        raise InvalidInput(f"status must be one of {choices}") from None


@router.get("/recordings")
def recordings(
    *,
    ctx: ContextDep,
    caller: ApiCallerDep,
    account: str | None = None,
    call_sid: str | None = None,
    status: str | None = None,
    from_: Annotated[str | None, Query(alias="from")] = None,
    to: str | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> dict[str, Any]:
    """Newest first; ``next_cursor`` pages on. Only recordings of accounts the caller may hear."""
    with ctx.db.read() as session:
        rows, next_cursor = list_recordings(
            session,
            limit=limit,
            status=status_filter(status),
            accounts=caller.principal.accounts,
            account_sid=sids.account_sid(account, field="account") if account else None,
            call_sid=sids.call_sid(call_sid, field="call_sid") if call_sid else None,
            created_from=day_bound(from_, field="from", end=False),
            created_to=day_bound(to, field="to", end=True),
            cursor=cursor or None,
        )
        return {"recordings": [recording_view(rec) for rec in rows], "next_cursor": next_cursor}


@router.get("/recordings/{sid}")
def recording(*, sid: str, ctx: ContextDep, caller: ApiCallerDep) -> dict[str, Any]:
    with ctx.db.read() as session:
        return recording_view(service.visible_recording(session, caller.principal, sid))


@router.post("/recordings/{sid}/playback")
def playback(*, sid: str, request: Request, ctx: ContextDep, caller: ApiCallerDep) -> dict[str, str]:
    """A playback URL valid for ``CALLVAULT_PLAYBACK_TTL_SECONDS``; the issuance is audited."""
    link = service.issue_link(
        ctx,
        caller.principal,
        sid,
        client_ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
        via="api",
        base_url=str(request.base_url),
    )
    return {"url": link.url, "expires_at": link.expires_at.isoformat()}


@router.delete("/recordings/{sid}")
def delete(*, sid: str, request: Request, ctx: ContextDep, caller: ApiCallerDep) -> dict[str, Any]:
    """Admins only: delete the stored copy; the row stays as a tombstone (status ``deleted``)."""
    rec = service.delete_recording(
        ctx,
        caller.principal,
        sid,
        client_ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
    )
    return recording_view(rec)
