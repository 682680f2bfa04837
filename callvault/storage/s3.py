"""The S3 store: recordings in a bucket the operator owns (AWS or any S3-compatible server).

Integrity: every upload carries SHA-256 additional checksums, which S3 verifies on receipt (a mismatch is
refused) and reports back on ``HEAD`` with ``ChecksumMode=ENABLED``. What ``HEAD`` reports differs by upload
shape, and :attr:`PutResult.checksum` is computed to equal it exactly:

* single ``PutObject`` (objects up to one part): ``base64(sha256(object))``, checksum type ``FULL_OBJECT``;
* multipart upload: the composite ``base64(sha256(d1 || d2 || … || dN)) + "-N"``, where ``dI`` is the raw
  SHA-256 digest of part I and N the number of parts (checksum type ``COMPOSITE``; AWS's "Checking object
  integrity" guide, and what ministack 1.5.33 returns — tests/storage/test_contract.py checks both shapes).

:attr:`PutResult.sha256` is always the hex digest of the whole object, whatever the shape.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypedDict

from botocore.exceptions import BotoCoreError, ClientError

from callvault.errors import InvalidInput, ObjectMissing, PayloadTooLarge, StorageError
from callvault.settings import S3Sse
from callvault.storage.base import PutResult, StoredObject
from callvault.storage.keys import validate_key
from callvault.storage.local import check_range
from callvault.storage.streams import ClosingStream

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.literals import ServerSideEncryptionType
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

log = logging.getLogger(__name__)

MIN_PART_SIZE = 5 * 1024 * 1024  # S3's floor for every part but the last
_READ_CHUNK = 256 * 1024
_NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound"})
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]")

S3Errors = (ClientError, BotoCoreError)


class _Encryption(TypedDict, total=False):
    ServerSideEncryption: ServerSideEncryptionType
    SSEKMSKeyId: str


class S3Store:
    """A :class:`~callvault.storage.base.Store` under ``s3://bucket/prefix``.

    Memory is bounded by one part buffer (``part_size_bytes``) plus one incoming chunk. Every object is
    written with server-side encryption ``sse`` (and ``kms_key_id`` for ``aws:kms``).
    """

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str,
        client: S3Client,
        sse: S3Sse,
        kms_key_id: str | None,
        part_size_bytes: int,
    ) -> None:
        if part_size_bytes < MIN_PART_SIZE:
            raise ValueError(f"part_size_bytes must be at least {MIN_PART_SIZE} (S3's minimum part size)")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client
        self.sse = sse
        self.kms_key_id = kms_key_id
        self.part_size = part_size_bytes
        self.description = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"

    # -- Store ----------------------------------------------------------------------------------
    def put(self, key: str, chunks: Iterable[bytes], *, content_type: str, max_bytes: int) -> PutResult:
        name = self._name(key)
        whole = hashlib.sha256()
        buffer = bytearray()
        size = 0
        upload: _Multipart | None = None
        try:
            for chunk in chunks:  # an exception from the caller's iterator propagates unchanged
                size += len(chunk)
                if size > max_bytes:
                    raise PayloadTooLarge(f"object is larger than the limit of {max_bytes} bytes")
                whole.update(chunk)
                buffer += chunk
                # Flush only once the buffer holds *more* than a part: a stream that ends within the first
                # part then goes up as one PutObject with a whole-object checksum.
                while len(buffer) > self.part_size:
                    if upload is None:
                        upload = self._start_multipart(name, content_type)
                    with memoryview(buffer) as view:  # one copy of the part, not two
                        part = bytes(view[: self.part_size])
                    del buffer[: self.part_size]
                    upload.send(part)
                    del part
            if upload is None:
                checksum = self._put_single(name, bytes(buffer), content_type)
            else:
                upload.send(bytes(buffer))
                checksum = upload.complete()
        except BaseException:
            if upload is not None:
                upload.abort()
            raise
        return PutResult(key=key, size=size, sha256=whole.hexdigest(), checksum=checksum)

    def stat(self, key: str) -> StoredObject | None:
        name = self._name(key)
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=name, ChecksumMode="ENABLED")
        except ClientError as exc:
            if _code(exc) in _NOT_FOUND:
                return None
            raise self._error("HEAD", name, exc) from exc
        except BotoCoreError as exc:
            raise self._error("HEAD", name, exc) from exc
        # An object written without a SHA-256 checksum (not by callvault) reports "" and fails verification.
        return StoredObject(key=key, size=head["ContentLength"], checksum=head.get("ChecksumSHA256", ""))

    def open(self, key: str, *, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        check_range(start, end)
        name = self._name(key)
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": name}
        # No Range header for a whole-object read: S3 answers 416 to "bytes=0-" on an empty object.
        if start or end is not None:
            params["Range"] = f"bytes={start}-{'' if end is None else end}"
        try:
            body = self.client.get_object(**params)["Body"]
        except ClientError as exc:
            if _code(exc) in _NOT_FOUND:
                raise ObjectMissing(f"no object under {key}") from exc
            if _code(exc) == "InvalidRange":
                raise InvalidInput(f"range starting at {start} is past the end of the object") from exc
            raise self._error("GET", name, exc) from exc
        except BotoCoreError as exc:
            raise self._error("GET", name, exc) from exc
        return ClosingStream(self._stream(name, body.iter_chunks(_READ_CHUNK)), body.close)

    def delete(self, key: str) -> None:
        name = self._name(key)
        try:
            # S3 answers 204 for a key that does not exist: deleting twice is fine.
            self.client.delete_object(Bucket=self.bucket, Key=name)
        except S3Errors as exc:
            raise self._error("DELETE", name, exc) from exc

    def presign(self, key: str, *, ttl_seconds: int, content_type: str, filename: str) -> str | None:
        name = self._name(key)
        safe_name = _UNSAFE_FILENAME.sub("_", filename) or "recording"
        try:
            return self.client.generate_presigned_url(
                "get_object",
                Params={
                    "Bucket": self.bucket,
                    "Key": name,
                    "ResponseContentType": content_type,
                    "ResponseContentDisposition": f'inline; filename="{safe_name}"',
                },
                ExpiresIn=ttl_seconds,
            )
        except BotoCoreError as exc:  # e.g. no credentials to sign with
            raise self._error("presign", name, exc) from exc

    def check(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except S3Errors as exc:
            raise self._error("HEAD bucket", "", exc) from exc

    # -- helpers --------------------------------------------------------------------------------
    def _name(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _encryption(self) -> _Encryption:
        params: _Encryption = {"ServerSideEncryption": "aws:kms" if self.sse is S3Sse.KMS else "AES256"}
        if self.sse is S3Sse.KMS and self.kms_key_id:
            params["SSEKMSKeyId"] = self.kms_key_id
        return params

    def _put_single(self, name: str, data: bytes, content_type: str) -> str:
        checksum = _b64(hashlib.sha256(data).digest())
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=name,
                Body=data,
                ContentType=content_type,
                ChecksumSHA256=checksum,
                **self._encryption(),
            )
        except S3Errors as exc:
            raise self._error("PUT", name, exc) from exc
        return checksum

    def _start_multipart(self, name: str, content_type: str) -> _Multipart:
        self._abort_abandoned(name)
        try:
            created = self.client.create_multipart_upload(
                Bucket=self.bucket,
                Key=name,
                ContentType=content_type,
                ChecksumAlgorithm="SHA256",
                **self._encryption(),
            )
        except S3Errors as exc:
            raise self._error("multipart start", name, exc) from exc
        return _Multipart(self, name, created["UploadId"])

    def _abort_abandoned(self, name: str) -> None:
        """Abort unfinished multipart uploads of this object left by earlier attempts. A process killed
        mid-upload cannot abort its own, and S3 keeps (and bills) the parts until someone does; only one
        worker holds a recording's lease, so any other upload of the key is abandoned or stale. Best effort:
        without ``s3:ListBucketMultipartUploads`` the leftovers wait for a bucket lifecycle rule."""
        try:
            listed = self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=name)
        except S3Errors as exc:
            log.warning("%s", self._error("listing of unfinished uploads", name, exc).message)
            return
        for upload in listed.get("Uploads", []):
            if upload.get("Key") == name and "UploadId" in upload:
                _Multipart(self, name, upload["UploadId"]).abort()

    def _stream(self, name: str, chunks: Iterator[bytes]) -> Iterator[bytes]:
        try:
            yield from chunks
        except S3Errors as exc:
            raise self._error("GET", name, exc) from exc

    def _error(self, operation: str, name: str, exc: ClientError | BotoCoreError) -> StorageError:
        where = f"s3://{self.bucket}/{name}" if name else f"s3://{self.bucket}"
        if isinstance(exc, ClientError):
            # Only the code and S3's message: the error document may echo the access key ID and the
            # string to sign, which have no place in logs.
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            detail = f"{error.get('Code') or status} {error.get('Message', '')}".strip()
        else:
            detail = f"{type(exc).__name__}: {exc}"
        return StorageError(f"S3 {operation} {where} failed: {detail}")


class _Multipart:
    """One multipart upload in progress; parts are sent as they fill, each with its own SHA-256."""

    def __init__(self, store: S3Store, name: str, upload_id: str) -> None:
        self.store = store
        self.name = name
        self.upload_id = upload_id
        self.parts: list[CompletedPartTypeDef] = []
        self.digests = bytearray()

    def send(self, data: bytes) -> None:
        digest = hashlib.sha256(data).digest()
        number = len(self.parts) + 1
        try:
            answer = self.store.client.upload_part(
                Bucket=self.store.bucket,
                Key=self.name,
                UploadId=self.upload_id,
                PartNumber=number,
                Body=data,
                ChecksumSHA256=_b64(digest),
            )
        except S3Errors as exc:
            raise self.store._error(f"upload of part {number}", self.name, exc) from exc
        self.digests += digest
        self.parts.append({"PartNumber": number, "ETag": answer["ETag"], "ChecksumSHA256": _b64(digest)})

    def complete(self) -> str:
        try:
            self.store.client.complete_multipart_upload(
                Bucket=self.store.bucket,
                Key=self.name,
                UploadId=self.upload_id,
                MultipartUpload={"Parts": self.parts},
            )
        except S3Errors as exc:
            raise self.store._error("multipart completion", self.name, exc) from exc
        return f"{_b64(hashlib.sha256(self.digests).digest())}-{len(self.parts)}"

    def abort(self) -> None:
        """Best effort: an abort that fails leaves an incomplete upload for the bucket's lifecycle rule
        (AbortIncompleteMultipartUpload) to collect; the original error matters more."""
        try:
            self.store.client.abort_multipart_upload(
                Bucket=self.store.bucket, Key=self.name, UploadId=self.upload_id
            )
        except S3Errors as exc:
            log.warning(
                "could not abort multipart upload of s3://%s/%s: %s", self.store.bucket, self.name, exc
            )


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
