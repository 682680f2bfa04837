"""Custody under SIGKILL: a real worker process dies at each step of the pipeline; a restarted worker
finishes the job. No DELETE at Twilio ever precedes a complete copy in the vault, none happens twice."""

from __future__ import annotations

import hashlib
import signal

import pytest

from callvault.db.database import Database
from callvault.pipeline.intake import StatusCallback, record_status_callback
from callvault.twilio.simulator.state import SimRecording
from tests.e2e.conftest import Deployment

SMALL = 300_000
LARGE = 12 * 1024 * 1024  # past the mid_upload failpoint (~10 MiB in)


def queue(db: Database, rec: SimRecording, account_sid: str) -> None:
    from datetime import UTC, datetime

    record_status_callback(
        db,
        StatusCallback(
            account_sid=account_sid,
            recording_sid=rec.sid,
            call_sid=rec.call_sid,
            status="completed",
            duration_seconds=None,
            channels=None,
            source=None,
            started_at=None,
            error_code=None,
        ),
        now=datetime.now(UTC),
    )


@pytest.mark.parametrize(
    ("point", "size"),
    [
        ("after_metadata", SMALL),
        ("mid_download", SMALL),
        ("mid_upload", LARGE),
        ("after_upload", SMALL),
        ("after_verify", SMALL),
        ("before_twilio_delete", SMALL),
        ("after_twilio_delete", SMALL),
    ],
)
def test_worker_killed_at_each_step_is_finished_by_a_restarted_worker(
    deployment: Deployment, point: str, size: int
) -> None:
    sim = deployment.simulator
    rec = sim.add_recording(size_bytes=size)
    queue(deployment.db, rec, sim.account_sid)

    doomed = deployment.start("worker", "--concurrency", "1", env={"CALLVAULT_FAILPOINTS": point})
    assert doomed.wait_exit(60) == -signal.SIGKILL, doomed.logs()
    after_crash = deployment.recording(rec.sid)
    assert after_crash.status == "pending"
    deletes_before_restart = deployment.witness.deletions[rec.sid]
    assert deletes_before_restart == (1 if point == "after_twilio_delete" else 0)
    if point == "after_upload":
        # The object is complete in the store but the state says nothing of it yet: fetch again.
        assert after_crash.stage == "fetch"

    survivor = deployment.start("worker", "--concurrency", "1")
    row = deployment.wait_status(rec.sid, "stored")
    assert survivor.terminate() == 0, survivor.logs()

    assert row.sha256 == rec.sha256("wav") and row.size_bytes == size
    assert row.twilio_deleted_at is not None
    assert row.attempts == 2
    assert row.storage_key is not None and deployment.store_root is not None
    path = deployment.store_root / row.storage_key
    assert hashlib.sha256(path.read_bytes()).hexdigest() == rec.sha256("wav")
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no partial left behind
    deployment.witness.assert_custody_held()
    assert deployment.witness.deletions[rec.sid] == 1


def test_worker_killed_before_delete_then_object_replaced_is_refetched_never_deleted_early(
    deployment: Deployment,
) -> None:
    sim = deployment.simulator
    rec = sim.add_recording(size_bytes=SMALL)
    queue(deployment.db, rec, sim.account_sid)
    doomed = deployment.start(
        "worker", "--concurrency", "1", env={"CALLVAULT_FAILPOINTS": "before_twilio_delete"}
    )
    assert doomed.wait_exit(60) == -signal.SIGKILL
    row = deployment.recording(rec.sid)
    assert row.stage == "delete_twilio" and row.storage_key is not None and deployment.store_root is not None
    path = deployment.store_root / row.storage_key
    path.write_bytes(b"\0" * SMALL)  # replaced behind callvault's back while nobody held the lease

    deployment.start("worker", "--concurrency", "1")
    row = deployment.wait_status(rec.sid, "stored")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == rec.sha256("wav")
    deployment.witness.assert_custody_held()
    assert deployment.witness.deletions[rec.sid] == 1


def test_sigterm_releases_the_recording_without_counting_the_attempt(deployment: Deployment) -> None:
    sim = deployment.simulator
    rec = sim.add_recording(size_bytes=2_000_000)
    sim.add_fault("media", "slow", sid=rec.sid, delay_seconds=0.2)
    queue(deployment.db, rec, sim.account_sid)
    worker = deployment.start("worker", "--concurrency", "1", env={"CALLVAULT_LEASE_SECONDS": "60"})
    deployment.wait_for(
        lambda: any(e.kind == "media" for e in sim.events(sid=rec.sid)), what="download start"
    )
    assert worker.terminate(30) == 0, worker.logs()
    row = deployment.recording(rec.sid)
    assert (row.status, row.lease_owner, row.attempts) == ("pending", None, 0)
    assert deployment.witness.deletions[rec.sid] == 0
    deployment.start("worker", "--concurrency", "1")
    deployment.wait_status(rec.sid, "stored")
    deployment.witness.assert_custody_held()
