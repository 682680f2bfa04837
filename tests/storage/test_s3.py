"""S3Store behaviour beyond the shared contract: checksums as S3 reports them, SSE, presigned URLs,
refused credentials and error mapping. Against ministack with signature checking on."""

from __future__ import annotations

import base64
import hashlib
import os
import time
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from callvault.errors import StorageError
from callvault.settings import S3Sse
from callvault.storage.s3 import S3Store
from tests.plugins.s3 import TEST_PART_SIZE, S3Server

pytestmark = pytest.mark.s3

MIB = 1024 * 1024
KEY = "AC00000000000000000000000000000000/2024/05/06/RE00000000000000000000000000000000.wav"


def chunked(data: bytes, size: int = MIB) -> Iterator[bytes]:
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def head(store: S3Store, key: str = KEY) -> dict:
    return store.client.head_object(Bucket=store.bucket, Key=f"vault/{key}", ChecksumMode="ENABLED")


def http() -> httpx.Client:
    return httpx.Client(trust_env=False, timeout=10.0)


def test_objects_land_under_the_stores_prefix(s3_store: S3Store) -> None:
    s3_store.put(KEY, [b"abc"], content_type="audio/wav", max_bytes=10)
    listed = s3_store.client.list_objects_v2(Bucket=s3_store.bucket)
    assert [item["Key"] for item in listed["Contents"]] == [f"vault/{KEY}"]
    assert s3_store.description == f"s3://{s3_store.bucket}/vault"


def test_a_single_put_reports_the_whole_object_checksum_s3_stores(s3_store: S3Store) -> None:
    data = os.urandom(TEST_PART_SIZE)  # exactly one part: still a single PUT
    result = s3_store.put(KEY, chunked(data), content_type="audio/wav", max_bytes=len(data))
    answer = head(s3_store)
    assert result.checksum == b64(hashlib.sha256(data).digest()) == answer["ChecksumSHA256"]
    assert answer["ChecksumType"] == "FULL_OBJECT"


def test_a_multipart_put_reports_the_composite_checksum_s3_stores(s3_store: S3Store) -> None:
    data = os.urandom(11 * MIB)
    result = s3_store.put(KEY, chunked(data), content_type="audio/wav", max_bytes=len(data))
    parts = [data[i : i + TEST_PART_SIZE] for i in range(0, len(data), TEST_PART_SIZE)]
    composite = b64(hashlib.sha256(b"".join(hashlib.sha256(p).digest() for p in parts)).digest())
    answer = head(s3_store)
    assert result.checksum == f"{composite}-3" == answer["ChecksumSHA256"]
    assert answer["ChecksumType"] == "COMPOSITE"
    assert result.sha256 == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("size", [1000, 6 * MIB], ids=["single", "multipart"])
def test_every_object_is_written_with_sse_and_its_content_type(s3_store: S3Store, size: int) -> None:
    s3_store.put(KEY, chunked(os.urandom(size)), content_type="audio/mpeg", max_bytes=size)
    answer = head(s3_store)
    assert answer["ServerSideEncryption"] == "AES256"
    assert answer["ContentType"] == "audio/mpeg"


def test_a_presigned_url_serves_the_exact_bytes_with_type_and_filename(s3_store: S3Store) -> None:
    data = os.urandom(5000)
    s3_store.put(KEY, [data], content_type="audio/wav", max_bytes=len(data))
    url = s3_store.presign(KEY, ttl_seconds=60, content_type="audio/wav", filename='RE"x/y.wav')
    assert url is not None
    with http() as client:
        answer = client.get(url)
        partial = client.get(url, headers={"Range": "bytes=10-19"})
    assert answer.status_code == 200
    assert answer.content == data
    assert answer.headers["content-type"] == "audio/wav"
    assert answer.headers["content-disposition"] == 'inline; filename="RE_x_y.wav"'
    assert (partial.status_code, partial.content) == (206, data[10:20])


