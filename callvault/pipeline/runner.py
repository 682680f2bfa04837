"""``callvault worker``: a worker process until SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from callvault.logs import configure_logging
from callvault.pipeline.failpoints import Failpoints
from callvault.pipeline.worker import Worker
from callvault.runtime import audit_twilio_delete, build_context, require_current_schema
from callvault.settings import Settings

log = logging.getLogger(__name__)


def run_worker(settings: Settings, *, concurrency: int | None) -> None:
    configure_logging(settings.log_level)
    ctx = build_context(settings)
    require_current_schema(ctx.db)
    worker = Worker(
        ctx,
        concurrency=concurrency or settings.worker_concurrency,
        failpoints=Failpoints(settings.failpoints),
        audit=audit_twilio_delete,
    )
    stopped = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: finishing or releasing current recordings", signal.Signals(signum).name)
        worker.stopping.set()
        stopped.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    worker.start()
    worker.start_reconciler(account_sid=next(iter(ctx.auth_tokens)))
    log.info("worker started: %d threads on %s", worker.concurrency, ctx.store.description)
    stopped.wait()
    worker.stop(timeout=ctx.settings.lease_seconds)
    ctx.db.dispose()
    log.info("worker stopped")
