"""The benchmarks' rig: real processes on loopback, started and always cleaned up, and what they share.

* :class:`Rig` owns every process and temporary directory a benchmark starts; leaving it (normally, on an
  error or on Ctrl-C) terminates the processes by their own process groups and removes the directories.
* :class:`SimulatorProcess`: the Twilio simulator in its own process, driven over its ``/_sim/`` API.
* :func:`start_ministack`: the S3 test server as the test suite runs it (``tests/s3server/server.py``).
* :class:`RssSampler`: peak resident memory of processes and their children, sampled with psutil.
* Databases: a fresh SQLite file or a fresh PostgreSQL database, migrated, dropped on exit.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # `python bench/x.py` puts bench/ first, not the repository
    sys.path.insert(0, str(REPO_ROOT))

import httpx  # noqa: E402
import psutil  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from sqlalchemy import create_engine, func, select, text  # noqa: E402

from callvault.db.database import Database  # noqa: E402
from callvault.db.migrate import upgrade  # noqa: E402
from callvault.db.models import Recording  # noqa: E402
from callvault.twilio.simulator.state import SimRecording  # noqa: E402
from tests.s3server.server import S3Server, running_ministack  # noqa: E402

PYTHON = sys.executable
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PG_ENV = "CALLVAULT_TEST_DATABASE_URL"
MB = 1024 * 1024
console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)


class BenchError(RuntimeError):
    """The benchmark cannot produce a trustworthy figure (a process died, data was lost, time ran out)."""


# -- processes -------------------------------------------------------------------------------------------
class Proc:
    """One child process in its own session (so its children go down with it), output to a log file."""

    def __init__(self, name: str, argv: list[str], *, env: dict[str, str], log: Path, cwd: Path) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log
        self._log = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, chars: int = 3000) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-chars:]

    def check_alive(self) -> None:
        if not self.alive():
            raise BenchError(f"{self.name} exited with {self.popen.returncode}:\n{self.tail()}")

    def stop(self, *, timeout: float = 20.0) -> None:
        """SIGTERM the process group, wait, then SIGKILL what is left."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)  # stragglers in the group, if any
        if self.popen.poll() is None:
            self.popen.wait(5)
        self._log.close()


class Rig:
    """Everything one benchmark run starts. Use as a context manager; cleanup is unconditional."""

    def __init__(self, name: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=f"callvault-bench-{name}-"))
        self.stack = ExitStack()
        self.procs: list[Proc] = []
        self.keep = os.environ.get("CALLVAULT_BENCH_KEEP") == "1"

    def __enter__(self) -> Rig:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            for proc in reversed(self.procs):
                proc.stop()
            self.stack.close()
        finally:
            if self.keep:
                console.print(f"[dim]kept {self.dir}[/dim]")
            else:
                shutil.rmtree(self.dir, ignore_errors=True)

    def start(self, name: str, argv: list[str], *, env: dict[str, str] | None = None) -> Proc:
        proc = Proc(name, argv, env={**base_env(), **(env or {})}, log=self.dir / f"{name}.log", cwd=self.dir)
        self.procs.append(proc)
        return proc

    def callvault(self, name: str, *args: str, env: dict[str, str]) -> Proc:
        return self.start(name, [PYTHON, "-m", "callvault", *args], env=env)

    def stop(self, proc: Proc) -> None:
        proc.stop()
        self.procs.remove(proc)


