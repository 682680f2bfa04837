"""Claims and leases on the recordings table, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from callvault.db.database import Database
from callvault.db.models import RecordingStatus, Stage
from callvault.db.recordings import claim_next, fenced_update, insert_if_absent
from tests.factories import random_sid


def queue(db: Database, count: int, *, now: datetime) -> list[str]:
    sids = [random_sid("RE") for _ in range(count)]
    with db.write() as session:
        for sid in sids:
            insert_if_absent(
                session,
                {
                    "sid": sid,
                    "account_sid": "AC" + "0" * 32,
                    "status": RecordingStatus.PENDING,
                    "stage": Stage.FETCH,
                    "created_at": now,
                    "next_attempt_at": now,
                    "attempts": 0,
                },
            )
    return sids


def test_each_recording_is_claimed_by_one_worker_at_a_time(db: Database) -> None:
    now = datetime.now(UTC)
    sids = queue(db, 20, now=now)
    claimed: list[str] = []
    lock = threading.Lock()

    def work(index: int) -> None:
        while True:
            with db.write() as session:
                claim = claim_next(session, owner=f"w{index}", lease_seconds=60, now=now)
            if claim is None:
                return
            with lock:
                claimed.append(claim.sid)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == sorted(sids)  # every one claimed, none twice


def test_an_expired_lease_is_taken_over_and_the_old_owner_is_fenced_out(db: Database) -> None:
    now = datetime.now(UTC)
    [sid] = queue(db, 1, now=now)
    with db.write() as session:
        first = claim_next(session, owner="dead", lease_seconds=5, now=now)
    assert first is not None
    with db.write() as session:
        assert claim_next(session, owner="other", lease_seconds=5, now=now + timedelta(seconds=1)) is None
    later = now + timedelta(seconds=6)
    with db.write() as session:
        second = claim_next(session, owner="alive", lease_seconds=5, now=later)
    assert second is not None and second.sid == sid and second.attempts == 2
    with db.write() as session:
        assert not fenced_update(session, sid=sid, owner="dead", now=later, values={"stage": Stage.VERIFY})
        assert fenced_update(session, sid=sid, owner="alive", now=later, values={"stage": Stage.VERIFY})


def test_a_recording_waiting_for_its_retry_time_is_not_claimed(db: Database) -> None:
    now = datetime.now(UTC)
    queue(db, 1, now=now + timedelta(minutes=5))
    with db.write() as session:
        assert claim_next(session, owner="w", lease_seconds=5, now=now) is None
