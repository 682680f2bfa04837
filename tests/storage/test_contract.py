"""The storage contract (callvault/storage/base.py), run against both stores: FileStore in a temporary
directory and S3Store on ministack, signed with an IAM user's key."""

from __future__ import annotations

import base64
import hashlib
import os
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from callvault.errors import InvalidInput, ObjectMissing, PayloadTooLarge
from callvault.storage.base import PutResult, Store, StoredObject
from callvault.storage.local import FileStore
from callvault.storage.s3 import S3Store
from tests.plugins.s3 import TEST_PART_SIZE

MIB = 1024 * 1024
GIB = 1024 * MIB
KEY = "AC00000000000000000000000000000000/2024/05/06/RE00000000000000000000000000000000.wav"
NEIGHBOUR = "AC00000000000000000000000000000000/2024/05/06/RE11111111111111111111111111111111.wav"


@dataclass
class Backend:
    """A store plus a way around it, to change or inspect what it holds without its help."""

    store: Store
    replace_behind: Callable[[str, bytes], None]
    leftovers: Callable[[], list[str]]


def _file_backend(root: Path) -> Backend:
    store = FileStore(root)

    def replace_behind(key: str, data: bytes) -> None:
        (root / key).write_bytes(data)

    def leftovers() -> list[str]:
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.name.endswith(".partial"))

    return Backend(store, replace_behind, leftovers)


def _s3_backend(store: S3Store) -> Backend:
    client = store.client

    def replace_behind(key: str, data: bytes) -> None:
        # A different writer: its own (valid) checksum of the new bytes, as any S3 client would send.
        checksum = base64.b64encode(hashlib.sha256(data).digest()).decode()
        client.put_object(
            Bucket=store.bucket, Key=f"{store.prefix}/{key}", Body=data, ChecksumSHA256=checksum
        )

    def leftovers() -> list[str]:
        uploads = client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", [])
        return sorted(upload["Key"] for upload in uploads)

    return Backend(store, replace_behind, leftovers)


