"""Workers: threads that claim due recordings, run one attempt each, and record the outcome.

Any number of worker processes (and threads) share one database: a claim takes a lease; a dead worker's
lease expires and another takes over; SIGTERM makes a worker stop at the next chunk boundary and release its
recording for someone else, without counting the attempt.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from callvault.context import Context
from callvault.db.models import Recording, RecordingStatus
from callvault.db.recordings import Claim, claim_next
from callvault.errors import CallvaultError, Unavailable
from callvault.pipeline.backoff import backoff_delay
from callvault.pipeline.failpoints import NONE, Failpoints
from callvault.pipeline.lease import Lease
from callvault.pipeline.outcomes import Interrupted, LeaseLost, Permanent, RetryLater
from callvault.pipeline.transfer import AuditHook, Transfer

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Worker:
    """``concurrency`` threads working the queue until :meth:`stop`."""

    def __init__(
        self,
        ctx: Context,
        *,
        concurrency: int,
        failpoints: Failpoints = NONE,
        audit: AuditHook | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.ctx = ctx
        self.concurrency = concurrency
        self.failpoints = failpoints
        self.audit = audit
        self.clock = clock
        self.stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._prefix = f"{socket.gethostname()[:30]}:{os.getpid()}:{secrets.token_hex(3)}"

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        for index in range(self.concurrency):
            thread = threading.Thread(
                target=self._loop, args=(index,), name=f"callvault-worker-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def start_reconciler(self, *, account_sid: str) -> None:
        """Walk Twilio's list API every CALLVAULT_RECONCILE_INTERVAL_MINUTES, first after one interval."""
        minutes = self.ctx.settings.reconcile_interval_minutes
        if minutes <= 0:
            return
        thread = threading.Thread(
            target=self._reconcile_loop,
            args=(account_sid, minutes * 60.0),
            name="callvault-reconcile",
            daemon=True,
        )
        thread.start()
        self._threads.append(thread)

    def _reconcile_loop(self, account_sid: str, interval: float) -> None:
        from callvault.pipeline.reconcile import reconcile

        while not self.stopping.wait(interval):
            since = (self.clock() - timedelta(days=self.ctx.settings.reconcile_lookback_days)).date()
            try:
                report = reconcile(self.ctx, account_sid=account_sid, since=since)
                log.info("reconcile: %d listed, %d queued", report.seen, report.queued)
            except CallvaultError as exc:
                log.warning("reconcile failed, will try again: %s", exc.message)

    def stop(self, *, timeout: float = 30.0) -> None:
        """Ask every thread to stop after (or by releasing) its current recording, and wait."""
        self.stopping.set()
        for thread in self._threads:
            thread.join(timeout)

    def join(self) -> None:
        for thread in self._threads:
            thread.join()

    def _loop(self, index: int) -> None:
        owner = f"{self._prefix}:{index}"
        poll = self.ctx.settings.worker_poll_seconds
        while not self.stopping.is_set():
            try:
                worked = self.run_once(owner=owner)
            except Unavailable:
                log.warning("database unavailable; worker %s waits", owner)
                worked = False
            except Exception:  # a bug must not kill the thread silently: log it and keep serving
                log.exception("worker %s: unexpected error", owner)
                worked = False
            if not worked:
                self.stopping.wait(poll)

    @property
    def _and_deleted(self) -> str:
        return ", deleted at Twilio" if self.ctx.settings.delete_from_twilio else " (Twilio copy kept)"

    # -- one recording ----------------------------------------------------------------------------
    def run_once(self, *, owner: str | None = None) -> bool:
        """Claim one due recording and run one attempt on it. False when nothing was due."""
        owner = owner or f"{self._prefix}:once"
        now = self.clock()
        with self.ctx.db.write() as session:
            claim = claim_next(session, owner=owner, lease_seconds=self.ctx.settings.lease_seconds, now=now)
        if claim is None:
            return False
        lease = Lease(self.ctx.db, claim, lease_seconds=self.ctx.settings.lease_seconds, clock=self.clock)
        transfer = Transfer(
            self.ctx,
            lease,
            stop=self.stopping,
            clock=self.clock,
            failpoints=self.failpoints,
            audit=self.audit,
        )
        try:
            transfer.run()
            log.info("recording %s: in the vault, verified%s", claim.sid, self._and_deleted)
        except RetryLater as outcome:
            self._retry(lease, claim, outcome)
        except Permanent as outcome:
            log.warning("recording %s failed: %s", claim.sid, outcome.reason)
            self._settle(lease, {"status": RecordingStatus.FAILED, "last_error": outcome.reason})
        except Interrupted:
            self._release(claim)
        except LeaseLost:
            log.warning("recording %s: lease lost; another worker carries on", claim.sid)
        except Unavailable:
            # The database went away mid-attempt: no outcome can be written now. The lease lapses and the
            # recording resumes from its last recorded stage once the database is back.
            log.warning("recording %s: database unavailable; the attempt resumes after its lease", claim.sid)
        except Exception as exc:
            log.exception("recording %s: unexpected error", claim.sid)
            self._retry(lease, claim, RetryLater(f"internal error: {type(exc).__name__}"))
        return True

    def _retry(self, lease: Lease, claim: Claim, outcome: RetryLater) -> None:
        settings = self.ctx.settings
        if claim.attempts >= settings.max_attempts:
            reason = f"gave up after {claim.attempts} attempts: {outcome.reason}"
            log.warning("recording %s failed: %s", claim.sid, reason)
            self._settle(lease, {"status": RecordingStatus.FAILED, "last_error": reason})
            return
        delay = outcome.delay
        if delay is None:
            delay = backoff_delay(
                claim.attempts, base=settings.retry_base_seconds, cap=settings.retry_max_seconds
            )
        delay = min(max(delay, 0.0), settings.retry_max_seconds)
        log.info("recording %s: retry in %.1fs: %s", claim.sid, delay, outcome.reason)
        self._settle(
            lease, {"last_error": outcome.reason, "next_attempt_at": self.clock() + timedelta(seconds=delay)}
        )

    @staticmethod
    def _settle(lease: Lease, values: dict[str, object]) -> None:
        try:
            lease.finish(values)
        except LeaseLost:
            log.warning("recording %s: lease lost before its outcome was recorded", lease.sid)

    def _release(self, claim: Claim) -> None:
        """Give the recording back untouched: shutting down is not the recording's fault."""

        def release(session: Session) -> None:
            session.execute(
                update(Recording)
                .where(Recording.sid == claim.sid, Recording.lease_owner == claim.owner)
                .values(
                    lease_owner=None,
                    lease_expires_at=None,
                    attempts=Recording.attempts - 1,
                    next_attempt_at=self.clock(),
                )
            )

        with self.ctx.db.write() as session:
            release(session)
        log.info("recording %s released for another worker", claim.sid)


def pending_count(session: Session) -> int:
    from sqlalchemy import func, select

    return int(
        session.execute(
            select(func.count()).select_from(Recording).where(Recording.status == RecordingStatus.PENDING)
        ).scalar_one()
    )