def base_env() -> dict[str, str]:
    """This environment without any CALLVAULT_/AWS_ setting (each process gets exactly what it is given)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("CALLVAULT_", "AWS_"))}
    # CALLVAULT_BENCH_EXTRA_PATH: extra import paths for the processes under test, to measure a candidate
    # dependency (e.g. uvloop/httptools installed with `pip install --target DIR`) before adopting it.
    extra = os.environ.get("CALLVAULT_BENCH_EXTRA_PATH")
    base["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *([extra] if extra else [])])
    return base


def free_port() -> int:
    from tests.s3server.server import free_port as _free_port

    return _free_port()


def wait_http_ok(url: str, proc: Proc, *, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc.check_alive()
        try:
            if httpx.get(url, timeout=1.0, trust_env=False).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise BenchError(f"{proc.name} did not answer {url} within {timeout} s:\n{proc.tail()}")


def wait_log_or_port(proc: Proc, port: int, *, timeout: float = 30.0) -> None:
    """Wait until ``proc`` accepts TCP connections on ``port``."""
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc.check_alive()
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise BenchError(f"{proc.name} did not listen on {port} within {timeout} s:\n{proc.tail()}")


def wait_log(proc: Proc, needle: str, *, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc.check_alive()
        if needle in proc.tail(20000):
            return
        time.sleep(0.05)
    raise BenchError(f"{proc.name} did not log {needle!r} within {timeout} s:\n{proc.tail()}")


# -- the Twilio simulator in its own process ---------------------------------------------------------------
@dataclass
class SimulatorProcess:
    proc: Proc
    base_url: str
    account_sid: str
    auth_token: str = field(repr=False)
    api_key_sid: str
    api_key_secret: str = field(repr=False)
    http: httpx.Client = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(
            base_url=self.base_url, auth=(self.account_sid, self.auth_token), timeout=60.0, trust_env=False
        )

    @classmethod
    def start(cls, rig: Rig) -> SimulatorProcess:
        proc = rig.start("simulator", [PYTHON, "-m", "callvault.twilio.simulator", "--port", "0"])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            proc.check_alive()
            first = proc.log_path.read_text(errors="replace").split("\n", 1)
            if len(first) == 2 and first[0].startswith("{"):
                line = json.loads(first[0])
                sim = cls(proc=proc, **line)
                rig.stack.callback(sim.http.close)
                return sim
            time.sleep(0.05)
        raise BenchError(f"the simulator printed no credentials:\n{proc.tail()}")

    def add_recordings(self, count: int, *, size_bytes: int, threads: int = 8) -> list[dict[str, Any]]:
        def add(_: int) -> dict[str, Any]:
            answer = self.http.post("/_sim/recordings", json={"size_bytes": size_bytes})
            answer.raise_for_status()
            return dict(answer.json())

        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(add, range(count)))

    def set_fail_rate(self, rate: float, *, seed: int = 0) -> None:
        self.http.post("/_sim/fail_rate", json={"rate": rate, "seed": seed}).raise_for_status()

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        answer = self.http.get("/_sim/events", params={"kind": kind} if kind else None)
        answer.raise_for_status()
        return list(answer.json())

    def recordings(self) -> dict[str, dict[str, Any]]:
        answer = self.http.get("/_sim/recordings")
        answer.raise_for_status()
        return {rec["sid"]: rec for rec in answer.json()}

    def media_url(self, sid: str) -> str:
        return f"{self.base_url}/2010-04-01/Accounts/{self.account_sid}/Recordings/{sid}"

    def callvault_env(self) -> dict[str, str]:
        return {
            "CALLVAULT_TWILIO_ACCOUNT_SID": self.account_sid,
            "CALLVAULT_TWILIO_AUTH_TOKEN": self.auth_token,
            "CALLVAULT_TWILIO_API_KEY_SID": self.api_key_sid,
            "CALLVAULT_TWILIO_API_KEY_SECRET": self.api_key_secret,
            "CALLVAULT_TWILIO_API_BASE_URL": self.base_url,
        }


def sim_recording(view: dict[str, Any]) -> SimRecording:
    """The simulator's recording rebuilt from its ``/_sim/`` view (its media is a function of the view)."""
    return SimRecording(
        sid=view["sid"],
        account_sid=view["account_sid"],
        call_sid=view["call_sid"],
        date_created=datetime.fromisoformat(view["date_created"]),
        size_bytes=view["size_bytes"],
        channels=view["channels"],
        seed=view["seed"],
        source=view["source"],
    )


def expected_sha256(view: dict[str, Any]) -> str:
    """The SHA-256 of the WAV the simulator serves for a recording, regenerated here from its seed, without
    asking the system under test."""
    return sim_recording(view).sha256("wav")


# -- S3 --------------------------------------------------------------------------------------------------
def start_ministack(rig: Rig) -> tuple[S3Server, int]:
    """ministack (AUTH=true, an IAM user's key) as the test suite runs it; returns the server and its pid."""
    workdir = rig.dir / "ministack"
    workdir.mkdir()
    server, process = rig.stack.enter_context(running_ministack(workdir, user_name="callvault-bench"))
    return server, process.pid


def s3_env(server: S3Server, bucket: str, *, endpoint_url: str | None = None) -> dict[str, str]:
    return {
        "CALLVAULT_STORAGE_URL": f"s3://{bucket}",
        "CALLVAULT_S3_ENDPOINT_URL": endpoint_url or server.endpoint_url,
        "AWS_ACCESS_KEY_ID": server.access_key_id,
        "AWS_SECRET_ACCESS_KEY": server.secret_access_key,
        "AWS_DEFAULT_REGION": server.region,
    }


