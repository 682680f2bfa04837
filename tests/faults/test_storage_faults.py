"""The vault misbehaving: S3 unreachable, answering 5xx or SlowDown, resetting connections; the file store's
directory gone; an object replaced behind callvault's back between upload and verify. Every case is retried,
nothing half-written is ever visible, and Twilio's copy is kept until a good copy verified."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from callvault.storage.base import PutResult, Store
from callvault.storage.factory import open_store
from callvault.twilio.simulator.server import SimulatorServer
from tests.faults.rig import FaultRig, make_rig, s3_store_via, settings_for, vault_key
from tests.plugins.faults import S3FaultProxy, TcpProxy
from tests.plugins.s3 import S3Server

SMALL = 60_000
LARGE = 6 * 1024 * 1024  # two 5 MiB parts: a multipart upload


def uploads_in_progress(s3_server: S3Server, bucket: str) -> list[str]:
    return [u["Key"] for u in s3_server.client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


def object_keys(s3_server: S3Server, bucket: str) -> list[str]:
    return [o["Key"] for o in s3_server.client().list_objects_v2(Bucket=bucket).get("Contents", [])]


@pytest.fixture
def s3_tcp_rig(
    tmp_path: Path,
    database_url: str,
    simulator: SimulatorServer,
    s3_server: S3Server,
    s3_bucket: str,
    tcp_proxy: Any,
) -> Iterator[tuple[FaultRig, TcpProxy]]:
    """The pipeline on S3 through a TCP proxy the test can cut (connection refused) and restore."""
    port = int(s3_server.endpoint_url.rsplit(":", 1)[1])
    proxy = tcp_proxy(("127.0.0.1", port))
    settings = settings_for(tmp_path, database_url, simulator, storage_url=f"s3://{s3_bucket}/vault")
    rig = make_rig(
        settings=settings,
        simulator=simulator,
        store=s3_store_via(s3_server, s3_bucket, f"http://127.0.0.1:{proxy.port}"),
        view=s3_store_via(s3_server, s3_bucket),
    )
    yield rig, proxy
    rig.ctx.close()


def test_s3_refusing_connections_keeps_the_twilio_copy_until_it_is_back(
    s3_tcp_rig: tuple[FaultRig, TcpProxy], s3_server: S3Server, s3_bucket: str
) -> None:
    rig, proxy = s3_tcp_rig
    small = rig.simulator.add_recording(size_bytes=SMALL)
    large = rig.simulator.add_recording(size_bytes=LARGE)
    rig.queue(small.sid)
    rig.queue(large.sid)
    proxy.cut()
    assert rig.worker().run_once() and rig.worker().run_once()
    for rec in (small, large):
        row = rig.row(rec.sid)
        assert (row.status, row.stage) == ("pending", "fetch")
        assert row.last_error is not None and row.last_error.startswith("storage: S3 ")
        assert "EndpointConnectionError" in row.last_error
        rig.assert_twilio_copy_kept(rec.sid)
    assert object_keys(s3_server, s3_bucket) == [] and uploads_in_progress(s3_server, s3_bucket) == []

    proxy.restore()
    rig.drain()
    for rec in (small, large):
        rig.assert_kept_once(rec.sid)
    assert uploads_in_progress(s3_server, s3_bucket) == []


# (S3 operation, fault options, recording size, stage the recording waits in after the first attempt)
S3_FAULTS = [
    ("put_object", {"status": 503, "code": "SlowDown"}, SMALL, "fetch"),
    ("put_object", {"reset": True}, SMALL, "fetch"),
    ("create_multipart", {"status": 503, "code": "SlowDown"}, LARGE, "fetch"),
    ("upload_part", {"reset": True}, LARGE, "fetch"),
    ("complete_multipart", {"status": 500, "code": "InternalError"}, LARGE, "fetch"),
    ("head", {"status": 503, "code": "SlowDown"}, SMALL, "verify"),
]


def test_each_s3_error_is_retried_and_nothing_half_written_is_ever_visible(
    s3_rig: FaultRig, s3_fault_proxy: S3FaultProxy, s3_server: S3Server, s3_bucket: str
) -> None:
    rig = s3_rig
    for operation, options, size, stage in S3_FAULTS:
        rec = rig.simulator.add_recording(size_bytes=size)
        rig.queue(rec.sid)
        s3_fault_proxy.fail(operation, **options)
        assert rig.worker().run_once()  # one at a time, so the fault reaches this recording's request
        row = rig.row(rec.sid)
        assert (row.status, row.stage) == ("pending", stage), (operation, row.last_error)
        assert row.last_error is not None and row.last_error.startswith("storage: S3 "), operation
        assert rig.simulator.events(kind="delete") == []
        rig.assert_twilio_copy_kept(rec.sid)
        if stage == "fetch":
            assert rig.stored(rec.sid) is None, operation  # never visible half-written
        assert uploads_in_progress(s3_server, s3_bucket) == [], operation  # aborted on error
    assert [r.fault for r in s3_fault_proxy.logged() if r.fault] == [
        "503 SlowDown",
        "reset",
        "503 SlowDown",
        "reset",
        "500 InternalError",
        "503 SlowDown",
    ]

    rig.drain()
    recs = rig.simulator.recordings()
    for rec in recs:
        rig.assert_kept_once(rec.sid)
    # The recording whose HEAD failed resumed at verify: its object was uploaded once, never again.
    head_failed = recs[-1]
    puts = [r for r in s3_fault_proxy.logged("put_object") if r.key.endswith(f"{head_failed.sid}.wav")]
    assert [r.status for r in puts] == [200]
    assert uploads_in_progress(s3_server, s3_bucket) == []


def test_s3_failing_for_good_fails_the_recording_visibly_and_keeps_the_twilio_copy(
    s3_rig: FaultRig, s3_fault_proxy: S3FaultProxy
) -> None:
    rig = s3_rig
    rec = rig.simulator.add_recording(size_bytes=SMALL)
    s3_fault_proxy.fail("put_object", times=100, status=503, code="SlowDown")
    rig.queue(rec.sid)
    rig.drain()
    row = rig.row(rec.sid)
    assert row.status == "failed"
    assert row.last_error is not None and row.last_error.startswith(
        "gave up after 4 attempts: storage: S3 PUT"
    )
    assert "SlowDown" in row.last_error
    assert len(s3_fault_proxy.logged("put_object")) == 4
    rig.assert_twilio_copy_kept(rec.sid)


def test_callvaults_own_s3_client_absorbs_a_single_slowdown_within_one_attempt(
    tmp_path: Path,
    database_url: str,
    simulator: SimulatorServer,
    s3_server: S3Server,
    s3_bucket: str,
    s3_fault_proxy: S3FaultProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The store as `callvault worker` builds it (boto3 standard retries) rides out one SlowDown by itself."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_access_key)
    monkeypatch.setenv("AWS_DEFAULT_REGION", s3_server.region)
    settings = settings_for(
        tmp_path,
        database_url,
        simulator,
        storage_url=f"s3://{s3_bucket}/vault",
        s3_endpoint_url=s3_fault_proxy.endpoint_url,
        s3_part_size_mb=5,
    )
    rig = make_rig(
        settings=settings,
        simulator=simulator,
        store=open_store(settings),
        view=s3_store_via(s3_server, s3_bucket),
    )
    try:
        rec = simulator.add_recording(size_bytes=SMALL)
        s3_fault_proxy.fail("put_object", status=503, code="SlowDown")
        rig.queue(rec.sid)
        assert rig.worker().run_once()
        row = rig.assert_kept_once(rec.sid)
        assert row.attempts == 1
        assert [r.status for r in s3_fault_proxy.logged("put_object")] == [503, 200]
    finally:
        rig.ctx.close()


def test_file_store_directory_gone_keeps_the_twilio_copy_until_it_is_back(file_rig: FaultRig) -> None:
    rig = file_rig
    root = rig.ctx.settings.data_dir / "recordings"
    root.parent.mkdir(parents=True, exist_ok=True)
    # The tests run as root, where permission bits do not stop writes: a file where the directory should be
    # makes every write fail the way an unmounted or vanished volume does.
    root.write_bytes(b"not a directory")
    rec = rig.simulator.add_recording(size_bytes=SMALL)
    rig.queue(rec.sid)
    assert rig.worker().run_once()
    row = rig.row(rec.sid)
    assert (row.status, row.stage) == ("pending", "fetch")
    assert row.last_error is not None and row.last_error.startswith("storage: cannot create")
    rig.assert_twilio_copy_kept(rec.sid)

    root.unlink()
    rig.drain()
    rig.assert_kept_once(rec.sid)


class ReplacedOnce:
    """The real store, except that right after the first upload of each key someone replaces the object behind
    callvault's back (before callvault reads it back to verify) with ``forge(original bytes)``."""

    def __init__(self, store: Store, forge: Callable[[str], bytes]) -> None:
        self.store = store
        self.forge = forge
        self.replaced: list[str] = []

    def put(self, key: str, chunks: Iterable[bytes], *, content_type: str, max_bytes: int) -> PutResult:
        result = self.store.put(key, chunks, content_type=content_type, max_bytes=max_bytes)
        if key not in self.replaced:
            self.store.put(key, [self.forge(key)], content_type=content_type, max_bytes=max_bytes)
            self.replaced.append(key)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def test_an_object_replaced_between_upload_and_verify_is_fetched_again_before_any_delete(
    any_rig: FaultRig,
) -> None:
    rig = any_rig
    same_size = rig.simulator.add_recording(size_bytes=SMALL)
    shorter = rig.simulator.add_recording(size_bytes=SMALL)
    forged = {
        vault_key(rig.simulator, same_size.sid): same_size.media_bytes()[:44] + bytes(SMALL - 44),
        vault_key(rig.simulator, shorter.sid): shorter.media_bytes()[:-1000],
    }
    tamperer = ReplacedOnce(rig.ctx.store, forged.__getitem__)
    rig.ctx.store = tamperer  # type: ignore[assignment]
    for rec in (same_size, shorter):
        rig.queue(rec.sid)
        assert rig.worker().run_once()
        row = rig.row(rec.sid)
        assert (row.status, row.stage) == ("pending", "fetch")
        assert row.last_error is not None and "stored copy did not verify" in row.last_error
        assert rig.stored(rec.sid) == forged[vault_key(rig.simulator, rec.sid)]
        rig.assert_twilio_copy_kept(rec.sid)
        # Neither the confirmation download nor a DELETE: the copy failed before that.
        assert [e.kind for e in rig.simulator.events(sid=rec.sid)] == ["metadata", "media"]
    assert sorted(tamperer.replaced) == sorted(forged)

    rig.drain()
    for rec in (same_size, shorter):
        rig.assert_kept_once(rec.sid)


