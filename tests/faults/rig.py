"""The in-process pipeline for fault tests: a real database, a real store (files, or S3 behind a fault proxy),
the Twilio simulator over real HTTP, a clock the test moves, and a custody witness at Twilio's DELETE."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from callvault.db.database import Database
from callvault.db.models import AuditEntry, Recording
from callvault.db.recordings import get_recording
from callvault.errors import ObjectMissing
from callvault.pipeline.worker import Worker
from callvault.runtime import audit_twilio_delete
from callvault.settings import MediaFormat, S3Sse
from callvault.storage.base import Store
from callvault.storage.keys import recording_key
from callvault.storage.s3 import S3Store
from callvault.twilio.simulator.server import SimulatorServer
from callvault.twilio.simulator.state import Event
from tests.custody import CustodyWitness
from tests.factories import make_context, make_settings
from tests.pipeline.conftest import FakeClock, Rig
from tests.plugins.s3 import TEST_PART_SIZE, S3Server


def vault_key(simulator: SimulatorServer, sid: str) -> str:
    """The key callvault stores a recording under (built as the pipeline builds it from Twilio's metadata)."""
    rec = simulator.recording(sid)
    assert rec is not None
    return recording_key(
        account_sid=rec.account_sid,
        recording_sid=sid,
        recorded_at=rec.date_created,
        media_format=MediaFormat.WAV,
    )


def read_object(store: Store, key: str) -> bytes | None:
    try:
        return b"".join(store.open(key))
    except ObjectMissing:
        return None


class FrozenClock(FakeClock):
    """A clock that stands still unless the test moves it: retry delays never fall due behind a test's back,
    so "one attempt each" means exactly that, however slow the machine is."""

    def __init__(self) -> None:
        super().__init__()
        self._start = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self._start + self.offset


@dataclass
class FaultRig(Rig):
    """The pipeline in process. ``view`` reads the vault directly, past any fault proxy."""

    witness: CustodyWitness
    view: Store

    def worker(self, **kwargs: Any) -> Worker:
        return Worker(self.ctx, concurrency=1, clock=self.clock, audit=audit_twilio_delete, **kwargs)

    def stored(self, sid: str) -> bytes | None:
        return read_object(self.view, vault_key(self.simulator, sid))

    def row(self, sid: str) -> Recording:
        with self.ctx.db.read() as session:
            return get_recording(session, sid)

    def audit(self, sid: str) -> list[AuditEntry]:
        with self.ctx.db.read() as session:
            query = select(AuditEntry).where(AuditEntry.recording_sid == sid).order_by(AuditEntry.id)
            return list(session.execute(query).scalars())

    def assert_kept_once(self, sid: str) -> Recording:
        """The recording is stored and verified, the vault holds Twilio's exact bytes, Twilio deleted it once
        (after a complete copy was in the vault), and the audit trail says so once."""
        row = self.row(sid)
        rec = self.simulator.recording(sid)
        assert rec is not None
        assert (row.status, row.stage, row.last_error) == ("stored", "done", None)
        assert row.sha256 == rec.sha256("wav") and row.size_bytes == rec.size_bytes
        assert self.stored(sid) == rec.media_bytes()
        assert rec.deleted and row.twilio_deleted_at is not None
        self.witness.assert_custody_held()
        assert self.witness.deletions[sid] == 1
        assert [entry.action for entry in self.audit(sid)] == ["twilio.delete"]
        return row

    def assert_twilio_copy_kept(self, sid: str) -> None:
        rec = self.simulator.recording(sid)
        assert rec is not None and not rec.deleted
        assert self.witness.deletions[sid] == 0
        assert self.audit(sid) == []


def settings_for(tmp_path: Path, database_url: str, simulator: SimulatorServer, **overrides: Any) -> Any:
    return make_settings(
        tmp_path,
        database_url=database_url,
        twilio_account_sid=simulator.account_sid,
        twilio_auth_token=simulator.auth_token,
        twilio_api_base_url=simulator.base_url,
        public_url="http://127.0.0.1:9",
        **{"max_attempts": 4, "retry_base_seconds": 1, "retry_max_seconds": 60, **overrides},
    )


def make_rig(
    *,
    settings: Any,
    database: Database | None = None,
    simulator: SimulatorServer,
    store: Store | None = None,
    view: Store | None = None,
) -> FaultRig:
    ctx = make_context(
        settings=settings, database_url=settings.database_url, account=simulator.twilio_account(), store=store
    )
    if database is not None:
        ctx.db.dispose()
        ctx.db = database
    view = view or ctx.store
    witness = CustodyWitness(simulator, lambda sid: read_object(view, vault_key(simulator, sid))).install()
    return FaultRig(ctx=ctx, simulator=simulator, clock=FrozenClock(), witness=witness, view=view)


def s3_store_via(s3_server: S3Server, bucket: str, endpoint_url: str | None = None) -> S3Store:
    """An S3Store as callvault builds it, but without botocore's own retries (``s3_server.client``), so every
    injected fault reaches the pipeline."""
    return S3Store(
        bucket=bucket,
        prefix="vault",
        client=s3_server.client(endpoint_url=endpoint_url),
        sse=S3Sse.AES256,
        kms_key_id=None,
        part_size_bytes=TEST_PART_SIZE,
    )


def wait_for(predicate: Callable[[], bool], *, timeout: float = 60.0, what: str = "condition") -> None:
    """Poll every 0.1 s until ``predicate()`` holds; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def kinds(events: list[Event]) -> list[tuple[str, int, str | None]]:
    """(kind, status, fault) of each event: the order of side effects at Twilio, compactly."""
    return [(event.kind, event.status, event.fault) for event in events]


def utcnow() -> datetime:
    return datetime.now(UTC)
