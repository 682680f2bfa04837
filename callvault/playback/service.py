"""The playback service: issue a seconds-lived link to one recording for one caller, and delete recordings.

Routes (``/api/v1/.../playback``, the ``/r/{sid}`` permalink) and the ``presign`` command call this; it
decides, the store and the signer do the I/O. Every link issued is written to the audit trail in the
same transaction that looked the recording up, so there is no link without its audit entry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.orm import Session

from callvault import sids
from callvault.audit import trail
from callvault.auth.principal import Principal
from callvault.db.database import Database
from callvault.db.models import Recording, RecordingStatus, Stage
from callvault.errors import Conflict, Forbidden, InvalidInput, NotFound
from callvault.playback import signing
from callvault.settings import PlaybackMode, Settings
from callvault.storage.base import Store

VIAS = frozenset({"api", "permalink", "cli"})
MAX_TTL_SECONDS = 3600


class PlaybackContext(Protocol):
    """The parts of :class:`callvault.context.Context` playback needs (the web app passes its Context; the
    ``presign`` command, which never talks to Twilio, a :class:`StandaloneContext`)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def db(self) -> Database: ...
    @property
    def store(self) -> Store: ...
    @property
    def secret_key(self) -> bytes: ...


@dataclass(frozen=True)
class StandaloneContext:
    settings: Settings
    db: Database
    store: Store
    secret_key: bytes = field(repr=False)


@dataclass(frozen=True)
class Link:
    """A URL that plays one recording until ``expires_at``.

    ``mode`` is ``presigned`` (S3 serves it), ``signed`` (callvault serves a file-store object) or ``proxy``
    (callvault streams from any store; the storage URL is never exposed).
    """

    url: str
    expires_at: datetime
    mode: str


def visible_recording(
    session: Session, principal: Principal, sid: str, *, for_update: bool = False
) -> Recording:
    """The recording ``sid`` when ``principal`` may hear its account.

    Raises :class:`InvalidSid` for a malformed SID and :class:`NotFound` both when it does not exist and when
    it belongs to another account: a listener cannot tell the two apart, so existence is never revealed.
    """
    sid = sids.recording_sid(sid)
    rec = session.get(Recording, sid, with_for_update=for_update)
    if rec is None or not principal.can_hear(rec.account_sid):
        raise NotFound(f"no recording {sid}")
    return rec


def playable(rec: Recording) -> bool:
    """True when the vault holds a verified copy that can be played."""
    # A pending recording at the delete_twilio stage has a verified copy in the vault already: only the
    # deletion at Twilio is outstanding, so it can be heard from the vault.
    if rec.storage_key is None:
        return False
    if rec.status == RecordingStatus.STORED:
        return True
    return rec.status == RecordingStatus.PENDING and rec.stage in (Stage.DELETE_TWILIO, Stage.DONE)


def issue_link(
    ctx: PlaybackContext,
    principal: Principal,
    sid: str,
    *,
    client_ip: str | None,
    user_agent: str | None,
    via: str,
    ttl_seconds: int | None = None,
    base_url: str | None = None,
    now: datetime | None = None,
) -> Link:
    """Issue a playback link for recording ``sid`` to ``principal`` and audit it (``playback.issue``).

    Raises :class:`InvalidSid` / :class:`InvalidInput` for a malformed SID, ``via`` or TTL; :class:`NotFound`
    when the recording does not exist or ``principal`` may not hear its account; :class:`Conflict` when it is
    not (or no longer) in the vault. ``base_url`` (the web layer passes the request's base URL) is used for
    callvault's own ``/media`` URLs as :func:`link_base` says.
    """
    grant, url, mode = _authorize(
        ctx,
        principal,
        sid,
        client_ip=client_ip,
        user_agent=user_agent,
        via=via,
        ttl_seconds=ttl_seconds,
        base_url=base_url,
        now=now,
        stream=False,
    )
    assert url is not None
    return Link(url=url, expires_at=grant.expires_at, mode=mode)


def stream_grant(
    ctx: PlaybackContext,
    principal: Principal,
    sid: str,
    *,
    client_ip: str | None,
    user_agent: str | None,
    now: datetime | None = None,
) -> signing.MediaGrant:
    """Authorize ``principal`` to receive the bytes of ``sid`` in this very response, audited like a link
    (``playback.issue`` with mode ``stream``).

    For media elements requesting the permalink: a browser that followed a 302 sends its later Range
    requests (seek, resume) to the redirect target, not back to the permalink, so a seconds-lived target
    would break seeking. Streaming from the permalink keeps every request coming back through the check.
    """
    grant, _, _ = _authorize(
        ctx,
        principal,
        sid,
        client_ip=client_ip,
        user_agent=user_agent,
        via="permalink",
        ttl_seconds=None,
        base_url=None,
        now=now,
        stream=True,
    )
    return grant