def sha256_of_object(client: Any, bucket: str, key: str) -> str | None:
    import hashlib

    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
    except client.exceptions.NoSuchKey:
        return None
    digest = hashlib.sha256()
    for chunk in body.iter_chunks(1024 * 1024):
        digest.update(chunk)
    return digest.hexdigest()


def start_proxy(
    rig: Rig, name: str, upstream: str, *, fail_rate: float = 0.0, delay_ms: float = 0.0
) -> tuple[Proc, str, Path]:
    """bench/s3proxy.py in front of ``upstream``; returns the process, its URL and its request log."""
    log = rig.dir / f"{name}.jsonl"
    argv = [PYTHON, str(REPO_ROOT / "bench" / "s3proxy.py"), "--upstream", upstream, "--log", str(log)]
    argv += ["--fail-rate", str(fail_rate), "--delay-ms", str(delay_ms)]
    proc = rig.start(name, argv)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        proc.check_alive()
        for line in proc.tail(5000).splitlines():
            if line.startswith('{"port"'):
                return proc, f"http://127.0.0.1:{json.loads(line)['port']}", log
        time.sleep(0.05)
    raise BenchError(f"{name} printed no port:\n{proc.tail()}")


# -- databases -------------------------------------------------------------------------------------------
def fresh_database(rig: Rig, kind: str) -> str:
    """A new, migrated database: ``sqlite`` (a file in the rig's directory) or ``postgres`` (a new database
    on the server named by $CALLVAULT_TEST_DATABASE_URL, else the local default), dropped on exit."""
    if kind == "sqlite":
        url = f"sqlite:///{rig.dir / f'callvault-{uuid.uuid4().hex[:8]}.db'}"
    elif kind == "postgres":
        base = os.environ.get(PG_ENV) or PG_DEFAULT
        name = f"cv_bench_{uuid.uuid4().hex[:12]}"
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))

        def drop() -> None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()

        rig.stack.callback(drop)
        url = base.rsplit("/", 1)[0] + "/" + name
    else:
        raise ValueError(f"unknown database kind {kind!r}")
    db = Database(url)
    upgrade(db)
    db.dispose()
    return url


def count_by_status(db: Database) -> dict[str, int]:
    with db.read() as session:
        rows = session.execute(select(Recording.status, func.count()).group_by(Recording.status)).all()
    return {str(status): int(count) for status, count in rows}


# -- memory ----------------------------------------------------------------------------------------------
class RssSampler:
    """Samples the resident memory of ``pids`` (each with all its children, summed) every ``interval`` s in
    a background thread; :attr:`peaks` holds the highest sum seen per pid."""

    def __init__(self, pids: Iterable[int], *, interval: float = 0.05) -> None:
        self.pids = list(pids)
        self.interval = interval
        self.peaks: dict[int, int] = dict.fromkeys(self.pids, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid in self.pids:
                self.peaks[pid] = max(self.peaks[pid], tree_rss(pid))
            self._stop.wait(self.interval)

    @property
    def peak_total(self) -> int:
        return sum(self.peaks.values())

    @property
    def peak_max(self) -> int:
        return max(self.peaks.values(), default=0)


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its live children so far (0 when it is gone)."""
    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for each in procs:
        with contextlib.suppress(psutil.Error):
            times = each.cpu_times()
            total += times.user + times.system
    return total


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min) / {five:.1f} (5 min) on {os.cpu_count()} CPUs"


def tree_rss(pid: int) -> int:
    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for each in procs:
        with contextlib.suppress(psutil.Error):
            total += each.memory_info().rss
    return total


# -- reporting -------------------------------------------------------------------------------------------
def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000, method="inclusive")[round(pct * 10) - 1]


def table(title: str, columns: list[str], rows: Iterable[Iterable[object]]) -> Table:
    out = Table(title=title, title_justify="left")
    for index, column in enumerate(columns):
        out.add_column(column, justify="left" if index == 0 else "right")
    for row in rows:
        out.add_row(*(str(cell) for cell in row))
    return out


def machine() -> str:
    import platform

    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = psutil.virtual_memory().total / 1024**3
    return (
        f"{os.cpu_count()} CPUs ({cpu}), {mem:.0f} GiB RAM, Linux {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def deadline_loop(
    check: Callable[[], bool], *, timeout: float, what: str, watch: Iterable[Proc] = (), every: float = 0.1
) -> None:
    """Poll ``check`` until it is true; raise :class:`BenchError` after ``timeout`` s or if a watched
    process dies."""
    procs = list(watch)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        for proc in procs:
            proc.check_alive()
        time.sleep(every)
    raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}")


def chunks_of(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
