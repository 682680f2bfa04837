"""Rigs for the fault-injection suite: the in-process pipeline (real database, real store, the Twilio
simulator over real HTTP, a FakeClock) with a custody witness at Twilio's DELETE, on the file store or on S3
behind a fault-injecting proxy; and small helpers shared by the fault tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import select

from callvault.context import Context
from callvault.db.database import Database
from callvault.db.models import AuditEntry, Recording
from callvault.db.recordings import get_recording
from callvault.errors import ObjectMissing
from callvault.pipeline.intake import StatusCallback, record_status_callback
from callvault.pipeline.worker import Worker
from callvault.runtime import audit_twilio_delete
from callvault.settings import MediaFormat, S3Sse
from callvault.storage.base import Store
from callvault.storage.keys import recording_key
from callvault.storage.s3 import S3Store
from callvault.twilio.simulator.callbacks import recording_status_params, send_status_callback
from callvault.twilio.simulator.server import SimulatorServer
from callvault.twilio.simulator.state import Event
from tests.custody import CustodyWitness
from tests.factories import make_context, make_settings
from tests.pipeline.conftest import FakeClock, Rig
from tests.plugins.faults import S3FaultProxy, S3Request
from tests.plugins.processes import CallvaultProcess
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


@pytest.fixture
def file_rig(tmp_path: Path, database_url: str, simulator: SimulatorServer) -> Iterator[FaultRig]:
    """The pipeline on the file store under ``tmp_path/data/recordings``."""
    rig = make_rig(settings=settings_for(tmp_path, database_url, simulator), simulator=simulator)
    yield rig
    rig.ctx.close()


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


@pytest.fixture
def s3_rig(
    tmp_path: Path,
    database_url: str,
    simulator: SimulatorServer,
    s3_server: S3Server,
    s3_bucket: str,
    s3_fault_proxy: S3FaultProxy,
) -> Iterator[FaultRig]:
    """The pipeline on S3, reaching the bucket through ``s3_fault_proxy``."""
    settings = settings_for(tmp_path, database_url, simulator, storage_url=f"s3://{s3_bucket}/vault")
    rig = make_rig(
        settings=settings,
        simulator=simulator,
        store=s3_store_via(s3_server, s3_bucket, s3_fault_proxy.endpoint_url),
        view=s3_store_via(s3_server, s3_bucket),
    )
    yield rig
    rig.ctx.close()


@pytest.fixture(params=["file", "s3"])
def any_rig(request: pytest.FixtureRequest, database_url: str) -> FaultRig:
    """``file_rig`` and ``s3_rig`` in turn (``database_url`` is named so both databases apply)."""
    rig: FaultRig = request.getfixturevalue(f"{request.param}_rig")
    return rig


class AppServer:
    """callvault's web app (``create_app``) served by uvicorn on a loopback port, in a background thread."""

    def __init__(self, ctx: Context) -> None:
        from callvault.web.app import create_app

        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        config = uvicorn.Config(
            create_app(ctx), log_config=None, log_level="warning", access_log=False, lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name="callvault-web", daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def __enter__(self) -> AppServer:
        self._thread.start()
        wait_for(lambda: self._server.started, timeout=15, what="the web app to start")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._sock.close()


def post_callback(base_url: str, simulator: SimulatorServer, sid: str, status: str) -> httpx.Response:
    """Send a recording status callback for ``sid`` the way Twilio does (form-encoded, signed)."""
    rec = simulator.recording(sid)
    assert rec is not None
    params = recording_status_params(rec, status=status, api_base_url=simulator.base_url)
    return send_status_callback(
        f"{base_url}/twilio/recording-status", auth_token=simulator.auth_token, params=params
    )


@dataclass
class S3Deployment:
    """Real ``callvault worker`` processes on S3 (through ``proxy``) and a database shared with the test."""

    tmp_path: Path
    env: dict[str, str]
    db: Database
    simulator: SimulatorServer
    witness: CustodyWitness
    view: S3Store  # the bucket seen directly, past the proxy
    proxy: S3FaultProxy
    s3_server: S3Server
    bucket: str
    processes: list[CallvaultProcess]

    def worker(self, *args: str, env: dict[str, str] | None = None) -> CallvaultProcess:
        log = self.tmp_path / f"{len(self.processes)}-worker.log"
        process = CallvaultProcess(["worker", *args], env={**self.env, **(env or {})}, log_path=log)
        self.processes.append(process)
        return process

    def queue(self, sid: str) -> None:
        rec = self.simulator.recording(sid)
        assert rec is not None
        callback = StatusCallback(
            account_sid=rec.account_sid,
            recording_sid=sid,
            call_sid=rec.call_sid,
            status="completed",
            duration_seconds=None,
            channels=None,
            source=None,
            started_at=None,
            error_code=None,
        )
        record_status_callback(self.db, callback, now=utcnow())

    def row(self, sid: str) -> Recording:
        with self.db.read() as session:
            return get_recording(session, sid)

    def stored(self, sid: str) -> bytes | None:
        return read_object(self.view, vault_key(self.simulator, sid))

    def wait_stored(self, sids: list[str], *, timeout: float = 120.0) -> None:
        def done() -> bool:
            with self.db.read() as session:
                rows = session.execute(select(Recording.status).where(Recording.sid.in_(sids))).scalars()
                return sorted(rows) == ["stored"] * len(sids)

        try:
            wait_for(done, timeout=timeout, what=f"{len(sids)} recordings stored")
        except AssertionError as exc:
            logs = "\n".join(p.logs()[-3000:] for p in self.processes)
            raise AssertionError(f"{exc}\n{logs}") from None

    def uploads_in_progress(self) -> list[str]:
        uploads = self.s3_server.client().list_multipart_uploads(Bucket=self.bucket).get("Uploads", [])
        return [upload["Key"] for upload in uploads]

    def puts(self, sid: str) -> list[S3Request]:
        """Every upload request (single PUT, or each part) the proxy saw for the recording's object."""
        key = vault_key(self.simulator, sid)
        return [r for r in self.proxy.logged() if r.key.endswith(key) and r.method in ("PUT", "POST")]


@pytest.fixture
def s3_deployment(
    tmp_path: Path,
    database_url: str,
    simulator: SimulatorServer,
    s3_server: S3Server,
    s3_bucket: str,
    s3_fault_proxy: S3FaultProxy,
    callvault_processes: list[CallvaultProcess],
) -> Iterator[S3Deployment]:
    env = {
        "CALLVAULT_DATA_DIR": str(tmp_path / "data"),
        "CALLVAULT_DATABASE_URL": database_url,
        "CALLVAULT_STORAGE_URL": f"s3://{s3_bucket}/vault",
        "CALLVAULT_S3_ENDPOINT_URL": s3_fault_proxy.endpoint_url,
        "CALLVAULT_S3_PART_SIZE_MB": "5",
        "AWS_ACCESS_KEY_ID": s3_server.access_key_id,
        "AWS_SECRET_ACCESS_KEY": s3_server.secret_access_key,
        "AWS_DEFAULT_REGION": s3_server.region,
        "CALLVAULT_SECRET_KEY": "faults-secret-" + "k" * 40,
        "CALLVAULT_TWILIO_ACCOUNT_SID": simulator.account_sid,
        "CALLVAULT_TWILIO_AUTH_TOKEN": simulator.auth_token,
        "CALLVAULT_TWILIO_API_KEY_SID": simulator.api_key_sid,
        "CALLVAULT_TWILIO_API_KEY_SECRET": simulator.api_key_secret,
        "CALLVAULT_TWILIO_API_BASE_URL": simulator.base_url,
        "CALLVAULT_PUBLIC_URL": "http://127.0.0.1:9",
        "CALLVAULT_LEASE_SECONDS": "2",
        "CALLVAULT_WORKER_POLL_SECONDS": "0.1",
        "CALLVAULT_RETRY_BASE_SECONDS": "0.2",
        "CALLVAULT_RETRY_MAX_SECONDS": "1",
        "CALLVAULT_LOG_LEVEL": "INFO",
    }
    view = s3_store_via(s3_server, s3_bucket)
    witness = CustodyWitness(simulator, lambda sid: read_object(view, vault_key(simulator, sid))).install()
    db = Database(database_url)
    yield S3Deployment(
        tmp_path=tmp_path,
        env=env,
        db=db,
        simulator=simulator,
        witness=witness,
        view=view,
        proxy=s3_fault_proxy,
        s3_server=s3_server,
        bucket=s3_bucket,
        processes=callvault_processes,
    )
    db.dispose()


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
