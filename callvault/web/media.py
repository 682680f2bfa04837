"""``GET /media/{token}``: serve one stored object named by a signed token, with HTTP Range support.

Used for the file store (which cannot sign URLs itself) and for proxy mode (any store; the storage URL is
never exposed). The token is the only authority: no session is consulted and no key is ever taken from the
request outside a token that verifies (``callvault.playback.signing``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from callvault.playback import signing
from callvault.storage.base import Store
from callvault.web.deps import ContextDep

router = APIRouter()

_RANGE = re.compile(r"\Abytes=(\d*)-(\d*)\Z")


class RangeNotSatisfiableError(Exception):
    """The ``Range`` asks only for bytes past the end of the object (answered with 416)."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive byte span one ``Range`` header asks for, clipped to the object.

    ``None`` means "serve the whole object": no header, or one RFC 9110 §14.2 lets us ignore (malformed,
    another unit, several ranges). Raises :class:`RangeNotSatisfiableError` when no requested byte exists.
    """
    if header is None:
        return None
    match = _RANGE.match(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix range: the last N bytes
        length = int(last)
        if length == 0 or size == 0:
            raise RangeNotSatisfiableError
        return max(size - length, 0), size - 1
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        raise RangeNotSatisfiableError
    end = int(last) if last else size - 1
    return start, min(end, size - 1)


@router.api_route("/media/{token}", methods=["GET", "HEAD"])
def media(*, token: str, request: Request, ctx: ContextDep) -> Response:
    """Stream the object a valid, unexpired token names; 403 for anything else."""
    grant = signing.verify(ctx.secret_key, token, now=datetime.now(UTC))
    return serve_grant(ctx.store, grant, request)


def serve_grant(store: Store, grant: signing.MediaGrant, request: Request) -> Response:
    """Answer ``request`` (GET or HEAD, with or without one Range) with the object ``grant`` names."""
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Disposition": f'inline; filename="{grant.filename}"',
        "Cache-Control": "private, no-store",
        "Referrer-Policy": "no-referrer",
    }
    try:
        span = parse_range(request.headers.get("range"), grant.size)
    except RangeNotSatisfiableError:
        headers["Content-Range"] = f"bytes */{grant.size}"
        return Response(status_code=416, headers=headers)
    if span is None:
        start, end, status = 0, grant.size - 1, 200
    else:
        start, end = span
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{grant.size}"
    headers["Content-Length"] = str(max(end - start + 1, 0))
    if request.method == "HEAD" or grant.size == 0:
        return Response(status_code=status, headers=headers, media_type=grant.content_type)
    # Opening first surfaces a missing object as a 404 before any header is sent.
    chunks = store.open(grant.key, start=start, end=end)
    first = next(chunks, b"")

    def body() -> Iterator[bytes]:
        yield first
        yield from chunks

    return StreamingResponse(body(), status_code=status, headers=headers, media_type=grant.content_type)
