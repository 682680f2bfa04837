"""One attempt at one recording: fetch metadata → stream media into the store → verify → delete at Twilio.

Every stage is safe to repeat, and the row's ``stage`` says where a restarted worker resumes:

* ``fetch``: nothing trustworthy is stored yet. Re-running overwrites the same key.
* ``verify``: an object was written; read it back and compare with what was sent. A mismatch sends the
  recording back to ``fetch``; the Twilio copy is untouched.
* ``delete_twilio``: verified. When resuming here after a crash, verify again (the object may have changed
  while nobody held the lease) and ask Twilio whether the recording still exists before deleting, so a crash
  between Twilio's 204 and our state write never causes a second DELETE.

Nothing is deleted at Twilio unless the stored copy verified in this attempt, and a second download of the
media agreed with it byte for byte (a complete, well-formed body can still differ from what Twilio holds;
nothing in one response shows it, so the deletion waits for two downloads that agree).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterator
from datetime import datetime

from sqlalchemy.orm import Session

from callvault.context import Context
from callvault.db.models import RecordingStatus, Stage
from callvault.errors import (
    MediaNotReady,
    MediaTooLarge,
    NotAudio,
    PayloadTooLarge,
    StorageError,
    TwilioError,
    TwilioRateLimited,
)
from callvault.pipeline.failpoints import NONE, Failpoints
from callvault.pipeline.lease import Lease
from callvault.pipeline.outcomes import Interrupted, Permanent, RetryLater
from callvault.storage.base import PutResult
from callvault.storage.keys import CONTENT_TYPES, recording_key

log = logging.getLogger(__name__)

# Twilio may answer 404 for media for a few seconds after the callback (TWILIO.md): retry soon.
NOT_READY_DELAY = 3.0
AuditHook = Callable[[Session, str, dict[str, object]], None]


class Transfer:
    """Runs one attempt for one leased recording. Raises an :mod:`~callvault.pipeline.outcomes` outcome or
    returns normally when the recording reached its final state."""

    def __init__(
        self,
        ctx: Context,
        lease: Lease,
        *,
        stop: threading.Event,
        clock: Callable[[], datetime],
        failpoints: Failpoints = NONE,
        audit: AuditHook | None = None,
    ) -> None:
        self.ctx = ctx
        self.lease = lease
        self.claim = lease.claim
        self.stop = stop
        self.clock = clock
        self.failpoints = failpoints
        self.audit = audit

    def run(self) -> None:
        try:
            self._run()
        except TwilioRateLimited as exc:
            raise RetryLater(f"Twilio rate limit: {exc.message}", delay=exc.retry_after) from exc
        except MediaNotReady as exc:
            raise RetryLater(f"media not ready at Twilio yet: {exc.message}", delay=NOT_READY_DELAY) from exc
        except (MediaTooLarge, PayloadTooLarge) as exc:
            raise Permanent(f"{exc.message} (CALLVAULT_MAX_MEDIA_MB); the Twilio copy is kept") from exc
        except NotAudio as exc:
            raise RetryLater(f"Twilio answered something that is not audio: {exc.message}") from exc
        except TwilioError as exc:
            raise RetryLater(f"Twilio: {exc.message}") from exc
        except StorageError as exc:
            raise RetryLater(f"storage: {exc.message}") from exc

    def _run(self) -> None:
        stage = self.claim.stage
        resumed_at_delete = stage is Stage.DELETE_TWILIO
        stored: PutResult | None = None
        if stage is Stage.FETCH:
            stored = self._fetch_and_store()
            stage = Stage.VERIFY
        if stage is Stage.VERIFY or resumed_at_delete:
            self._verify(stored)
            self.failpoints.hit("after_verify", self.claim.sid)
            if not self.ctx.settings.delete_from_twilio:
                now = self.clock()
                self.lease.finish({"stage": Stage.DONE, "status": RecordingStatus.STORED, "stored_at": now})
                return
            if not resumed_at_delete:  # confirmed before delete_twilio was first written
                self._confirm_at_twilio(stored.sha256 if stored else self.claim.sha256)
            self.lease.write({"stage": Stage.DELETE_TWILIO, "stored_at": self.clock(), "last_error": None})
            self.failpoints.hit("before_twilio_delete", self.claim.sid)
        self._delete_at_twilio(check_first=resumed_at_delete)

    # -- fetch --------------------------------------------------------------------------------------
    def _fetch_and_store(self) -> PutResult:
        settings = self.ctx.settings
        meta = self.ctx.gateway.fetch_metadata(self.claim.account_sid, self.claim.sid)
        if meta is None:
            raise RetryLater("Twilio does not know this recording (yet)")
        if meta.account_sid != self.claim.account_sid:
            raise Permanent("Twilio reports the recording under another account")
        if meta.status in ("absent", "failed"):
            code = f" (error {meta.error_code})" if meta.error_code else ""
            raise Permanent(f"Twilio reports the recording {meta.status}{code}: there is no media to keep")
        if meta.status not in ("completed", "deleted"):
            raise RetryLater(f"Twilio reports the recording {meta.status}", delay=NOT_READY_DELAY)
        key = recording_key(
            account_sid=meta.account_sid,
            recording_sid=meta.sid,
            recorded_at=meta.date_created,
            media_format=settings.media_format,
        )
        self.lease.write(
            {
                "call_sid": meta.call_sid,
                "conference_sid": meta.conference_sid,
                "duration_seconds": meta.duration_seconds,
                "channels": meta.channels,
                "source": meta.source,
                "recorded_at": meta.date_created,
                "storage_key": key,
            }
        )
        self.failpoints.hit("after_metadata", self.claim.sid)
        max_bytes = settings.max_media_mb * 1024 * 1024
        with self.ctx.gateway.open_media(
            self.claim.account_sid, self.claim.sid, settings.media_format
        ) as media:
            expected_type = CONTENT_TYPES[settings.media_format]
            if media.content_type != expected_type:
                raise NotAudio(f"asked for {expected_type}, got {media.content_type}")
            result = self.ctx.store.put(
                key, self._guarded(media.chunks), content_type=media.content_type, max_bytes=max_bytes
            )
        self.failpoints.hit("after_upload", self.claim.sid)
        self.lease.write(
            {
                "stage": Stage.VERIFY,
                "content_type": CONTENT_TYPES[settings.media_format],
                "size_bytes": result.size,
                "sha256": result.sha256,
                "store_checksum": result.checksum,
                "uploaded_at": self.clock(),
            }
        )
        return result

    def _guarded(self, chunks: Iterator[bytes], *, failpoints: bool = True) -> Iterator[bytes]:
        """Pass chunks through, renewing the lease and honouring shutdown between them."""
        for index, chunk in enumerate(chunks):
            if self.stop.is_set():
                raise Interrupted("worker is shutting down")
            if failpoints and index == 1:
                self.failpoints.hit("mid_download", self.claim.sid)
            if failpoints and index == 160:  # ~10 MiB in: past the first multipart part, mid-upload
                self.failpoints.hit("mid_upload", self.claim.sid)
            self.lease.renew_if_due()
            yield chunk

    # -- verify -------------------------------------------------------------------------------------
    def _verify(self, stored: PutResult | None) -> None:
        key = stored.key if stored else self.claim.storage_key
        size = stored.size if stored else self.claim.size_bytes
        checksum = stored.checksum if stored else self.claim.store_checksum
        if key is None or size is None or checksum is None:
            self.lease.write({"stage": Stage.FETCH})
            raise RetryLater("nothing recorded as stored yet; fetching again", delay=0)
        found = self.ctx.store.stat(key)
        if found is None or found.size != size or found.checksum != checksum:
            what = "missing" if found is None else f"size {found.size} / checksum {found.checksum}"
            self.lease.write({"stage": Stage.FETCH, "stored_at": None})
            raise RetryLater(
                f"stored copy did not verify (expected size {size}, found {what}); fetching again"
            )

    def _confirm_at_twilio(self, sha256: str | None) -> None:
        """Download the media again, without storing it, and compare digests with the verified copy.

        On a mismatch the copy is not trusted: back to ``fetch``, Twilio's copy untouched. A body that differs
        on every download fails visibly after the attempt budget.
        """
        account, sid = self.claim.account_sid, self.claim.sid
        digest = hashlib.sha256()
        try:
            with self.ctx.gateway.open_media(account, sid, self.ctx.settings.media_format) as media:
                for chunk in self._guarded(media.chunks, failpoints=False):
                    digest.update(chunk)
        except MediaNotReady:
            if self.ctx.gateway.fetch_metadata(account, sid) is None:
                return  # gone from Twilio meanwhile: nothing left there to compare with, or to delete
            raise
        if sha256 is None or digest.hexdigest() != sha256:
            self.lease.write({"stage": Stage.FETCH, "stored_at": None})
            raise RetryLater("Twilio's media differed between two downloads; fetching again")

    # -- delete at Twilio ---------------------------------------------------------------------------
    def _delete_at_twilio(self, *, check_first: bool) -> None:
        sid, account = self.claim.sid, self.claim.account_sid
        if check_first:
            # The lease must outlive the DELETE so no other worker starts on it meanwhile; on the straight
            # path the delete_twilio stage write just extended it.
            self.lease.renew()
        if check_first and self.ctx.gateway.fetch_metadata(account, sid) is None:
            deleted_now = False
        else:
            deleted_now = self.ctx.gateway.delete_recording(account, sid)
        self.failpoints.hit("after_twilio_delete", sid)
        detail: dict[str, object] = {"already_gone": not deleted_now}

        def audit(session: Session) -> None:
            if self.audit is not None:
                self.audit(session, sid, detail)

        self.lease.finish(
            {
                "stage": Stage.DONE,
                "status": RecordingStatus.STORED,
                "twilio_deleted_at": self.clock(),
                "last_error": None,
            },
            also=audit,
        )