def _authorize(
    ctx: PlaybackContext,
    principal: Principal,
    sid: str,
    *,
    client_ip: str | None,
    user_agent: str | None,
    via: str,
    ttl_seconds: int | None,
    base_url: str | None,
    now: datetime | None,
    stream: bool,
) -> tuple[signing.MediaGrant, str | None, str]:
    if via not in VIAS:
        raise InvalidInput(f"via must be one of {', '.join(sorted(VIAS))}")
    settings = ctx.settings
    ttl = settings.playback_ttl_seconds if ttl_seconds is None else ttl_seconds
    if not 1 <= ttl <= MAX_TTL_SECONDS:
        raise InvalidInput(f"ttl must be between 1 and {MAX_TTL_SECONDS} seconds")
    now = now or datetime.now(UTC)
    # Whole seconds, rounded up: the signed token carries Unix seconds, and rounding down could shorten a
    # 1 s link to nothing.
    expires_at = datetime.fromtimestamp(math.ceil((now + timedelta(seconds=ttl)).timestamp()), UTC)
    with ctx.db.write() as session:
        rec = visible_recording(session, principal, sid)
        if not playable(rec):
            raise Conflict(f"recording {rec.sid} is {rec.status}: there is nothing to play")
        assert rec.storage_key is not None
        content_type = _served_type(rec.content_type)
        grant = signing.MediaGrant(
            recording_sid=rec.sid,
            key=rec.storage_key,
            content_type=content_type,
            size=rec.size_bytes if rec.size_bytes is not None else _stored_size(ctx, rec.storage_key),
            expires_at=expires_at,
        )
        url: str | None = None
        if stream:
            mode = "stream"
        else:
            url, mode = _url_for(ctx, grant, ttl=ttl, base_url=base_url)
        detail: dict[str, Any] = {
            "via": via,
            "mode": mode,
            "ttl": ttl,
            "expires_at": expires_at.isoformat(),
        }
        trail.append(
            session,
            actor=principal.actor,
            action="playback.issue",
            recording_sid=rec.sid,
            client_ip=client_ip,
            user_agent=user_agent,
            detail=detail,
            now=now,
        )
    return grant, url, mode


def _url_for(
    ctx: PlaybackContext, grant: signing.MediaGrant, *, ttl: int, base_url: str | None
) -> tuple[str, str]:
    if ctx.settings.playback_mode is not PlaybackMode.PROXY:
        presigned = ctx.store.presign(
            grant.key, ttl_seconds=ttl, content_type=grant.content_type, filename=grant.filename
        )
        if presigned is not None:
            return presigned, "presigned"
    base = link_base(ctx.settings, base_url)
    mode = "proxy" if ctx.settings.playback_mode is PlaybackMode.PROXY else "signed"
    return f"{base}/media/{signing.sign(ctx.secret_key, grant)}", mode


def _served_type(content_type: str | None) -> str:
    # Links are served inline, on callvault's own origin in file-store and proxy mode: only an audio type
    # is passed through, so a row that somehow names text/html can never become a page of ours.
    if (
        content_type
        and content_type.startswith("audio/")
        and content_type.isascii()
        and ";" not in content_type
    ):
        return content_type
    return "application/octet-stream"


def link_base(settings: Settings, request_base: str | None) -> str:
    """The base of absolute links callvault hands out: CALLVAULT_PUBLIC_URL when the operator set it, else
    the base URL the request came in on (in demo mode the derived default may not be how people reach us),
    else the derived default."""
    if "public_url" in settings.model_fields_set or not request_base:
        return settings.public_url.rstrip("/")
    return request_base.rstrip("/")


def _stored_size(ctx: PlaybackContext, key: str) -> int:
    # Only rows written before the pipeline recorded sizes lack one; ask the store.
    stored = ctx.store.stat(key)
    if stored is None:
        raise Conflict("the stored object is missing")
    return stored.size


def delete_recording(
    ctx: PlaybackContext,
    principal: Principal,
    sid: str,
    *,
    client_ip: str | None,
    user_agent: str | None,
    now: datetime | None = None,
) -> Recording:
    """Delete recording ``sid`` from the vault (admins only) and keep its row as a tombstone.

    Order: the row is locked and marked ``deleted``, then the object is removed from the store, then the
    audit entry (``recording.delete``) is appended, all inside one transaction. If the store refuses, nothing
    changes; if the commit fails after the store deleted, the row still says ``stored`` and a retry finishes
    (deleting a missing object is not an error). A recording still being transferred cannot be deleted
    (:class:`Conflict`): the worker would otherwise put a new copy behind the tombstone.
    """
    if not principal.is_admin:
        raise Forbidden("only admins may delete recordings")
    now = now or datetime.now(UTC)
    with ctx.db.write() as session:
        rec = visible_recording(session, principal, sid, for_update=True)
        if rec.status == RecordingStatus.DELETED:
            raise Conflict(f"recording {rec.sid} is already deleted")
        if rec.status == RecordingStatus.PENDING:
            raise Conflict(f"recording {rec.sid} is still being transferred; delete it once it is stored")
        key = rec.storage_key
        previous = rec.status
        rec.status = RecordingStatus.DELETED
        rec.deleted_at = now
        session.flush()
        if key is not None:
            ctx.store.delete(key)
        trail.append(
            session,
            actor=principal.actor,
            action="recording.delete",
            recording_sid=rec.sid,
            client_ip=client_ip,
            user_agent=user_agent,
            detail={"previous_status": previous, "storage_key": key},
            now=now,
        )
    return rec
