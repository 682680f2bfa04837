"""Twilio misbehaving: every media, metadata and delete fault the simulator can inject is retried or ends in a
visible failure; an error document is never stored; Twilio's copy is deleted once, and only after the vault
holds a complete, verified copy of Twilio's exact bytes."""

from __future__ import annotations

from tests.faults.rig import FaultRig, kinds

SIZE = 200_000  # four 64 KiB chunks: a reset (after a third) and a truncation (after half) cut mid-body

# (fault, extra options, times, what the recording's last_error says after the first attempt)
RECOVERABLE = [
    ("not_ready", {}, 2, "media not ready at Twilio yet"),
    ("rate_limit", {"retry_after": 2}, 2, "Twilio rate limit"),
    ("server_error", {"status": 500}, 2, "Twilio answered 500 to the media request"),
    ("server_error", {"status": 503}, 2, "Twilio answered 503 to the media request"),
    ("reset", {}, 2, "broke off"),
    ("truncate", {}, 2, "broke off"),
    ("wrong_content_type", {}, 2, "not audio"),
    # The simulator flips the same bytes every time, so only a body that differs from another download of
    # the same recording can be noticed at all: mutate the first download only.
    ("mutate", {}, 1, "differed between two downloads"),
]


def fetch_events(rig: FaultRig, sid: str) -> list[tuple[str, int, str | None]]:
    return kinds(rig.simulator.events(sid=sid))


def test_each_media_fault_is_retried_until_a_good_copy_is_stored_then_deleted_once(
    file_rig: FaultRig,
) -> None:
    rig = file_rig
    cases = {}
    for fault, options, times, reason in RECOVERABLE:
        rec = rig.simulator.add_recording(size_bytes=SIZE)
        rig.simulator.add_fault("media", fault, sid=rec.sid, times=times, **options)
        rig.queue(rec.sid)
        cases[rec.sid] = (fault, times, reason)

    for _ in cases:  # one attempt each: every retry is scheduled in the (fake) future
        assert rig.worker().run_once()
    assert rig.worker().run_once() is False
    assert rig.simulator.events(kind="delete") == []
    for sid, (fault, _, reason) in cases.items():
        row = rig.row(sid)
        assert (row.status, row.stage) == ("pending", "fetch"), fault
        assert row.last_error is not None and reason in row.last_error, (fault, row.last_error)
        if fault != "mutate":  # a body that failed any check is never stored
            assert rig.stored(sid) is None, fault
    assert [p.name for p in rig.ctx.settings.data_dir.rglob("*.partial")] == []

    rig.drain()
    for sid, (fault, times, _) in cases.items():
        rig.assert_kept_once(sid)
        media = rig.simulator.events(kind="media", sid=sid)
        faulted = [event for event in media if event.fault == fault]
        good = [event for event in media if event.fault is None]
        assert len(faulted) == times, fault
        # Every faulted answer came before the two agreeing complete downloads; Twilio's DELETE came last.
        assert fetch_events(rig, sid)[-3:] == [
            ("media", 200, None),
            ("media", 200, None),
            ("delete", 204, None),
        ]
        assert all(e.completed for e in good) and max(e.seq for e in faulted) < min(e.seq for e in good), (
            fault
        )


PERSISTENT = [
    ("not_ready", {}, "media not ready at Twilio yet"),
    ("server_error", {"status": 500}, "Twilio answered 500 to the media request"),
    ("reset", {}, "broke off"),
    ("truncate", {}, "broke off"),
    ("wrong_content_type", {}, "not audio"),
]


def test_a_media_fault_that_never_ends_fails_visibly_with_nothing_stored_and_twilio_untouched(
    file_rig: FaultRig,
) -> None:
    rig = file_rig
    cases = {}
    for fault, options, reason in PERSISTENT:
        rec = rig.simulator.add_recording(size_bytes=SIZE)
        rig.simulator.add_fault("media", fault, sid=rec.sid, times=50, **options)
        rig.queue(rec.sid)
        cases[rec.sid] = (fault, reason)
    rig.drain()

    for sid, (fault, reason) in cases.items():
        row = rig.row(sid)
        assert row.status == "failed", fault
        assert row.last_error is not None
        assert row.last_error.startswith("gave up after 4 attempts: ") and reason in row.last_error, fault
        assert (row.sha256, row.size_bytes, row.stored_at, row.twilio_deleted_at) == (None, None, None, None)
        assert rig.stored(sid) is None
        assert [e.kind for e in rig.simulator.events(sid=sid)] == ["metadata", "media"] * 4
        rig.assert_twilio_copy_kept(sid)
    assert [p for p in (rig.ctx.settings.data_dir / "recordings").rglob("*") if p.is_file()] == []


def test_metadata_5xx_and_429_are_retried_before_any_media_is_fetched(file_rig: FaultRig) -> None:
    rig = file_rig
    cases = {}
    for options, reason in (
        ({"status": 500}, "Twilio answered 500"),
        ({"status": 503}, "Twilio answered 503"),
        ({"retry_after": 1}, "rate limit"),
    ):
        rec = rig.simulator.add_recording(size_bytes=SIZE)
        fault = "rate_limit" if "retry_after" in options else "server_error"
        rig.simulator.add_fault("metadata", fault, sid=rec.sid, times=2, **options)
        rig.queue(rec.sid)
        cases[rec.sid] = reason
    for _ in cases:
        assert rig.worker().run_once()
    for sid, reason in cases.items():
        row = rig.row(sid)
        assert (row.status, row.stage, row.storage_key) == ("pending", "fetch", None)
        assert row.last_error is not None and reason in row.last_error
    rig.drain()
    for sid in cases:
        rig.assert_kept_once(sid)
        assert [kind for kind, _, _ in fetch_events(rig, sid)] == [
            "metadata",
            "metadata",
            "metadata",
            "media",
            "media",
            "delete",
        ]


