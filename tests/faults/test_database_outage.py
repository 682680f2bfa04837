"""The database away for a while: PostgreSQL behind a TCP proxy that is cut (connections reset, new ones
refused), SQLite with its write lock held by another connection. The webhook answers 503 so Twilio retries,
and nothing is lost once the database is back. A worker that loses the database mid-transfer never deletes at
Twilio without the deletion being written down first, and finishes the job once the database returns."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from callvault.db.database import Database
from callvault.db.models import Recording
from callvault.db.recordings import get_recording
from callvault.pipeline.worker import Worker
from callvault.runtime import audit_twilio_delete
from callvault.storage.base import PutResult, Store
from callvault.twilio.simulator.server import SimulatorServer
from tests.faults.deployment import AppServer, post_callback
from tests.faults.rig import FaultRig, kinds, make_rig, settings_for, wait_for
from tests.plugins.faults import DatabaseOutage

SIZE = 120_000
UNAVAILABLE = "database unavailable; worker"


@dataclass
class OutageRig:
    rig: FaultRig
    outage: DatabaseOutage
    direct: Database  # the test's own way to the database, around the outage

    def row(self, sid: str) -> Recording:
        with self.direct.read() as session:
            return get_recording(session, sid)


@pytest.fixture
def outage_rig(
    tmp_path: Path, database_url: str, simulator: SimulatorServer, database_outage: DatabaseOutage
) -> Iterator[OutageRig]:
    settings = settings_for(
        tmp_path,
        database_outage.url,
        simulator,
        sqlite_busy_timeout_seconds=0.5,
        lease_seconds=1,
        worker_poll_seconds=0.1,
        retry_base_seconds=0.2,
        retry_max_seconds=1,
    )
    db = Database(settings.database_url, sqlite_busy_timeout=settings.sqlite_busy_timeout_seconds)
    rig = make_rig(settings=settings, database=db, simulator=simulator)
    direct = Database(database_url)
    yield OutageRig(rig=rig, outage=database_outage, direct=direct)
    database_outage.restore()
    rig.ctx.close()
    direct.dispose()


def test_webhook_answers_503_while_the_database_is_away_and_the_retried_callback_is_kept(
    outage_rig: OutageRig,
) -> None:
    rig, outage = outage_rig.rig, outage_rig.outage
    rec = rig.simulator.add_recording(size_bytes=SIZE)
    with AppServer(rig.ctx) as web:
        rig.ctx.settings = rig.ctx.settings.model_copy(update={"public_url": web.base_url})
        outage.cut()
        refused = post_callback(web.base_url, rig.simulator, rec.sid, "completed")
        assert refused.status_code == 503  # Twilio retries (or fails over) on a 5xx
        assert refused.json() == {"error": "the database is unavailable"}
        with outage_rig.direct.read() as session:
            assert session.get(Recording, rec.sid) is None
        outage.restore()
        assert post_callback(web.base_url, rig.simulator, rec.sid, "completed").status_code == 204
    assert (outage_rig.row(rec.sid).status, outage_rig.row(rec.sid).attempts) == ("pending", 0)
    rig.drain()
    rig.assert_kept_once(rec.sid)


class CutAfterPut:
    """The real store; the database goes away the moment the first upload is complete, before callvault has
    written down that it uploaded anything."""

    def __init__(self, store: Store, cut: Callable[[], None]) -> None:
        self.store = store
        self.cut = cut
        self.puts = 0

    def put(self, key: str, chunks: Iterable[bytes], *, content_type: str, max_bytes: int) -> PutResult:
        result = self.store.put(key, chunks, content_type=content_type, max_bytes=max_bytes)
        self.puts += 1
        if self.puts == 1:
            self.cut()
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def stage_at_each_delete(outage_rig: OutageRig, then: Callable[[], None] | None = None) -> list[str]:
    """Record, at the instant each DELETE reaches Twilio, the stage the database holds for the recording
    (read around the outage); then run ``then`` (e.g. cut the database) before Twilio deletes."""
    seen: list[str] = []
    state = outage_rig.rig.simulator.state
    original = state.delete

    def hooked(sid: str) -> bool:
        seen.append(outage_rig.row(sid).stage)
        if then is not None and len(seen) == 1:
            then()
        return original(sid)

    state.delete = hooked  # type: ignore[method-assign]
    return seen


def unavailable_logged(caplog: pytest.LogCaptureFixture) -> bool:
    return any(UNAVAILABLE in record.getMessage() for record in caplog.records)


def run_worker(rig: FaultRig) -> Worker:
    worker = Worker(rig.ctx, concurrency=1, audit=audit_twilio_delete)  # real time: leases really expire
    worker.start()
    return worker


def test_worker_losing_the_database_after_upload_deletes_nothing_and_finishes_once_it_is_back(
    outage_rig: OutageRig, caplog: pytest.LogCaptureFixture
) -> None:
    rig, outage = outage_rig.rig, outage_rig.outage
    caplog.set_level(logging.WARNING, logger="callvault.pipeline.worker")
    store = CutAfterPut(rig.ctx.store, outage.cut)
    rig.ctx.store = store  # type: ignore[assignment]
    stages = stage_at_each_delete(outage_rig)
    rec = rig.simulator.add_recording(size_bytes=SIZE)
    rig.queue(rec.sid)
    worker = run_worker(rig)
    try:
        wait_for(lambda: unavailable_logged(caplog), timeout=30, what="the worker to meet the outage")
        row = outage_rig.row(rec.sid)
        # The object is in the store, but nothing says so: the database was gone before it could be told.
        assert (row.status, row.stage, row.sha256) == ("pending", "fetch", None)
        assert rig.stored(rec.sid) == rec.media_bytes()
        assert rig.simulator.events(kind="delete") == []
        outage.restore()
        wait_for(lambda: outage_rig.row(rec.sid).status == "stored", timeout=30, what="the recording stored")
    finally:
        worker.stop(timeout=10)
    row = rig.assert_kept_once(rec.sid)
    assert row.attempts == 2
    assert stages == ["delete_twilio"]  # written down before Twilio was asked
    assert store.puts == 2  # the unrecorded upload was not trusted: fetched and stored again


def test_worker_losing_the_database_during_twilios_delete_never_deletes_twice_and_records_it_later(
    outage_rig: OutageRig, caplog: pytest.LogCaptureFixture
) -> None:
    rig, outage = outage_rig.rig, outage_rig.outage
    caplog.set_level(logging.WARNING, logger="callvault.pipeline.worker")
    stages = stage_at_each_delete(outage_rig, then=outage.cut)
    rec = rig.simulator.add_recording(size_bytes=SIZE)
    rig.queue(rec.sid)
    worker = run_worker(rig)
    try:
        wait_for(lambda: unavailable_logged(caplog), timeout=30, what="the worker to meet the outage")
        row = outage_rig.row(rec.sid)
        assert rig.simulator.recording(rec.sid).deleted  # type: ignore[union-attr]
        # Deleted at Twilio, and the database already said a deletion was under way.
        assert (row.status, row.stage, row.twilio_deleted_at) == ("pending", "delete_twilio", None)
        outage.restore()
        wait_for(lambda: outage_rig.row(rec.sid).status == "stored", timeout=30, what="the recording stored")
    finally:
        worker.stop(timeout=10)
    rig.assert_kept_once(rec.sid)
    assert stages == ["delete_twilio"]
    # The resumed attempt asked Twilio first (404: gone) and sent no second DELETE.
    assert kinds(rig.simulator.events(sid=rec.sid))[-2:] == [("delete", 204, None), ("metadata", 404, None)]
    [entry] = rig.audit(rec.sid)
    assert entry.detail == {"already_gone": True}
