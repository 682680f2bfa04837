"""Real processes and servers for fault tests: callvault's web app on a loopback port, and `callvault worker`
processes on S3 (through the fault proxy) sharing a database with the test."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn
from sqlalchemy import select

from callvault.context import Context
from callvault.db.database import Database
from callvault.db.models import Recording
from callvault.db.recordings import get_recording
from callvault.pipeline.intake import StatusCallback, record_status_callback
from callvault.storage.s3 import S3Store
from callvault.twilio.simulator.callbacks import recording_status_params, send_status_callback
from callvault.twilio.simulator.server import SimulatorServer
from tests.custody import CustodyWitness
from tests.faults.rig import read_object, utcnow, vault_key, wait_for
from tests.plugins.faults import S3FaultProxy, S3Request
from tests.plugins.processes import CallvaultProcess
from tests.plugins.s3 import S3Server


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
