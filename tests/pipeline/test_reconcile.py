"""Reconciliation queues what Twilio lists and no callback announced — once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from callvault.db.recordings import get_recording, list_recordings
from callvault.pipeline.reconcile import reconcile
from tests.pipeline.conftest import Rig


def test_reconcile_queues_unannounced_completed_recordings_once(rig: Rig) -> None:
    today = datetime.now(UTC)
    known = rig.simulator.add_recording(size_bytes=1_000)
    lost = rig.simulator.add_recording(size_bytes=1_000)
    rig.simulator.add_recording(size_bytes=1_000, status="absent", error_code=16101)
    old = rig.simulator.add_recording(size_bytes=1_000, date_created=today - timedelta(days=10))
    rig.queue(known.sid)

    report = reconcile(
        rig.ctx, account_sid=rig.simulator.account_sid, since=(today - timedelta(days=1)).date()
    )
    assert (report.seen, report.queued, report.skipped_not_completed) == (3, 1, 1)
    with rig.ctx.db.read() as session:
        rows, _ = list_recordings(session, limit=10)
        assert sorted(r.sid for r in rows) == sorted([known.sid, lost.sid])
        assert get_recording(session, lost.sid).status == "pending"
    assert old.sid not in {r.sid for r in rows}

    again = reconcile(
        rig.ctx, account_sid=rig.simulator.account_sid, since=(today - timedelta(days=1)).date()
    )
    assert again.queued == 0
    rig.drain()
    with rig.ctx.db.read() as session:
        assert get_recording(session, lost.sid).status == "stored"
