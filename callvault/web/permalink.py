"""``GET /r/{sid}``: the stable link to a recording.

Each request checks the caller and answers 302 to a freshly issued, seconds-lived URL. A media element
re-requests its ``src`` on every seek and resume (Range requests), so a short TTL never breaks playback:
each of those requests comes back here and gets a new link (S3.md: the known fix for expiring media URLs).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from callvault.playback import service
from callvault.web.deps import ContextDep, client_ip
from callvault.web.sessions import CallerDep

router = APIRouter()


@router.api_route("/r/{sid}", methods=["GET", "HEAD"])
def permalink(*, sid: str, request: Request, ctx: ContextDep, caller: CallerDep) -> RedirectResponse:
    """302 to a new playback URL for an authorized caller; 404 when the caller may not hear the recording."""
    link = service.issue_link(
        ctx,
        caller.principal,
        sid,
        client_ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
        via="permalink",
        base_url=str(request.base_url),
    )
    return RedirectResponse(
        link.url,
        status_code=302,
        # The target URL is a bearer credential for its lifetime: keep it out of caches and Referer headers.
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )
