"""The file store: recordings in a local directory the operator owns.

Writes are atomic and durable: a private temporary file in the target directory, fsync, ``os.replace``, fsync
of the directory (the rename is only durable once the directory entry is). Temporary files are named
``.<name>.<random>.partial`` and hold an exclusive ``flock`` while being written, so the sweep that removes
files left by a killed process can tell them from a concurrent writer's: the kernel drops the lock when its
holder dies. Several workers put into the same day directory at once, so sweeping by name alone would delete
live uploads.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import secrets
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, ParamSpec, TypeVar

from callvault.errors import InvalidInput, ObjectMissing, PayloadTooLarge, StorageError
from callvault.storage.base import PutResult, StoredObject
from callvault.storage.keys import validate_key
from callvault.storage.streams import ClosingStream

PARTIAL_SUFFIX = ".partial"
FILE_MODE = 0o600
DIR_MODE = 0o700
_BLOCK = 1024 * 1024
_CREATE_ATTEMPTS = 5
_P = ParamSpec("_P")
_T = TypeVar("_T")


class FileStore:
    """A :class:`~callvault.storage.base.Store` in the directory ``root`` (created 0700 when missing).

    ``checksum`` is the SHA-256 hex digest of the bytes; ``stat`` re-reads and re-hashes the file every time,
    so the verifier compares against what is really on disk. ``presign`` returns ``None``: callvault serves
    files through its own signed URLs.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()
        self.description = self.root.as_uri()

    # -- Store ----------------------------------------------------------------------------------
    def put(self, key: str, chunks: Iterable[bytes], *, content_type: str, max_bytes: int) -> PutResult:
        path = self._path(key)
        directory = path.parent
        _guard(f"cannot create {directory}", _make_dirs, directory)
        _guard(f"cannot sweep {directory}", sweep_abandoned, directory)
        fd, temp = _guard(f"cannot write in {directory}", _create_locked_temp, directory, path.name)
        try:
            digest = hashlib.sha256()
            size = 0
            for chunk in chunks:  # an exception from the caller's iterator propagates unchanged
                size += len(chunk)
                if size > max_bytes:
                    raise PayloadTooLarge(f"object is larger than the limit of {max_bytes} bytes")
                digest.update(chunk)
                _guard(f"cannot write {temp}", _write_all, fd, chunk)
            _guard(f"cannot flush {temp}", os.fsync, fd)
            _guard(f"cannot move {temp} into place", os.replace, temp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise
        finally:
            os.close(fd)  # also releases the flock
        _guard(f"cannot flush {directory}", _fsync_dir, directory)
        checksum = digest.hexdigest()
        return PutResult(key=key, size=size, sha256=checksum, checksum=checksum)

    def stat(self, key: str) -> StoredObject | None:
        path = self._path(key)
        digest = hashlib.sha256()
        size = 0
        try:
            with open(path, "rb") as handle:
                while block := handle.read(_BLOCK):
                    size += len(block)
                    digest.update(block)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None
        except OSError as exc:
            raise StorageError(f"cannot read {path}: {exc.strerror}") from exc
        return StoredObject(key=key, size=size, checksum=digest.hexdigest())

    def open(self, key: str, *, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        check_range(start, end)
        path = self._path(key)
        try:
            handle = open(path, "rb")  # noqa: SIM115 -- closed by the returned stream
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise ObjectMissing(f"no object under {key}") from exc
        except OSError as exc:
            raise StorageError(f"cannot read {path}: {exc.strerror}") from exc
        try:
            size = os.fstat(handle.fileno()).st_size
            if (start or end is not None) and start >= size:
                raise InvalidInput(f"range starts at {start}, past the end of a {size}-byte object")
            last = size - 1 if end is None else min(end, size - 1)
            handle.seek(start)
        except BaseException:
            handle.close()
            raise
        return ClosingStream(_read_blocks(handle, last - start + 1), handle.close)

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            os.unlink(path)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return
        except OSError as exc:
            raise StorageError(f"cannot delete {path}: {exc.strerror}") from exc
        _guard(f"cannot flush {path.parent}", _fsync_dir, path.parent)

    def presign(self, key: str, *, ttl_seconds: int, content_type: str, filename: str) -> str | None:
        self._path(key)
        return None

    def check(self) -> None:
        _guard(f"cannot create {self.root}", _make_dirs, self.root)
        probe = self.root / f".check-{secrets.token_hex(8)}{PARTIAL_SUFFIX}"
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
            try:
                _write_all(fd, b"callvault")
                os.fsync(fd)
            finally:
                os.close(fd)
                os.unlink(probe)
        except OSError as exc:
            raise StorageError(f"local store {self.root} is not writable: {exc.strerror}") from exc

    # -- helpers --------------------------------------------------------------------------------
    def _path(self, key: str) -> Path:
        return self.root.joinpath(*validate_key(key).split("/"))


def check_range(start: int, end: int | None) -> None:
    """Refuse a negative start or an end before the start (both stores share this rule)."""
    if start < 0 or (end is not None and end < start):
        raise InvalidInput(f"invalid byte range {start}-{'' if end is None else end}")


def sweep_abandoned(directory: Path) -> list[Path]:
    """Remove ``.partial`` files in ``directory`` whose writer is gone (nobody holds their lock).

    Returns the removed paths. A file being written right now is locked and left alone.
    """
    removed: list[Path] = []
    with os.scandir(directory) as entries:
        names = [e.name for e in entries if e.name.startswith(".") and e.name.endswith(PARTIAL_SUFFIX)]
    for name in names:
        path = directory / name
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError:
            continue  # finished (renamed) or removed meanwhile, or a symlink: not ours to touch
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            # Only unlink the very file we locked: the name may have been reused since we listed it.
            if os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino:
                os.unlink(path)
                removed.append(path)
        except FileNotFoundError:
            pass
        finally:
            os.close(fd)
    return removed


def _create_locked_temp(directory: Path, name: str) -> tuple[int, Path]:
    for _ in range(_CREATE_ATTEMPTS):
        temp = directory / f".{name}.{secrets.token_hex(8)}{PARTIAL_SUFFIX}"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            # A sweep in another process may have locked and unlinked the file between our create and our
            # lock; then we hold a lock on a nameless inode and must start again.
            if os.stat(temp, follow_symlinks=False).st_ino == os.fstat(fd).st_ino:
                os.fchmod(fd, FILE_MODE)  # the umask may only have removed bits; make the mode exact
                return fd, temp
        except FileNotFoundError:
            pass
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    raise OSError(f"could not create a temporary file in {directory}")


def _make_dirs(directory: Path) -> None:
    """Create ``directory`` and its missing ancestors with mode 0700 (``Path.mkdir(parents=True)`` would
    create the ancestors with the umask's default mode instead)."""
    missing: list[Path] = []
    current = directory
    while not current.exists():
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        try:
            os.mkdir(path, DIR_MODE)
        except FileExistsError:
            continue  # a concurrent put created it
        os.chmod(path, DIR_MODE)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_blocks(handle: BinaryIO, remaining: int) -> Iterator[bytes]:
    while remaining > 0:
        block = handle.read(min(_BLOCK, remaining))
        if not block:
            return  # the file shrank under us: end early rather than invent bytes
        remaining -= len(block)
        yield block


def _guard(message: str, func: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """Run one of our own filesystem steps; an ``OSError`` becomes a :class:`StorageError` (the pipeline
    retries those). Exceptions from the caller's chunk iterator never pass through here."""
    try:
        return func(*args, **kwargs)
    except OSError as exc:
        raise StorageError(f"{message}: {exc.strerror or exc}") from exc