@pytest.fixture(params=["file", pytest.param("s3", marks=pytest.mark.s3)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "file":
        return _file_backend(tmp_path / "store")
    return _s3_backend(request.getfixturevalue("s3_store"))


class Boom(Exception):
    """Raised by a chunk iterator: the download from Twilio broke."""


def chunked(data: bytes, size: int = MIB) -> Iterator[bytes]:
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]


def failing_after(data: bytes, error: Exception) -> Iterator[bytes]:
    yield from chunked(data)
    raise error


def put(store: Store, data: bytes, key: str = KEY, max_bytes: int = 1 << 40) -> PutResult:
    return store.put(key, chunked(data), content_type="audio/wav", max_bytes=max_bytes)


def read(store: Store, key: str = KEY, **kwargs: int | None) -> bytes:
    return b"".join(store.open(key, **kwargs))  # type: ignore[arg-type]


# -- round trip -------------------------------------------------------------------------------------
def test_put_then_open_returns_the_bytes_and_put_reports_their_size_and_sha256(backend: Backend) -> None:
    data = os.urandom(3 * MIB + 17)
    result = put(backend.store, data)
    assert (result.key, result.size, result.sha256) == (KEY, len(data), hashlib.sha256(data).hexdigest())
    assert read(backend.store) == data


def test_put_of_an_empty_stream_stores_an_empty_object(backend: Backend) -> None:
    result = put(backend.store, b"")
    assert result.size == 0
    assert read(backend.store) == b""
    stat = backend.store.stat(KEY)
    assert stat is not None and (stat.size, stat.checksum) == (0, result.checksum)


def test_put_replaces_an_existing_object(backend: Backend) -> None:
    put(backend.store, b"first version")
    second = put(backend.store, b"second")
    assert read(backend.store) == b"second"
    assert backend.store.stat(KEY) == _stored(second)


def test_stat_reports_the_size_and_checksum_put_returned(backend: Backend) -> None:
    result = put(backend.store, os.urandom(1000))
    assert backend.store.stat(KEY) == _stored(result)


def test_stat_of_a_missing_key_is_none(backend: Backend) -> None:
    put(backend.store, b"x", key=NEIGHBOUR)
    assert backend.store.stat(KEY) is None


def test_stat_detects_an_object_replaced_behind_the_stores_back(backend: Backend) -> None:
    data = os.urandom(4096)
    result = put(backend.store, data)
    tampered = bytes([data[0] ^ 1]) + data[1:]  # same size, one bit flipped
    backend.replace_behind(KEY, tampered)
    stat = backend.store.stat(KEY)
    assert stat is not None
    assert stat.size == result.size
    assert stat.checksum != result.checksum


# -- failures store nothing -------------------------------------------------------------------------
@pytest.mark.parametrize("sent", [1000, 7 * MIB], ids=["within-first-part", "after-multipart-started"])
def test_a_failing_chunk_iterator_propagates_and_stores_nothing(backend: Backend, sent: int) -> None:
    error = Boom("connection reset by Twilio")
    with pytest.raises(Boom) as raised:
        backend.store.put(
            KEY, failing_after(os.urandom(sent), error), content_type="audio/wav", max_bytes=1 << 30
        )
    assert raised.value is error
    assert backend.store.stat(KEY) is None
    assert backend.leftovers() == []


def test_a_failing_overwrite_keeps_the_previous_object(backend: Backend) -> None:
    first = put(backend.store, b"the good copy")
    with pytest.raises(Boom):
        backend.store.put(
            KEY, failing_after(os.urandom(7 * MIB), Boom()), content_type="audio/wav", max_bytes=1 << 30
        )
    assert backend.store.stat(KEY) == _stored(first)
    assert read(backend.store) == b"the good copy"
    assert backend.leftovers() == []


@pytest.mark.parametrize("size", [2000, 7 * MIB], ids=["single", "multipart"])
def test_more_than_max_bytes_is_refused_and_stores_nothing(backend: Backend, size: int) -> None:
    with pytest.raises(InvalidInput) as raised:
        put(backend.store, os.urandom(size), max_bytes=size - 1)
    assert isinstance(raised.value, PayloadTooLarge)
    assert backend.store.stat(KEY) is None
    assert backend.leftovers() == []


def test_exactly_max_bytes_is_accepted(backend: Backend) -> None:
    result = put(backend.store, b"x" * 2000, max_bytes=2000)
    assert result.size == 2000


# -- ranges -----------------------------------------------------------------------------------------
def test_open_serves_inclusive_byte_ranges(backend: Backend) -> None:
    data = bytes(range(256)) * 40
    put(backend.store, data)
    assert read(backend.store, start=2, end=4) == data[2:5]
    assert read(backend.store, start=5000) == data[5000:]
    assert read(backend.store, start=0, end=0) == data[:1]
    assert read(backend.store, start=10, end=10**9) == data[10:]  # an end past the object is clamped


@pytest.mark.parametrize(("start", "end"), [(-1, None), (5, 4), (10240, None), (20000, 20010)])
def test_open_refuses_ranges_it_cannot_satisfy(backend: Backend, start: int, end: int | None) -> None:
    put(backend.store, bytes(10240))
    with pytest.raises(InvalidInput):
        read(backend.store, start=start, end=end)


def test_open_of_a_missing_key_raises_object_missing(backend: Backend) -> None:
    with pytest.raises(ObjectMissing):
        backend.store.open(KEY)


def test_a_stream_closed_half_way_releases_the_object(backend: Backend) -> None:
    data = os.urandom(3 * MIB)
    put(backend.store, data)
    stream = backend.store.open(KEY)
    first = next(stream)
    assert data.startswith(first) and len(first) < len(data)
    stream.close()  # type: ignore[attr-defined]
    backend.store.delete(KEY)
    assert backend.store.stat(KEY) is None


# -- delete -----------------------------------------------------------------------------------------
def test_delete_removes_the_object_and_is_idempotent(backend: Backend) -> None:
    put(backend.store, b"bye")
    put(backend.store, b"stays", key=NEIGHBOUR)
    backend.store.delete(KEY)
    assert backend.store.stat(KEY) is None
    backend.store.delete(KEY)
    with pytest.raises(ObjectMissing):
        backend.store.open(KEY)
    assert read(backend.store, NEIGHBOUR) == b"stays"


# -- large objects ----------------------------------------------------------------------------------
def test_an_object_of_several_parts_round_trips_and_verifies(backend: Backend) -> None:
    data = os.urandom(11 * MIB + 123)
    result = put(backend.store, data)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert backend.store.stat(KEY) == _stored(result)
    assert hashlib.sha256(read(backend.store)).hexdigest() == result.sha256


def test_memory_stays_bounded_for_a_large_put(backend: Backend) -> None:
    size = 64 * MIB
    block = os.urandom(MIB)

    def chunks() -> Iterator[bytes]:
        for index in range(size // MIB):
            yield index.to_bytes(8, "big") + block[8:]  # a new 1 MiB chunk each time, like a download

    tracemalloc.start()
    try:
        result = backend.store.put(KEY, chunks(), content_type="audio/wav", max_bytes=size)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.size == size
    # The S3 store holds one part buffer (5 MiB here, a little more while a chunk lands in it), the copy
    # of a part handed to boto3, and one chunk: about 13 MiB measured. The whole object would be 64 MiB.
    assert peak < 3 * TEST_PART_SIZE + 2 * MIB, f"peak {peak / MIB:.1f} MiB"
    assert backend.store.stat(KEY) == _stored(result)


def test_presign_is_none_for_the_file_store_and_a_url_for_s3(backend: Backend) -> None:
    put(backend.store, b"x")
    url = backend.store.presign(KEY, ttl_seconds=30, content_type="audio/wav", filename="r.wav")
    if isinstance(backend.store, FileStore):
        assert url is None
    else:
        assert url is not None and "X-Amz-Signature=" in url


def test_keys_that_could_escape_are_refused_by_every_method(backend: Backend) -> None:
    for key in ("../escape.wav", "/etc/passwd", "a/../../b.wav", "a\\b.wav", "a\x00b.wav", "a//b.wav"):
        with pytest.raises(InvalidInput):
            put(backend.store, b"x", key=key)
        with pytest.raises(InvalidInput):
            backend.store.stat(key)
        with pytest.raises(InvalidInput):
            backend.store.open(key)
        with pytest.raises(InvalidInput):
            backend.store.delete(key)


def test_check_passes_on_a_usable_store(backend: Backend) -> None:
    backend.store.check()


def _stored(result: PutResult) -> StoredObject:
    """The StoredObject a verified put must stat as."""
    return StoredObject(key=result.key, size=result.size, checksum=result.checksum)
