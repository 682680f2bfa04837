"""One recording through the pipeline, in process, against the simulator over real HTTP and a real store."""

from __future__ import annotations

import hashlib

from sqlalchemy import update

from callvault.db.models import Recording, Stage
from callvault.db.recordings import get_recording
from callvault.pipeline.admin import retry_recording
from tests.pipeline.conftest import Rig


def load(rig: Rig, sid: str) -> Recording:
    with rig.ctx.db.read() as session:
        return get_recording(session, sid)


def stored_bytes(rig: Rig, key: str) -> bytes:
    return b"".join(rig.ctx.store.open(key))


def test_worker_stores_verifies_then_deletes_at_twilio(rig: Rig) -> None:
    sim_rec = rig.simulator.add_recording(size_bytes=300_000)
    rig.queue(sim_rec.sid)
    assert rig.worker().run_once() is True

    rec = load(rig, sim_rec.sid)
    assert (rec.status, rec.stage, rec.last_error) == ("stored", "done", None)
    assert rec.sha256 == sim_rec.sha256("wav")
    assert rec.size_bytes == 300_000
    assert rec.storage_key is not None and rec.storage_key.endswith(f"/{sim_rec.sid}.wav")
    assert rec.storage_key.startswith(f"{rig.simulator.account_sid}/")
    assert hashlib.sha256(stored_bytes(rig, rec.storage_key)).hexdigest() == rec.sha256
    assert rec.stored_at is not None and rec.twilio_deleted_at is not None
    assert rec.lease_owner is None
    # The order of side effects: the whole media went out before the one DELETE.
    media = [e for e in rig.simulator.events(sid=sim_rec.sid) if e.kind == "media"]
    deletes = [e for e in rig.simulator.events(sid=sim_rec.sid) if e.kind == "delete"]
    assert len(deletes) == 1 and deletes[0].status == 204
    assert media and media[-1].completed and media[-1].seq < deletes[0].seq
    assert rig.worker().run_once() is False


def test_delete_from_twilio_off_keeps_the_twilio_copy(rig: Rig) -> None:
    rig.ctx.settings = rig.ctx.settings.model_copy(update={"delete_from_twilio": False})
    sim_rec = rig.simulator.add_recording(size_bytes=50_000)
    rig.queue(sim_rec.sid)
    rig.drain()
    rec = load(rig, sim_rec.sid)
    assert (rec.status, rec.twilio_deleted_at) == ("stored", None)
    assert rig.simulator.events(kind="delete") == []


def test_not_ready_media_is_retried_then_stored(rig: Rig) -> None:
    sim_rec = rig.simulator.add_recording(size_bytes=40_000)
    rig.simulator.add_fault("media", "not_ready", sid=sim_rec.sid, times=2)
    rig.queue(sim_rec.sid)
    assert rig.worker().run_once()
    rec = load(rig, sim_rec.sid)
    assert rec.status == "pending"
    assert rec.last_error is not None and "not ready" in rec.last_error
    assert rec.next_attempt_at > rig.clock()
    rig.drain()
    rec = load(rig, sim_rec.sid)
    assert (rec.status, rec.attempts, rec.sha256) == ("stored", 3, sim_rec.sha256("wav"))


def test_an_error_document_is_never_stored_and_the_twilio_copy_is_kept(rig: Rig) -> None:
    sim_rec = rig.simulator.add_recording(size_bytes=40_000)
    rig.simulator.add_fault("media", "wrong_content_type", sid=sim_rec.sid, times=10)
    rig.queue(sim_rec.sid)
    rig.drain()
    rec = load(rig, sim_rec.sid)
    assert rec.status == "failed"
    assert rec.last_error is not None and "gave up after 4 attempts" in rec.last_error
    assert "not audio" in rec.last_error
    assert rec.sha256 is None and rec.size_bytes is None
    assert list((rig.ctx.settings.data_dir / "recordings").rglob("*.wav")) == []
    assert rig.simulator.events(kind="delete") == []
    assert rig.simulator.recording(sim_rec.sid) is not None


def test_a_truncated_body_stores_nothing_and_is_retried(rig: Rig) -> None:
    sim_rec = rig.simulator.add_recording(size_bytes=400_000)
    rig.simulator.add_fault("media", "truncate", sid=sim_rec.sid)
    rig.queue(sim_rec.sid)
    assert rig.worker().run_once()
    rec = load(rig, sim_rec.sid)
    assert (rec.status, rec.stage, rec.sha256) == ("pending", "fetch", None)
    assert [p for p in (rig.ctx.settings.data_dir / "recordings").rglob("*") if p.is_file()] == []
    rig.drain()
    assert load(rig, sim_rec.sid).sha256 == sim_rec.sha256("wav")


