"""The storage contract. Two implementations (``local.FileStore``, ``s3.S3Store``), one factory
(``factory.open_store``), one contract test module parametrised over both (tests/storage/test_contract.py)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class StoredObject:
    """What a store holds under a key, as the store itself reports it.

    ``checksum`` is the store's own integrity value, compared verbatim by the verifier: the file store
    reports the SHA-256 hex of the bytes on disk; the S3 store reports ``ChecksumSHA256`` as S3 returns it
    (base64, or a composite ``<b64>-<parts>`` for multipart uploads).
    """

    key: str
    size: int
    checksum: str


@dataclass(frozen=True)
class PutResult:
    """What ``put`` sent, computed by callvault from the bytes it streamed (never read from the store)."""

    key: str
    size: int
    sha256: str  # hex digest of the whole object
    checksum: str  # the value ``stat`` must report for the object to be verified


class Store(Protocol):
    """A place recordings are kept. Keys are built only by ``callvault.storage.keys`` from validated SIDs;
    every method checks the key again (``keys.validate_key``) and raises
    :class:`~callvault.errors.InvalidInput` for an absolute key, ``..``/``.``/empty segments, segments
    starting with ``.``, backslashes or control characters. Failures of the backend itself (I/O errors,
    S3 refusing or unreachable) raise :class:`~callvault.errors.StorageError`, with messages that never
    carry credentials."""

    description: str  # e.g. "file:///srv/callvault" or "s3://bucket/prefix", for logs and doctor

    def put(self, key: str, chunks: Iterable[bytes], *, content_type: str, max_bytes: int) -> PutResult:
        """Store the concatenated ``chunks`` under ``key``, replacing any object there.

        Guarantees: the object appears whole or not at all (no reader ever sees a partial object); memory is
        bounded by one chunk plus one part buffer whatever the size; no plaintext temporary file is left
        behind when ``chunks`` raises or the process dies (a leftover partial upload is at most an
        incomplete multipart upload, aborted on error, or an unreadable ``.partial`` file removed on the next
        put into that directory). More than ``max_bytes`` raises
        :class:`~callvault.errors.PayloadTooLarge` (an ``InvalidInput``) and stores nothing. An exception
        from ``chunks`` propagates unchanged and stores nothing; a failed overwrite leaves the previous
        object as it was.
        """
        ...

    def stat(self, key: str) -> StoredObject | None:
        """Read size and checksum back from the store; ``None`` when no object exists under ``key``.

        The checksum is the store's, not a cached copy of what ``put`` computed: the file store re-reads the
        bytes, the S3 store asks S3 (HEAD with ``ChecksumMode=ENABLED``).
        """
        ...

    def open(self, key: str, *, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Stream bytes ``start``..``end`` (inclusive; ``None`` = to the end) of the object.

        HTTP range semantics: an ``end`` past the object is clamped; a negative ``start``, an ``end`` before
        ``start`` or a ``start`` at or past the end of the object (unless the whole object is asked for)
        raises :class:`~callvault.errors.InvalidInput`. A missing object raises
        :class:`~callvault.errors.ObjectMissing` here, at the call, not on the first chunk. The returned
        iterator has ``close()``; closing it, exhausting it or dropping it releases the file or connection.
        """
        ...

    def delete(self, key: str) -> None:
        """Remove the object. Deleting a missing key is not an error."""
        ...

    def presign(self, key: str, *, ttl_seconds: int, content_type: str, filename: str) -> str | None:
        """A URL that serves the object for ``ttl_seconds`` without further credentials, or ``None`` when the
        backend cannot sign URLs itself (the file store: callvault serves its own signed URL instead)."""
        ...

    def check(self) -> None:
        """Raise :class:`~callvault.errors.StorageError` when the store is unreachable or not writable."""
        ...