def test_an_abandoned_multipart_upload_of_the_same_recording_is_aborted_by_the_next_upload(
    s3_rig: FaultRig,
    s3_fault_proxy: S3FaultProxy,
    s3_server: S3Server,
    s3_bucket: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """What a worker killed mid-upload leaves behind (tests/faults/test_kill_s3.py kills one for real) is
    cleaned up by the next upload of that recording; without the permission to list uploads, the upload still
    succeeds and the leftover waits for the bucket's lifecycle rule."""
    rig = s3_rig
    client = s3_server.client()
    cleaned, denied = (rig.simulator.add_recording(size_bytes=LARGE) for _ in range(2))
    for rec in (cleaned, denied):
        name = f"vault/{vault_key(rig.simulator, rec.sid)}"
        upload = client.create_multipart_upload(Bucket=s3_bucket, Key=name, ChecksumAlgorithm="SHA256")
        part = rec.media_bytes()[: 5 * 1024 * 1024]
        client.upload_part(Bucket=s3_bucket, Key=name, UploadId=upload["UploadId"], PartNumber=1, Body=part)
    leftover = f"vault/{vault_key(rig.simulator, denied.sid)}"

    rig.queue(cleaned.sid)
    assert rig.worker().run_once()
    rig.assert_kept_once(cleaned.sid)
    assert uploads_in_progress(s3_server, s3_bucket) == [leftover]

    s3_fault_proxy.fail("list_uploads", status=403, code="AccessDenied")
    rig.queue(denied.sid)
    assert rig.worker().run_once()
    rig.assert_kept_once(denied.sid)
    assert uploads_in_progress(s3_server, s3_bucket) == [leftover]
    assert any(
        "listing of unfinished uploads" in r.getMessage() and "AccessDenied" in r.getMessage()
        for r in caplog.records
    )