def test_a_presigned_url_is_refused_once_expired(s3_store: S3Store) -> None:
    s3_store.put(KEY, [b"short-lived"], content_type="audio/wav", max_bytes=100)
    url = s3_store.presign(KEY, ttl_seconds=1, content_type="audio/wav", filename="r.wav")
    assert url is not None
    time.sleep(2.5)  # X-Amz-Date has one-second resolution: wait well past the second after expiry
    with http() as client:
        answer = client.get(url)
    assert answer.status_code == 403
    assert b"short-lived" not in answer.content


@pytest.mark.parametrize("tamper", ["other-key", "longer-expiry", "other-content-type"])
def test_a_tampered_presigned_url_is_refused(s3_store: S3Store, tamper: str) -> None:
    other = KEY.replace("RE0000", "RE1111")
    s3_store.put(KEY, [b"mine"], content_type="audio/wav", max_bytes=100)
    s3_store.put(other, [b"someone else's"], content_type="audio/wav", max_bytes=100)
    url = s3_store.presign(KEY, ttl_seconds=60, content_type="audio/wav", filename="r.wav")
    assert url is not None
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    path = parts.path
    if tamper == "other-key":
        path = path.replace("RE0000", "RE1111")
    elif tamper == "longer-expiry":
        query["X-Amz-Expires"] = "604800"
    else:
        query["response-content-type"] = "text/html"
    with http() as client:
        answer = client.get(urlunsplit(parts._replace(path=path, query=urlencode(query))))
        untouched = client.get(url)
    assert answer.status_code == 403
    assert untouched.status_code == 200  # the same URL, unmodified, works: the refusal is the tampering


def test_requests_signed_with_a_wrong_secret_are_refused(s3_server: S3Server, s3_store: S3Store) -> None:
    s3_store.put(KEY, [b"kept"], content_type="audio/wav", max_bytes=100)
    wrong_secret = "wrong-" + s3_server.secret_access_key[6:]
    intruder = S3Store(
        bucket=s3_store.bucket,
        prefix="vault",
        client=s3_server.client(secret_access_key=wrong_secret),
        sse=S3Sse.AES256,
        kms_key_id=None,
        part_size_bytes=TEST_PART_SIZE,
    )
    with pytest.raises(StorageError) as put_error:
        intruder.put(KEY, [b"overwritten"], content_type="audio/wav", max_bytes=100)
    with pytest.raises(StorageError):
        intruder.stat(KEY)
    with pytest.raises(StorageError):
        intruder.open(KEY)
    with pytest.raises(StorageError):
        intruder.delete(KEY)
    assert wrong_secret not in put_error.value.message
    assert s3_server.secret_access_key not in put_error.value.message
    assert "SignatureDoesNotMatch" in put_error.value.message
    assert b"".join(s3_store.open(KEY)) == b"kept"


def test_an_unreachable_endpoint_raises_storage_error(s3_server: S3Server) -> None:
    store = S3Store(
        bucket="cv-nowhere",
        prefix="",
        client=s3_server.client(endpoint_url="http://127.0.0.1:9"),  # discard port: nothing listens
        sse=S3Sse.AES256,
        kms_key_id=None,
        part_size_bytes=TEST_PART_SIZE,
    )
    with pytest.raises(StorageError) as raised:
        store.check()
    assert "s3://cv-nowhere" in raised.value.message
    with pytest.raises(StorageError):
        store.put(KEY, [b"x"], content_type="audio/wav", max_bytes=10)


def test_check_fails_for_a_missing_bucket(s3_server: S3Server) -> None:
    store = S3Store(
        bucket="cv-no-such-bucket",
        prefix="vault",
        client=s3_server.client(),
        sse=S3Sse.AES256,
        kms_key_id=None,
        part_size_bytes=TEST_PART_SIZE,
    )
    with pytest.raises(StorageError, match="cv-no-such-bucket"):
        store.check()


def test_part_sizes_below_s3s_minimum_are_refused(s3_server: S3Server) -> None:
    with pytest.raises(ValueError, match="part_size_bytes"):
        S3Store(
            bucket="cv-any",
            prefix="",
            client=s3_server.client(),
            sse=S3Sse.AES256,
            kms_key_id=None,
            part_size_bytes=1024,
        )
