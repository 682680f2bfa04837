"""FileStore behaviour beyond the shared contract: modes, key safety, temporary files and their sweep."""

from __future__ import annotations

import fcntl
import hashlib
import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from callvault.errors import InvalidInput, StorageError
from callvault.storage.local import FileStore, sweep_abandoned

KEY = "AC00000000000000000000000000000000/2024/05/06/RE00000000000000000000000000000000.wav"
NEIGHBOUR = "AC00000000000000000000000000000000/2024/05/06/RE11111111111111111111111111111111.wav"
DAY_DIR = Path("AC00000000000000000000000000000000/2024/05/06")
REPO_ROOT = Path(__file__).resolve().parents[2]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def partials(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".partial"))


def test_stored_files_are_0600_and_created_directories_0700(tmp_path: Path) -> None:
    root = tmp_path / "deep" / "store"
    store = FileStore(root)
    store.put(KEY, [b"secret audio"], content_type="audio/wav", max_bytes=100)
    assert mode(root / KEY) == 0o600
    created = [tmp_path / "deep", root, *(root / p for p in _prefixes(DAY_DIR))]
    assert {str(p.relative_to(tmp_path)): mode(p) for p in created} == {
        str(p.relative_to(tmp_path)): 0o700 for p in created
    }


def test_the_description_is_the_file_url_of_the_root(tmp_path: Path) -> None:
    assert FileStore(tmp_path / "r").description == (tmp_path / "r").as_uri()


@pytest.mark.parametrize(
    "key",
    [
        "../outside.wav",
        "a/../../outside.wav",
        "/tmp/abs.wav",
        "a\\..\\b.wav",
        "a\x00.wav",
        "a/./b.wav",
        ".hidden",
    ],
)
def test_keys_that_could_leave_the_root_or_hit_temp_files_are_refused(tmp_path: Path, key: str) -> None:
    root = tmp_path / "store"
    store = FileStore(root)
    with pytest.raises(InvalidInput):
        store.put(key, [b"x"], content_type="audio/wav", max_bytes=10)
    assert sorted(p.name for p in tmp_path.rglob("*")) == []  # not even the root was created


def test_a_put_writes_through_a_private_partial_file_renamed_into_place(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    seen: list[tuple[list[str], int]] = []

    def chunks() -> Iterator[bytes]:
        yield b"first half "
        directory = tmp_path / DAY_DIR
        names = partials(directory)
        seen.append((names, mode(directory / names[0])))
        assert not (tmp_path / KEY).exists()  # readers never see a partial object under the key
        yield b"second half"

    store.put(KEY, chunks(), content_type="audio/wav", max_bytes=100)
    [(names, temp_mode)] = seen
    assert len(names) == 1 and names[0].startswith(".RE0000") and temp_mode == 0o600
    assert (tmp_path / KEY).read_bytes() == b"first half second half"
    assert partials(tmp_path / DAY_DIR) == []


def test_a_partial_file_left_by_a_killed_process_is_swept_by_the_next_put(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from callvault.storage.local import FileStore

        def chunks():
            yield b"half a recording"
            print("writing", flush=True)
            time.sleep(60)
            yield b"never"

        FileStore(Path(sys.argv[1])).put({KEY!r}, chunks(), content_type="audio/wav", max_bytes=10**6)
        """
    )
    command = [sys.executable, "-c", script, str(tmp_path)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, cwd=REPO_ROOT, text=True) as process:
        try:
            assert process.stdout is not None and process.stdout.readline() == "writing\n"
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
    directory = tmp_path / DAY_DIR
    assert len(partials(directory)) == 1  # the killed writer's leftover, readable by nobody else
    FileStore(tmp_path).put(NEIGHBOUR, [b"next"], content_type="audio/wav", max_bytes=10)
    assert partials(directory) == []
    assert sorted(p.name for p in directory.iterdir()) == [Path(NEIGHBOUR).name]


def test_a_concurrent_writers_partial_file_is_not_swept(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    started, release = threading.Event(), threading.Event()
    outcome: list[object] = []

    def slow_chunks() -> Iterator[bytes]:
        yield b"first writer, "
        started.set()
        release.wait(timeout=30)
        yield b"done"

    def first_writer() -> None:
        try:
            outcome.append(store.put(KEY, slow_chunks(), content_type="audio/wav", max_bytes=100))
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=first_writer)
    thread.start()
    try:
        assert started.wait(timeout=30)
        store.put(NEIGHBOUR, [b"second writer"], content_type="audio/wav", max_bytes=100)  # sweeps this dir
        assert len(partials(tmp_path / DAY_DIR)) == 1
    finally:
        release.set()
        thread.join(timeout=30)
    [result] = outcome
    assert not isinstance(result, Exception), result
    assert (tmp_path / KEY).read_bytes() == b"first writer, done"
    assert (tmp_path / NEIGHBOUR).read_bytes() == b"second writer"


def test_sweep_removes_only_unlocked_partial_files(tmp_path: Path) -> None:
    abandoned = tmp_path / ".a.wav.0011.partial"
    live = tmp_path / ".b.wav.2233.partial"
    keep = tmp_path / "c.wav"
    for path in (abandoned, live, keep):
        path.write_bytes(b"x")
    with open(live, "rb") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        removed = sweep_abandoned(tmp_path)
    assert removed == [abandoned]
    assert sorted(p.name for p in tmp_path.iterdir()) == [live.name, keep.name]


def test_stat_rehashes_the_bytes_on_disk_every_time(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    store.put(KEY, [b"original"], content_type="audio/wav", max_bytes=100)
    (tmp_path / KEY).write_bytes(b"corrupted")
    stored = store.stat(KEY)
    assert stored is not None
    assert (stored.size, stored.checksum) == (9, hashlib.sha256(b"corrupted").hexdigest())


def test_check_creates_the_root_and_leaves_nothing_behind(tmp_path: Path) -> None:
    root = tmp_path / "new-root"
    FileStore(root).check()
    assert mode(root) == 0o700
    assert list(root.iterdir()) == []


def test_check_fails_when_the_root_cannot_be_a_directory(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")
    with pytest.raises(StorageError, match="not writable"):
        FileStore(blocker).check()
    with pytest.raises(StorageError):
        FileStore(blocker).put(KEY, [b"x"], content_type="audio/wav", max_bytes=10)


def test_a_stream_dropped_without_being_read_closes_its_file(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    store.put(KEY, [b"abc"], content_type="audio/wav", max_bytes=10)
    before = len(os.listdir(f"/proc/{os.getpid()}/fd"))
    stream = store.open(KEY)
    assert len(os.listdir(f"/proc/{os.getpid()}/fd")) == before + 1
    del stream  # would raise ResourceWarning (an error under filterwarnings) if the file leaked
    assert len(os.listdir(f"/proc/{os.getpid()}/fd")) == before


def _prefixes(path: Path) -> list[Path]:
    return [Path(*path.parts[: i + 1]) for i in range(len(path.parts))]
