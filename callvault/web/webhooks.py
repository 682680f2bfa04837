"""Twilio webhooks: the recording status callback and the <Record action>.

The signature is checked first, against the configured public URL plus the path and query exactly as
received (TWILIO.md: rebuilding a different URL than Twilio signed is the most reported pitfall). Then the
fields. Then one durable insert. No network I/O happens inside the request.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from urllib.parse import parse_qs

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from callvault.context import Context
from callvault.errors import InvalidInput, SignatureInvalid
from callvault.pipeline.intake import parse_status_callback, record_status_callback, single
from callvault.twilio.signature import signed_url, validate_signature
from callvault.web.deps import ContextDep

log = logging.getLogger(__name__)
router = APIRouter(prefix="/twilio", tags=["twilio"])

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


async def _verified_params(request: Request, ctx: Context) -> dict[str, list[str]]:
    """Parse the form body and check X-Twilio-Signature before anything else is read from it."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        raise InvalidInput("expected an application/x-www-form-urlencoded body")
    body = await request.body()
    try:
        params = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise InvalidInput("the body is not UTF-8") from None
    # The AccountSid only selects which account's AuthToken checks the signature (TWILIO.md: always the
    # token of the account that owns the resource); nothing else is read before the check passes.
    claimed = single(params, "AccountSid") if len(params.get("AccountSid", [])) == 1 else None
    token = ctx.auth_tokens.get(claimed or "") or next(iter(ctx.auth_tokens.values()), None)
    if token is None:
        raise SignatureInvalid("no Twilio account is configured")
    url = signed_url(
        ctx.settings.public_url,
        request.scope["raw_path"].decode("latin-1"),
        request.scope.get("query_string", b""),
    )
    validate_signature(
        auth_token=token, url=url, params=params, signature=request.headers.get("x-twilio-signature")
    )
    return params


@router.post("/recording-status", status_code=204)
async def recording_status(request: Request, ctx: ContextDep) -> Response:
    """recordingStatusCallback target: 204 once the recording is durably queued (or known)."""
    params = await _verified_params(request, ctx)
    callback = parse_status_callback(
        params, api_base_url=ctx.settings.twilio_api_base_url, accounts=frozenset(ctx.auth_tokens)
    )
    # The insert is short; run it off the event loop so a busy database never stalls other requests.
    result = await run_in_threadpool(record_status_callback, ctx.db, callback, now=datetime.now(UTC))
    log.info("recording %s %s: %s", callback.recording_sid, callback.status, result.value)
    return Response(status_code=204)


@router.post("/record-action")
async def record_action(request: Request, ctx: ContextDep) -> Response:
    """<Record action> target. Twilio requires TwiML here; the status callback, not this request, says the
    recording is ready, so nothing is queued."""
    await _verified_params(request, ctx)
    return Response(EMPTY_TWIML, media_type="text/xml")