def test_a_refused_delete_is_retried_at_the_delete_stage_checking_twilio_first_without_refetching(
    file_rig: FaultRig,
) -> None:
    rig = file_rig
    cases = {}
    for fault, options, reason in (
        ("server_error", {"status": 500}, "Twilio answered 500 to deleting"),
        ("server_error", {"status": 503}, "Twilio answered 503 to deleting"),
        ("rate_limit", {"retry_after": 5}, "rate limit"),
    ):
        rec = rig.simulator.add_recording(size_bytes=SIZE)
        rig.simulator.add_fault("delete", fault, sid=rec.sid, **options)
        rig.queue(rec.sid)
        cases[rec.sid] = (fault, options, reason)
    before = rig.clock()
    for _ in cases:
        assert rig.worker().run_once()
    for sid, (fault, options, reason) in cases.items():
        row = rig.row(sid)
        assert (row.status, row.stage) == ("pending", "delete_twilio")
        assert row.last_error is not None and reason in row.last_error
        assert rig.stored(sid) is not None  # the verified copy stays; only the DELETE is retried
        if fault == "rate_limit":  # Retry-After is honoured, not the (shorter) backoff
            assert 4.5 <= (row.next_attempt_at - before).total_seconds() <= 7

    rig.drain()
    for sid, (fault, options, _) in cases.items():
        rig.assert_kept_once(sid)
        status = options.get("status", 429)
        # The resumed attempt asks Twilio first, fetches no media again, then deletes.
        assert fetch_events(rig, sid) == [
            ("metadata", 200, None),
            ("media", 200, None),
            ("media", 200, None),
            ("delete", status, fault),
            ("metadata", 200, None),
            ("delete", 204, None),
        ]
        [entry] = rig.audit(sid)
        assert entry.detail == {"already_gone": False}


def test_delete_whose_answer_is_lost_is_not_sent_twice(file_rig: FaultRig) -> None:
    """The simulator's delete ``reset`` deletes, then drops the connection before the answer: callvault cannot
    know it succeeded. The retry resumes at delete_twilio, finds the recording gone, and records that."""
    rig = file_rig
    rec = rig.simulator.add_recording(size_bytes=SIZE)
    rig.simulator.add_fault("delete", "reset", sid=rec.sid)
    rig.queue(rec.sid)
    assert rig.worker().run_once()
    row = rig.row(rec.sid)
    assert (row.status, row.stage, row.twilio_deleted_at) == ("pending", "delete_twilio", None)
    assert rig.simulator.recording(rec.sid).deleted  # type: ignore[union-attr]

    rig.drain()
    row = rig.assert_kept_once(rec.sid)
    assert fetch_events(rig, rec.sid)[-2:] == [("delete", 200, "reset"), ("metadata", 404, None)]
    [entry] = rig.audit(rec.sid)
    assert entry.detail == {"already_gone": True}  # honest: this attempt did not see its DELETE succeed


def test_many_recordings_under_a_random_twilio_fail_rate_are_all_kept_exactly_once(
    file_rig: FaultRig,
) -> None:
    rig = file_rig
    rig.ctx.settings = rig.ctx.settings.model_copy(update={"max_attempts": 40})
    recs = [rig.simulator.add_recording(size_bytes=20_000 + 1000 * i) for i in range(8)]
    rig.simulator.set_fail_rate(0.3, seed=7)
    for rec in recs:
        rig.queue(rec.sid)
    rig.drain(max_rounds=400)
    failures = [e for e in rig.simulator.events() if e.status in (429, 500)]
    assert len(failures) >= 5  # the faults really happened
    for rec in recs:
        rig.assert_kept_once(rec.sid)
        events = rig.simulator.events(sid=rec.sid)
        [delete] = [e for e in events if e.kind == "delete" and e.status == 204]
        assert delete.seq == max(e.seq for e in events if e.kind in ("media", "delete"))


def test_a_recording_deleted_at_twilio_by_someone_else_before_the_confirmation_is_kept_as_stored(
    file_rig: FaultRig,
) -> None:
    """Nothing is left at Twilio to compare the verified copy with, or to delete: the vault copy is what
    remains, recorded as stored with the deletion noted as already done."""
    rig = file_rig
    rec = rig.simulator.add_recording(size_bytes=SIZE)
    store = rig.ctx.store
    original_stat = store.stat

    def stat_then_gone_at_twilio(key: str) -> object:
        found = original_stat(key)
        rig.simulator.state.delete(rec.sid)  # e.g. an operator in Twilio's console, right after our verify
        return found

    store.stat = stat_then_gone_at_twilio  # type: ignore[method-assign]
    rig.queue(rec.sid)
    assert rig.worker().run_once()
    row = rig.row(rec.sid)
    assert (row.status, row.stage, row.sha256) == ("stored", "done", rec.sha256("wav"))
    assert rig.stored(rec.sid) == rec.media_bytes()
    assert fetch_events(rig, rec.sid) == [
        ("metadata", 200, None),
        ("media", 200, None),
        ("media", 404, None),
        ("metadata", 404, None),
        ("delete", 404, None),
    ]
    [entry] = rig.audit(rec.sid)
    assert entry.detail == {"already_gone": True}
    assert rig.witness.early == []
    assert rig.witness.deletions[rec.sid] == 2  # the operator's, and callvault's own, answered 404
