"""End-to-end rigs: real ``callvault`` processes against the simulator (in this process) and a real store."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from callvault.db.database import Database
from callvault.db.models import Recording
from callvault.db.recordings import get_recording
from callvault.twilio.simulator.server import SimulatorServer
from tests.custody import CustodyWitness
from tests.factories import process_env
from tests.plugins.processes import CallvaultProcess, free_port


@dataclass
class Deployment:
    """One callvault deployment: its environment, its database, its store and the simulated Twilio."""

    tmp_path: Path
    env: dict[str, str]
    database_url: str
    simulator: SimulatorServer
    witness: CustodyWitness
    store_root: Path | None
    processes: list[CallvaultProcess]
    db: Database = field(init=False)

    def __post_init__(self) -> None:
        self.db = Database(self.database_url)

    def start(self, *args: str, env: dict[str, str] | None = None) -> CallvaultProcess:
        name = "-".join(args)[:40]
        log = self.tmp_path / f"{len(self.processes)}-{name}.log"
        process = CallvaultProcess(list(args), env={**self.env, **(env or {})}, log_path=log)
        self.processes.append(process)
        return process

    def serve(self, *extra: str, env: dict[str, str] | None = None) -> tuple[CallvaultProcess, str]:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        process = self.start(
            "serve", "--port", str(port), *extra, env={"CALLVAULT_PUBLIC_URL": base, **(env or {})}
        )
        process.wait_healthy(base)
        return process, base

    def recording(self, sid: str) -> Recording:
        with self.db.read() as session:
            return get_recording(session, sid)

    def wait_for(
        self, predicate: Callable[[], bool], *, timeout: float = 60.0, what: str = "condition"
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        logs = "\n".join(p.logs()[-3000:] for p in self.processes)
        raise AssertionError(f"timed out waiting for {what}\n{logs}")

    def wait_status(self, sid: str, status: str, *, timeout: float = 60.0) -> Recording:
        self.wait_for(lambda: self.recording(sid).status == status, timeout=timeout, what=f"{sid} {status}")
        return self.recording(sid)


@pytest.fixture
def deployment(
    tmp_path: Path, database_url: str, simulator: SimulatorServer, callvault_processes: list[CallvaultProcess]
) -> Deployment:
    store_root = tmp_path / "vault"

    def read_stored(sid: str) -> bytes | None:
        matches = list(store_root.rglob(f"{sid}.wav"))
        return matches[0].read_bytes() if matches else None

    env = process_env(
        tmp_path=tmp_path, database_url=database_url, storage_url=f"file://{store_root}", simulator=simulator
    )
    witness = CustodyWitness(simulator, read_stored).install()
    deployment = Deployment(
        tmp_path=tmp_path,
        env=env,
        database_url=database_url,
        simulator=simulator,
        witness=witness,
        store_root=store_root,
        processes=callvault_processes,
    )
    yield deployment  # type: ignore[misc]
    deployment.db.dispose()
