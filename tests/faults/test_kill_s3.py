"""Custody under SIGKILL on the S3 store: a real ``callvault worker`` dies at each step (mid multipart upload,
after the upload, before and after Twilio's DELETE); a restarted worker finishes. The object is never visible
half-written, no incomplete multipart upload outlives the job, nothing is deleted at Twilio early or twice.
(tests/e2e/test_crash.py runs the same kill matrix on the file store.)"""

from __future__ import annotations

import signal

import pytest

from tests.faults.deployment import S3Deployment
from tests.faults.rig import kinds

SMALL = 300_000
LARGE = 12 * 1024 * 1024  # the mid_upload failpoint fires ~10 MiB in: one 5 MiB part sent, the next buffered


@pytest.mark.slow
def test_worker_killed_at_each_step_on_s3_is_finished_by_a_restarted_worker(
    s3_deployment: S3Deployment,
) -> None:
    dep = s3_deployment
    sim = dep.simulator
    points = {
        "mid_upload": sim.add_recording(size_bytes=LARGE),
        "after_upload": sim.add_recording(size_bytes=SMALL),
        "before_twilio_delete": sim.add_recording(size_bytes=SMALL),
        "after_twilio_delete": sim.add_recording(size_bytes=SMALL),
    }
    for point, rec in points.items():
        # One recording at a time, each with a worker armed for it alone: the worker claims it (or first
        # finishes the previous one, whose lease has expired) and dies at this point.
        dep.queue(rec.sid)
        doomed = dep.worker("--concurrency", "1", env={"CALLVAULT_FAILPOINTS": f"{point}@{rec.sid}"})
        assert doomed.wait_exit(120) == -signal.SIGKILL, doomed.logs()
        row = dep.row(rec.sid)
        assert row.status == "pending"
        key = f"vault/{row.storage_key}"
        if point == "mid_upload":
            assert dep.uploads_in_progress() == [key]  # one part sent, then the process died
            assert dep.stored(rec.sid) is None  # never visible half-written
            assert row.stage == "fetch"
        elif point == "after_upload":
            assert dep.stored(rec.sid) == rec.media_bytes()  # complete in S3, but nothing says so yet
            assert (row.stage, row.sha256) == ("fetch", None)
        else:
            assert row.stage == "delete_twilio"
            assert dep.witness.deletions[rec.sid] == (1 if point == "after_twilio_delete" else 0)
            assert row.twilio_deleted_at is None
        dep.witness.assert_custody_held()

    survivor = dep.worker("--concurrency", "1")
    dep.wait_stored([rec.sid for rec in points.values()])
    assert survivor.terminate() == 0, survivor.logs()

    dep.witness.assert_custody_held()
    for point, rec in points.items():
        row = dep.row(rec.sid)
        assert row.sha256 == rec.sha256("wav") and row.size_bytes == rec.size_bytes, point
        assert dep.stored(rec.sid) == rec.media_bytes(), point
        assert row.twilio_deleted_at is not None, point
        assert dep.witness.deletions[rec.sid] == 1, point
    assert dep.uploads_in_progress() == []  # the killed upload was aborted, not left to accumulate

    # Resumed where the row said: no second upload after the verified copy, no second DELETE.
    completed_uploads = {
        point: [r.operation for r in dep.puts(rec.sid) if r.operation in ("put_object", "complete_multipart")]
        for point, rec in points.items()
    }
    assert completed_uploads == {
        "mid_upload": ["complete_multipart"],
        "after_upload": ["put_object", "put_object"],  # the unrecorded upload is not trusted
        "before_twilio_delete": ["put_object"],
        "after_twilio_delete": ["put_object"],
    }
    deleted_late = kinds(sim.events(sid=points["after_twilio_delete"].sid))
    assert deleted_late[-2:] == [("delete", 204, None), ("metadata", 404, None)]
    resumed = kinds(sim.events(sid=points["before_twilio_delete"].sid))
    assert resumed[-3:] == [("media", 200, None), ("metadata", 200, None), ("delete", 204, None)]
