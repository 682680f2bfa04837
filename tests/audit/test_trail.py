"""The audit trail: append builds one hash chain, verify finds every kind of tampering, export and list."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, select, text, update

from callvault.audit import chain, trail
from callvault.db.database import Database
from callvault.db.models import AuditEntry, AuditHead
from callvault.errors import AuditChainBroken, InvalidInput, InvalidSid

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
RE = "RE" + "0123456789abcdef" * 2


def fill(db: Database, count: int) -> None:
    for n in range(count):
        with db.write() as session:
            trail.append(session, actor=f"user{n}@example.com", action="test.step", detail={"n": n}, now=T0)


def test_first_entry_links_to_64_zeros_and_each_next_entry_to_its_predecessor(db: Database) -> None:
    fill(db, 3)
    with db.read() as session:
        entries = list(session.scalars(select(AuditEntry).order_by(AuditEntry.id)))
        head = session.get(AuditHead, 1)
    assert [e.id for e in entries] == [1, 2, 3]
    assert entries[0].prev_hash == "0" * 64
    assert entries[1].prev_hash == entries[0].entry_hash
    assert entries[2].prev_hash == entries[1].entry_hash
    assert len({e.entry_hash for e in entries}) == 3
    assert head is not None
    assert (head.last_id, head.last_hash) == (3, entries[2].entry_hash)


def test_entry_hash_follows_the_documented_rule_so_outsiders_can_recompute_it(db: Database) -> None:
    with db.write() as session:
        trail.append(
            session,
            actor="alice@example.com",
            action="playback.link",
            recording_sid=RE,
            client_ip="203.0.113.9",
            user_agent="Mozilla/5.0 (ü)",
            detail={"b": [1, 2], "a": "x"},
            now=T0,
        )
    with db.read() as session:
        entry = session.get(AuditEntry, 1)
    assert entry is not None
    canonical = (
        '{"action":"playback.link","actor":"alice@example.com","at":"2026-03-01T12:00:00.123456+00:00",'
        '"client_ip":"203.0.113.9","detail":{"a":"x","b":[1,2]},"id":1,"recording_sid":"' + RE + '",'
        '"user_agent":"Mozilla/5.0 (\\u00fc)"}'
    )
    assert entry.entry_hash == hashlib.sha256(("0" * 64 + canonical).encode()).hexdigest()


def test_verify_accepts_an_empty_trail_and_an_intact_chain(db: Database) -> None:
    with db.read() as session:
        assert trail.verify(session) == trail.VerifyResult(ok=True, checked=0, first_bad_id=None, reason=None)
    fill(db, 5)
    with db.read() as session:
        assert trail.verify(session) == trail.VerifyResult(ok=True, checked=5, first_bad_id=None, reason=None)


def test_verify_names_a_row_whose_actor_was_edited_with_sql(db: Database) -> None:
    fill(db, 5)
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_entries SET actor = 'someone-else' WHERE id = 3"))
    with db.read() as session:
        result = trail.verify(session)
    assert (result.ok, result.first_bad_id, result.checked) == (False, 3, 2)
    assert "altered" in (result.reason or "")


def test_verify_names_a_row_whose_detail_was_edited_with_sql(db: Database) -> None:
    fill(db, 4)
    with db.write() as session:
        session.execute(update(AuditEntry).where(AuditEntry.id == 2).values(detail={"n": 99}))
    with db.read() as session:
        result = trail.verify(session)
    assert (result.ok, result.first_bad_id) == (False, 2)


def test_verify_names_the_next_row_when_an_edit_also_rewrote_that_rows_hash(db: Database) -> None:
    fill(db, 4)
    with db.write() as session:
        session.execute(update(AuditEntry).where(AuditEntry.id == 2).values(entry_hash="f" * 64))
    with db.read() as session:
        result = trail.verify(session)
    assert (result.ok, result.first_bad_id) == (False, 2)
    with db.write() as session:
        entry = session.get(AuditEntry, 2)
        assert entry is not None
        # Re-hash the edited row as an attacker would; the link from entry 3 still gives it away.
        entry.actor = "forger"
        fields = chain.entry_fields(
            entry_id=2,
            at=entry.at,
            actor="forger",
            action=entry.action,
            recording_sid=None,
            client_ip=None,
            user_agent=None,
            detail=entry.detail,
        )
        entry.entry_hash = chain.entry_hash(entry.prev_hash, fields)
    with db.read() as session:
        result = trail.verify(session)
    assert (result.ok, result.first_bad_id) == (False, 3)
    assert "link" in (result.reason or "")


def test_verify_names_the_missing_id_when_a_row_was_deleted(db: Database) -> None:
    fill(db, 5)
    with db.write() as session:
        session.execute(delete(AuditEntry).where(AuditEntry.id == 3))
    with db.read() as session:
        result = trail.verify(session)
    assert (result.ok, result.first_bad_id, result.checked) == (False, 3, 2)
    assert "missing" in (result.reason or "")


def test_verify_detects_a_truncated_tail(db: Database) -> None:
    fill(db, 5)
    with db.write() as session:
        session.execute(delete(AuditEntry).where(AuditEntry.id >= 4))
    with db.read() as session:
        result = trail.verify(session)
    assert (result.ok, result.first_bad_id, result.checked) == (False, 4, 3)
    assert "tail" in (result.reason or "")


def test_verify_detects_a_tail_removed_together_with_a_rolled_back_head(db: Database) -> None:
    fill(db, 5)
    with db.read() as session:
        third = session.get(AuditEntry, 3)
        assert third is not None
    with db.write() as session:
        session.execute(delete(AuditEntry).where(AuditEntry.id >= 4))
        session.execute(update(AuditHead).values(last_id=3, last_hash="e" * 64))
    with db.read() as session:
        result = trail.verify(session)
    assert (result.ok, result.first_bad_id) == (False, 3)
    assert "head" in (result.reason or "")


def test_verify_detects_a_head_moved_back_over_existing_entries(db: Database) -> None:
    fill(db, 3)
    with db.write() as session:
        session.execute(update(AuditHead).values(last_id=2))
    with db.read() as session:
        result = trail.verify(session)
    assert (result.ok, result.first_bad_id) == (False, 2)  # the head's hash names entry 3, not 2


def test_verify_detects_well_chained_entries_inserted_without_the_head(db: Database) -> None:
    fill(db, 3)
    with db.read() as session:
        last = session.get(AuditEntry, 3)
        assert last is not None
    fields = chain.entry_fields(
        entry_id=4,
        at=T0,
        actor="forger",
        action="test.step",
        recording_sid=None,
        client_ip=None,
        user_agent=None,
        detail=None,
    )
    with db.write() as session:
        session.add(
            AuditEntry(
                id=4,
                at=T0,
                actor="forger",
                action="test.step",
                prev_hash=last.entry_hash,
                entry_hash=chain.entry_hash(last.entry_hash, fields),
            )
        )
    with db.read() as session:
        result = trail.verify(session)
    assert (result.ok, result.first_bad_id, result.checked) == (False, 4, 3)
    assert "behind the head" in (result.reason or "")


def test_append_refuses_to_fork_when_the_head_row_was_deleted(db: Database) -> None:
    fill(db, 2)
    with db.write() as session:
        session.execute(delete(AuditHead))
    with pytest.raises(AuditChainBroken) as caught, db.write() as session:
        trail.append(session, actor="a", action="test.step")
    assert caught.value.entry_id == 1
    with db.read() as session:
        assert session.scalar(select(AuditEntry.id).order_by(AuditEntry.id.desc()).limit(1)) == 2
        result = trail.verify(session)
    assert (result.ok, result.first_bad_id, result.reason) == (False, 1, "the audit head row is missing")


def test_append_refuses_to_overwrite_when_the_head_was_moved_back(db: Database) -> None:
    fill(db, 3)
    with db.write() as session:
        session.execute(update(AuditHead).values(last_id=1))
    with pytest.raises(AuditChainBroken) as caught, db.write() as session:
        trail.append(session, actor="a", action="test.step")
    assert caught.value.entry_id == 2


def test_a_rolled_back_append_leaves_no_gap_in_the_chain(db: Database) -> None:
    fill(db, 1)
    with pytest.raises(RuntimeError), db.write() as session:
        trail.append(session, actor="a", action="test.lost")
        raise RuntimeError("the caller's work failed")
    fill(db, 1)
    with db.read() as session:
        actions = list(session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
        assert trail.verify(session).ok
    assert actions == ["test.step", "test.step"]


def test_over_long_client_fields_are_clipped_and_still_verify(db: Database) -> None:
    with db.write() as session:
        entry = trail.append(
            session, actor="a" * 400, action="test.step", user_agent="u" * 2000, client_ip="1" * 99
        )
    assert (len(entry.actor), len(entry.user_agent or ""), len(entry.client_ip or "")) == (300, 512, 64)
    with db.read() as session:
        assert trail.verify(session).ok


def test_append_rejects_malformed_input_before_touching_the_chain(db: Database) -> None:
    with db.write() as session:
        with pytest.raises(InvalidSid):
            trail.append(session, actor="a", action="x", recording_sid="RE123")
        with pytest.raises(InvalidInput):
            trail.append(session, actor="a", action="")
        with pytest.raises(InvalidInput):
            trail.append(session, actor="a", action="x", detail={"when": datetime.now(UTC)})
        with pytest.raises(InvalidInput):
            trail.append(session, actor="a", action="x", now=datetime(2026, 1, 1))  # noqa: DTZ001
    with db.read() as session:
        assert session.scalar(select(AuditEntry.id)) is None


def test_concurrent_appenders_on_separate_connections_keep_one_chain(database_url: str) -> None:
    threads, per_thread = 6, 15
    databases = [Database(database_url) for _ in range(threads)]  # separate pools: separate connections
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def work(db: Database, worker: int) -> None:
        try:
            start.wait()
            for n in range(per_thread):
                with db.write() as session:
                    trail.append(session, actor=f"worker{worker}", action="test.race", detail={"n": n})
        except BaseException as exc:
            errors.append(exc)

    runners = [threading.Thread(target=work, args=(db, i)) for i, db in enumerate(databases)]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join()
    try:
        assert errors == []
        with databases[0].read() as session:
            ids = list(session.scalars(select(AuditEntry.id).order_by(AuditEntry.id)))
            result = trail.verify(session)
        assert ids == list(range(1, threads * per_thread + 1))
        assert result == trail.VerifyResult(
            ok=True, checked=threads * per_thread, first_bad_id=None, reason=None
        )
    finally:
        for db in databases:
            db.dispose()


def test_verify_while_others_append_does_not_report_a_false_break(database_url: str) -> None:
    writer, reader = Database(database_url), Database(database_url)
    stop = threading.Event()
    results: list[trail.VerifyResult] = []

    def append_until_stopped() -> None:
        while not stop.is_set():
            with writer.write() as session:
                trail.append(session, actor="w", action="test.race")

    thread = threading.Thread(target=append_until_stopped)
    thread.start()
    try:
        for _ in range(20):
            with reader.read() as session:
                results.append(trail.verify(session))
    finally:
        stop.set()
        thread.join()
        writer.dispose()
        reader.dispose()
    assert [r for r in results if not r.ok] == []


def test_export_jsonl_lines_carry_every_field_and_both_hashes(db: Database) -> None:
    with db.write() as session:
        trail.append(session, actor="a", action="one", now=T0)
        trail.append(session, actor="b", action="two", detail={"k": 1}, now=T0 + timedelta(days=2))
    with db.read() as session:
        lines = list(trail.export(session, since=None, fmt="jsonl"))
        later = list(trail.export(session, since=T0 + timedelta(days=1), fmt="jsonl"))
    assert all(line.endswith("\n") for line in lines)
    rows = [json.loads(line) for line in lines]
    assert [r["action"] for r in rows] == ["one", "two"]
    assert set(rows[1]) == {*trail.EXPORT_COLUMNS}
    assert rows[1]["prev_hash"] == rows[0]["entry_hash"]
    fields = {k: v for k, v in rows[1].items() if k not in ("prev_hash", "entry_hash")}
    recomputed = hashlib.sha256((rows[1]["prev_hash"] + chain.canonical_json(fields)).encode()).hexdigest()
    assert recomputed == rows[1]["entry_hash"]
    assert [json.loads(line)["action"] for line in later] == ["two"]


def test_export_csv_has_a_header_and_defuses_spreadsheet_formulas(db: Database) -> None:
    with db.write() as session:
        trail.append(
            session, actor="a", action="one", user_agent='=HYPERLINK("http://evil")', detail={"x": 1}
        )
    with db.read() as session:
        text_out = "".join(trail.export(session, since=None, fmt="csv"))
    rows = list(csv.reader(io.StringIO(text_out)))
    assert rows[0] == list(trail.EXPORT_COLUMNS)
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["user_agent"] == '\'=HYPERLINK("http://evil")'
    assert json.loads(row["detail"]) == {"x": 1}
    assert len(row["entry_hash"]) == 64
    with db.read() as session, pytest.raises(InvalidInput):
        trail.export(session, since=None, fmt="xml")  # type: ignore[arg-type]


def test_list_entries_pages_newest_first_and_filters(db: Database) -> None:
    with db.write() as session:
        for n in range(6):
            trail.append(
                session,
                actor="a",
                action="even" if n % 2 == 0 else "odd",
                recording_sid=RE if n == 5 else None,
            )
    with db.read() as session:
        first = trail.list_entries(session, limit=4)
        second = trail.list_entries(session, limit=4, before_id=first[-1].id)
        odd = trail.list_entries(session, limit=10, action="odd")
        about = trail.list_entries(session, limit=10, recording_sid=RE)
        with pytest.raises(InvalidInput):
            trail.list_entries(session, limit=0)
    assert [e.id for e in first] == [6, 5, 4, 3]
    assert [e.id for e in second] == [2, 1]
    assert [e.id for e in odd] == [6, 4, 2]
    assert [e.id for e in about] == [6]
