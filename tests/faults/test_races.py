"""Workers and callbacks racing: two worker processes on one queue, a lease taken over from a worker that is
merely slow, and Twilio's duplicate and out-of-order callbacks through the real webhook. Each recording is
worked by one worker at a time, stored once, deleted at Twilio once."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from callvault.pipeline.worker import Worker
from callvault.runtime import audit_twilio_delete
from callvault.storage.base import PutResult, Store
from callvault.twilio.gateway import TwilioGateway
from callvault.twilio.simulator.server import SimulatorServer
from callvault.twilio.simulator.state import Event
from tests.faults.deployment import AppServer, S3Deployment, post_callback
from tests.faults.rig import FaultRig, kinds, make_rig, settings_for, vault_key, wait_for

STORED_LINE = re.compile(r"recording (RE[0-9a-f]{32}): in the vault, verified")


def assert_one_at_a_time(media: list[Event]) -> None:
    """No two media downloads of one recording overlapped in time (the simulator timestamps both ends)."""
    ordered = sorted(media, key=lambda event: event.t)
    for earlier, later in zip(ordered, ordered[1:], strict=False):
        assert earlier.t_done is not None and earlier.t_done <= later.t, (earlier, later)


@pytest.mark.slow
def test_two_worker_processes_race_for_many_recordings_and_each_is_worked_once(
    s3_deployment: S3Deployment,
) -> None:
    dep = s3_deployment
    # A generous lease: this test is about claims, not takeovers (a loaded machine may stall a worker for a
    # couple of seconds, and a legitimate takeover would then look like concurrent work).
    env = {"CALLVAULT_LEASE_SECONDS": "30"}
    workers = [dep.worker("--concurrency", "2", env=env) for _ in range(2)]
    for worker in workers:  # both polling before there is any work, so neither gets a head start
        wait_for(lambda w=worker: "worker started" in w.logs(), what="the worker process to start")
    recs = [dep.simulator.add_recording(size_bytes=30_000 + 1500 * i) for i in range(24)]
    for rec in recs:
        dep.queue(rec.sid)
    sids = [rec.sid for rec in recs]
    dep.wait_stored(sids)
    for worker in workers:
        assert worker.terminate() == 0, worker.logs()

    dep.witness.assert_custody_held()
    logs = [worker.logs() for worker in workers]
    stored_by = [set(STORED_LINE.findall(log)) for log in logs]
    assert stored_by[0] and stored_by[1], f"both processes must have taken part in the race:\n{logs}"
    assert stored_by[0].isdisjoint(stored_by[1]) and stored_by[0] | stored_by[1] == set(sids)
    for rec in recs:
        row = dep.row(rec.sid)
        events = dep.simulator.events(sid=rec.sid)
        context = (rec.sid, kinds(events), dep.puts(rec.sid), row.last_error)
        assert (row.attempts, row.sha256) == (1, rec.sha256("wav")), context
        assert dep.stored(rec.sid) == rec.media_bytes()
        assert dep.witness.deletions[rec.sid] == 1
        assert [r.status for r in dep.puts(rec.sid)] == [200], context  # uploaded once
        assert [e.kind for e in events] == ["metadata", "media", "media", "delete"], context
        assert_one_at_a_time([e for e in events if e.kind == "media"])


@pytest.mark.slow
def test_a_lease_taken_over_from_a_merely_slow_worker_makes_it_lose_every_write_and_never_delete(
    tmp_path: Path, database_url: str, simulator: SimulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="callvault.pipeline.worker")
    settings = settings_for(
        tmp_path, database_url, simulator, lease_seconds=2, worker_poll_seconds=0.1, retry_base_seconds=0.2
    )
    rig = make_rig(settings=settings, simulator=simulator)
    # The rig's gateway gives up on a body silent for 5 s; this slow body pauses longer than that.
    rig.ctx.gateway.close()
    rig.ctx.gateway = TwilioGateway(simulator.twilio_account(), timeout_seconds=30, max_media_bytes=2**24)
    try:
        lease_taken_over(rig, simulator, caplog)
    finally:
        rig.ctx.close()


def lease_taken_over(rig: FaultRig, simulator: SimulatorServer, caplog: pytest.LogCaptureFixture) -> None:
    rec = simulator.add_recording(size_bytes=200_000)  # four chunks
    # The first download pauses 6 s after each chunk: three times the lease, so the lease lapses between two
    # chunks although the worker is alive and well, and the other worker (polling every 0.1 s) has about
    # 4 s to take over while the first is still waiting for its next chunk.
    simulator.add_fault("media", "slow", sid=rec.sid, delay_seconds=6.0)
    rig.queue(rec.sid)
    slow = Worker(rig.ctx, concurrency=1, audit=audit_twilio_delete)  # real time: the lease really lapses
    fast = Worker(rig.ctx, concurrency=1, audit=audit_twilio_delete)
    try:
        slow.start()
        wait_for(lambda: bool(simulator.events(kind="media")), what="the slow download to start")
        fast.start()
        wait_for(lambda: rig.row(rec.sid).status == "stored", what="the other worker to finish")
        wait_for(
            lambda: any("lease lost" in r.getMessage() for r in caplog.records), what="the slow one to notice"
        )
    finally:
        slow.stop(timeout=15)
        fast.stop(timeout=15)

    row = rig.row(rec.sid)
    assert (row.attempts, row.lease_owner) == (2, None)
    rig.assert_kept_once(rec.sid)  # one DELETE at Twilio, made by the worker holding the lease
    slow_media, *others = simulator.events(kind="media", sid=rec.sid)
    assert slow_media.fault == "slow" and not slow_media.completed  # given up half-way
    assert slow_media.t_done is not None and others[0].t < slow_media.t_done  # taken over while still slow
    [delete] = simulator.events(kind="delete")
    assert delete.seq > max(e.seq for e in others)
    assert [r.getMessage() for r in caplog.records if "lease lost" in r.getMessage()] == [
        f"recording {rec.sid}: lease lost; another worker carries on"
    ]


class HeldUpload:
    """The real store, except that the upload of one key stops after its first chunk until the test lets it
    go: the test then acts while that transfer is certainly in progress, however fast or slow the machine."""

    def __init__(self, store: Store, key: str) -> None:
        self.store = store
        self.key = key
        self.entered = threading.Event()
        self.release = threading.Event()

    def put(self, key: str, chunks: Iterable[bytes], *, content_type: str, max_bytes: int) -> PutResult:
        if key == self.key:
            chunks = self._held(chunks)
        return self.store.put(key, chunks, content_type=content_type, max_bytes=max_bytes)

    def _held(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for index, chunk in enumerate(chunks):
            yield chunk
            if index == 0:
                self.entered.set()
                self.release.wait(60)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def test_duplicate_and_out_of_order_callbacks_through_the_webhook_never_make_extra_work(
    file_rig: FaultRig,
) -> None:
    rig = file_rig
    sim = rig.simulator
    late_progress = sim.add_recording(size_bytes=40_000)
    absent = sim.add_recording(size_bytes=1_000, status="absent", error_code=16102)
    failed = sim.add_recording(size_bytes=1_000, status="failed", error_code=16105)
    contradicted = sim.add_recording(size_bytes=40_000)
    busy = sim.add_recording(size_bytes=200_000)
    held = HeldUpload(rig.ctx.store, vault_key(sim, busy.sid))
    rig.ctx.store = held  # type: ignore[assignment]
    worker = Worker(rig.ctx, concurrency=2, audit=audit_twilio_delete)
    with AppServer(rig.ctx) as web:
        rig.ctx.settings = rig.ctx.settings.model_copy(update={"public_url": web.base_url})

        def send(sid: str, *statuses: str) -> None:
            for status in statuses:
                assert post_callback(web.base_url, sim, sid, status).status_code == 204, (sid, status)

        send(late_progress.sid, "completed", "in-progress", "completed")
        send(absent.sid, "absent", "absent")
        send(failed.sid, "failed")
        send(contradicted.sid, "completed", "absent")  # a stale event must not undo a completed recording
        send(busy.sid, "completed")
        worker.start()
        try:
            assert held.entered.wait(60), "the busy upload never started"
            send(busy.sid, "completed", "in-progress", "completed")  # while its transfer is under way
            row = rig.row(busy.sid)
            assert (row.status, row.stage, row.attempts) == ("pending", "fetch", 1)
            held.release.set()
            done = (late_progress.sid, contradicted.sid, busy.sid)
            wait_for(lambda: all(rig.row(sid).status == "stored" for sid in done), what="transfers")
            send(busy.sid, "completed")  # after Twilio's copy is gone: still nothing to do
        finally:
            held.release.set()
            worker.stop(timeout=15)

    for rec in (late_progress, contradicted, busy):
        rig.assert_kept_once(rec.sid)
        assert rig.row(rec.sid).attempts == 1
        assert [e.kind for e in sim.events(sid=rec.sid)] == ["metadata", "media", "media", "delete"]
    assert_one_at_a_time(sim.events(kind="media", sid=busy.sid))
    for rec, code in ((absent, 16102), (failed, 16105)):
        row = rig.row(rec.sid)
        status = "absent" if rec is absent else "failed"
        assert (row.status, row.attempts) == ("failed", 0)
        assert (
            row.last_error
            == f"Twilio reported the recording as {status} (error {code}); there is no media to keep"
        )
        assert sim.events(sid=rec.sid) == []  # nothing to fetch, nothing to delete
        rig.assert_twilio_copy_kept(rec.sid)
    assert kinds(sim.events(sid=busy.sid))[-1] == ("delete", 204, None)