def test_rate_limit_honours_retry_after(rig: Rig) -> None:
    sim_rec = rig.simulator.add_recording(size_bytes=10_000)
    rig.simulator.add_fault("metadata", "rate_limit", sid=sim_rec.sid, retry_after=7)
    rig.queue(sim_rec.sid)
    before = rig.clock()
    rig.worker().run_once()
    rec = load(rig, sim_rec.sid)
    assert rec.status == "pending"
    waited = (rec.next_attempt_at - before).total_seconds()
    assert 6.5 <= waited <= 9


def test_resume_at_delete_after_twilio_already_deleted_sends_no_second_delete(rig: Rig) -> None:
    sim_rec = rig.simulator.add_recording(size_bytes=20_000)
    rig.ctx.settings = rig.ctx.settings.model_copy(update={"delete_from_twilio": False})
    rig.queue(sim_rec.sid)
    rig.drain()
    # As if a worker had deleted at Twilio and died before writing it down.
    rig.simulator.state.delete(sim_rec.sid)
    rig.ctx.settings = rig.ctx.settings.model_copy(update={"delete_from_twilio": True})
    with rig.ctx.db.write() as session:
        session.execute(
            update(Recording)
            .where(Recording.sid == sim_rec.sid)
            .values(status="pending", stage=Stage.DELETE_TWILIO)
        )
    rig.drain()
    rec = load(rig, sim_rec.sid)
    assert (rec.status, rec.stage) == ("stored", "done")
    assert rec.twilio_deleted_at is not None
    assert rig.simulator.events(kind="delete") == []


def test_resume_at_delete_reverifies_and_refetches_a_replaced_object(rig: Rig) -> None:
    sim_rec = rig.simulator.add_recording(size_bytes=20_000)
    rig.ctx.settings = rig.ctx.settings.model_copy(update={"delete_from_twilio": False})
    rig.queue(sim_rec.sid)
    rig.drain()
    rec = load(rig, sim_rec.sid)
    assert rec.storage_key is not None
    path = rig.ctx.settings.data_dir / "recordings" / rec.storage_key
    path.write_bytes(b"RIFF" + b"\0" * 19_996)  # replaced behind callvault's back, same size
    rig.ctx.settings = rig.ctx.settings.model_copy(update={"delete_from_twilio": True})
    with rig.ctx.db.write() as session:
        session.execute(
            update(Recording)
            .where(Recording.sid == sim_rec.sid)
            .values(status="pending", stage=Stage.DELETE_TWILIO)
        )
    assert rig.worker().run_once()
    assert rig.simulator.events(kind="delete") == []  # no delete on a copy that did not verify
    rec = load(rig, sim_rec.sid)
    assert (rec.status, rec.stage) == ("pending", "fetch")
    assert rec.last_error is not None and "did not verify" in rec.last_error
    rig.drain()
    rec = load(rig, sim_rec.sid)
    assert rec.status == "stored"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sim_rec.sha256("wav")
    assert [e.status for e in rig.simulator.events(kind="delete")] == [204]


def test_absent_at_twilio_fails_permanently_without_touching_twilio(rig: Rig) -> None:
    sim_rec = rig.simulator.add_recording(size_bytes=1_000, status="absent", error_code=16102)
    rig.queue(sim_rec.sid)
    rig.worker().run_once()
    rec = load(rig, sim_rec.sid)
    assert rec.status == "failed"
    assert rec.last_error is not None and "absent" in rec.last_error and "16102" in rec.last_error
    assert rig.simulator.events(kind="media") == [] and rig.simulator.events(kind="delete") == []


def test_retry_gives_a_failed_recording_a_fresh_budget(rig: Rig) -> None:
    sim_rec = rig.simulator.add_recording(size_bytes=10_000)
    rig.simulator.add_fault("media", "server_error", sid=sim_rec.sid, times=4)
    rig.queue(sim_rec.sid)
    rig.drain()
    assert load(rig, sim_rec.sid).status == "failed"
    retry_recording(rig.ctx.db, sim_rec.sid)
    rig.clock.advance(0)
    rig.drain()
    rec = load(rig, sim_rec.sid)
    assert (rec.status, rec.sha256) == ("stored", sim_rec.sha256("wav"))


def test_media_over_the_size_limit_fails_at_once_and_keeps_the_twilio_copy(rig: Rig) -> None:
    rig.ctx.settings = rig.ctx.settings.model_copy(update={"max_media_mb": 1})
    from callvault.twilio.gateway import TwilioGateway

    rig.ctx.gateway.close()
    rig.ctx.gateway = TwilioGateway(
        rig.simulator.twilio_account(), timeout_seconds=5, max_media_bytes=1024 * 1024
    )
    sim_rec = rig.simulator.add_recording(size_bytes=2 * 1024 * 1024)
    rig.queue(sim_rec.sid)
    rig.worker().run_once()
    rec = load(rig, sim_rec.sid)
    assert (rec.status, rec.attempts) == ("failed", 1)
    assert rec.last_error is not None and "CALLVAULT_MAX_MEDIA_MB" in rec.last_error
    assert rig.simulator.events(kind="delete") == []
    assert [p for p in (rig.ctx.settings.data_dir / "recordings").rglob("*") if p.is_file()] == []
