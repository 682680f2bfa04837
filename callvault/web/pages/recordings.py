"""``/`` (recordings list, search, status filter, paging), ``/recordings/{sid}`` (player and metadata) and
the admins' delete form. Listeners see only their accounts; another account's recording is a 404 page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from callvault import sids
from callvault.db.models import Recording, RecordingStatus
from callvault.db.recordings import list_recordings
from callvault.playback import service
from callvault.web.deps import ContextDep, client_ip
from callvault.web.pages.templating import render
from callvault.web.sessions import CallerDep, check_form_csrf

router = APIRouter()

PAGE_SIZE = 25
STATUSES = [status.value for status in RecordingStatus]


def _search_term(q: str | None) -> tuple[str | None, str | None]:
    """The exact SID to search for, or an error message for the form."""
    term = (q or "").strip()
    if not term:
        return None, None
    if any(sids.is_sid(term, prefix) for prefix in ("RE", "CA", "AC")):
        return term, None
    return None, "Search by a RecordingSid (RE…), CallSid (CA…) or AccountSid (AC…): 34 characters."


@router.get("/", response_class=HTMLResponse)
def recordings(
    *,
    request: Request,
    ctx: ContextDep,
    caller: CallerDep,
    q: str | None = None,
    status: str | None = None,
    cursor: str | None = None,
) -> HTMLResponse:
    term, error = _search_term(q)
    status_value = status if status in STATUSES else None
    rows: list[Recording] = []
    next_cursor = None
    if error is None:
        with ctx.db.read() as session:
            rows, next_cursor = list_recordings(
                session,
                limit=PAGE_SIZE,
                status=status_value,
                accounts=caller.principal.accounts,
                search=term,
                cursor=cursor or None,
            )
    return render(
        request,
        "recordings.html",
        ctx=ctx,
        caller=caller,
        rows=rows,
        q=(q or "").strip(),
        status=status_value or "",
        statuses=STATUSES,
        error=error,
        next_cursor=next_cursor,
        paged=bool(cursor),
    )


@router.get("/recordings/{sid}", response_class=HTMLResponse)
def recording(*, sid: str, request: Request, ctx: ContextDep, caller: CallerDep) -> HTMLResponse:
    with ctx.db.read() as session:
        rec = service.visible_recording(session, caller.principal, sid)
    base = service.link_base(ctx.settings, str(request.base_url))
    return render(
        request,
        "recording.html",
        ctx=ctx,
        caller=caller,
        rec=rec,
        playable=service.playable(rec),
        permalink=f"{base}/r/{rec.sid}",
        ttl=ctx.settings.playback_ttl_seconds,
    )


@router.post("/recordings/{sid}/delete")
def delete(
    *,
    sid: str,
    request: Request,
    ctx: ContextDep,
    caller: CallerDep,
    csrf_token: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """Admins: delete the stored copy; the row stays as a tombstone."""
    check_form_csrf(ctx, caller, submitted=csrf_token)
    rec = service.delete_recording(
        ctx,
        caller.principal,
        sid,
        client_ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
    )
    return RedirectResponse(f"/recordings/{rec.sid}", status_code=303)
