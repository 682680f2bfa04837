"""Ingest throughput: callvault's workers against the naive one-at-a-time script, in the same run.

Everything runs on loopback in separate processes: the Twilio simulator (``python -m
callvault.twilio.simulator``), the S3 test server (ministack, AUTH=true, an IAM user's key), and for callvault
a real ``callvault serve --no-worker`` taking signed recording-status callbacks plus ``callvault worker``
processes storing to ``s3://bucket``. Cases: many 1 MB recordings, and one large recording.

* (a) naive: bench/naive.py, one recording at a time: download to a temp file, ``upload_file``, DELETE.
* (b) callvault: the callbacks are sent (signed, as Twilio sends them) once the workers are up; the clock
  runs from the first callback until every recording is ``stored`` (verified, deleted at Twilio).

A run that lost data reports no speed: afterwards every recording must be in the bucket with the SHA-256 of
the simulator's media (regenerated from its seed, not taken from callvault), deleted at the simulator, and
deleted exactly once. ``--soak`` runs bench/soak.py instead (10,000 recordings under injected faults).

    .venv/bin/python bench/ingest.py [--quick] [--db sqlite|postgres] [--soak]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import rig
from rig import MB, BenchError, Rig, RssSampler, SimulatorProcess, console

from callvault.db.database import Database
from callvault.db.recordings import get_recording
from callvault.twilio.simulator.callbacks import recording_status_params, send_status_callback
from tests.s3server.server import S3Server

NAIVE = rig.REPO_ROOT / "bench" / "naive.py"
CASE_TIMEOUT = 900.0


@dataclass(frozen=True)
class Case:
    name: str
    count: int
    size_bytes: int
    latency_ms: float = 0.0  # added to every Twilio and S3 request by a proxy (the WAN case)

    @property
    def label(self) -> str:
        wan = f", +{self.latency_ms:.0f} ms per request" if self.latency_ms else ""
        return f"{self.name}: {self.count} x {self.size_bytes // MB} MB{wan}"


@dataclass(frozen=True)
class Result:
    approach: str
    case: Case
    elapsed: float
    peak_rss: int
    verified: int
    cpu_seconds: float  # of the processes doing the work (not the simulator, S3 server or database)

    @property
    def per_second(self) -> float:
        return self.case.count / self.elapsed

    @property
    def mb_per_second(self) -> float:
        return self.case.count * self.case.size_bytes / MB / self.elapsed


@dataclass
class Env:
    rig: Rig
    sim: SimulatorProcess
    s3: S3Server
    db_kind: str
    workers: int
    threads: int
    twilio_url: str = ""  # where the code under test reaches Twilio and S3 (a proxy in the WAN case)
    s3_url: str = ""

    def __post_init__(self) -> None:
        self.twilio_url = self.twilio_url or self.sim.base_url
        self.s3_url = self.s3_url or self.s3.endpoint_url


# -- (a) the naive script ----------------------------------------------------------------------------------
def run_naive(env: Env, case: Case) -> Result:
    views = env.sim.add_recordings(case.count, size_bytes=case.size_bytes)
    bucket = env.s3.fresh_bucket()
    job = {
        "base_url": env.twilio_url,
        "account_sid": env.sim.account_sid,
        "api_key_sid": env.sim.api_key_sid,
        "api_key_secret": env.sim.api_key_secret,
        "bucket": bucket,
        "s3_endpoint_url": env.s3_url,
        "sids": [view["sid"] for view in views],
        "tmp_dir": str(env.rig.dir),
    }
    aws = {k: v for k, v in rig.s3_env(env.s3, bucket).items() if k.startswith("AWS_")}
    child_env = {**rig.base_env(), **aws}
    with (
        subprocess.Popen(
            [rig.PYTHON, str(NAIVE)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=child_env,
            text=True,
        ) as child,
        RssSampler([child.pid]) as sampler,
    ):
        out, errors = child.communicate(json.dumps(job), timeout=CASE_TIMEOUT)
    if child.returncode != 0:
        raise BenchError(f"the naive script failed:\n{errors[-3000:]}")
    answer = json.loads(out)
    keys = {view["sid"]: f"naive/{view['sid']}.wav" for view in views}
    verified = verify(env, views, bucket=bucket, keys=keys)
    name = "(a) naive, one at a time"
    return Result(name, case, answer["elapsed"], sampler.peak_total, verified, answer["cpu"])


# -- (b) callvault ------------------------------------------------------------------------------------------
def run_callvault(env: Env, case: Case) -> Result:
    views = env.sim.add_recordings(case.count, size_bytes=case.size_bytes)
    bucket = env.s3.fresh_bucket()
    database_url = rig.fresh_database(env.rig, env.db_kind)
    port = rig.free_port()
    base = f"http://127.0.0.1:{port}"
    cv_env = {
        **env.sim.callvault_env(),
        **rig.s3_env(env.s3, bucket, endpoint_url=env.s3_url),
        "CALLVAULT_TWILIO_API_BASE_URL": env.twilio_url,
        "CALLVAULT_DATABASE_URL": database_url,
        "CALLVAULT_DATA_DIR": str(env.rig.dir / "data"),
        "CALLVAULT_SECRET_KEY": "bench-" + "k" * 40,
        "CALLVAULT_PUBLIC_URL": base,
        "CALLVAULT_WORKER_POLL_SECONDS": "0.2",
    }
    label = f"{case.name}-{env.db_kind}-{int(case.latency_ms)}"
    serve = env.rig.callvault(f"serve-{label}", "serve", "--no-worker", "--port", str(port), env=cv_env)
    rig.wait_http_ok(f"{base}/healthz", serve)
    workers = [
        env.rig.callvault(f"worker{i}-{label}", "worker", "--concurrency", str(env.threads), env=cv_env)
        for i in range(env.workers)
    ]
    for worker in workers:
        rig.wait_log(worker, "worker started")
    db = Database(database_url)
    cpu_before = sum(rig.tree_cpu_seconds(proc.pid) for proc in [serve, *workers])
    try:
        with RssSampler([w.pid for w in workers]) as sampler:
            started = time.perf_counter()
            send_callbacks(env.sim, views, f"{base}/twilio/recording-status", api_base_url=env.twilio_url)
            rig.deadline_loop(
                lambda: settled(db, case.count),
                timeout=CASE_TIMEOUT,
                what=f"{case.count} recordings to be stored",
                watch=[serve, *workers],
                every=0.02,
            )
            elapsed = time.perf_counter() - started
        cpu = sum(rig.tree_cpu_seconds(proc.pid) for proc in [serve, *workers]) - cpu_before
        counts = rig.count_by_status(db)
        if counts.get("stored", 0) != case.count:
            raise BenchError(f"callvault did not store every recording: {counts}")
        with db.read() as session:
            keys = {view["sid"]: get_recording(session, view["sid"]).storage_key for view in views}
    finally:
        db.dispose()
        for proc in [*workers, serve]:
            env.rig.stop(proc)
    verified = verify(env, views, bucket=bucket, keys=keys)
    name = f"(b) callvault, {env.workers} workers x {env.threads} threads, {env.db_kind}"
    return Result(name, case, elapsed, sampler.peak_max, verified, cpu)


def send_callbacks(
    sim: SimulatorProcess, views: list[dict[str, Any]], url: str, *, api_base_url: str | None = None
) -> None:
    """Signed ``completed`` callbacks, four at a time (Twilio sends callbacks concurrently), whose
    RecordingUrl points at ``api_base_url`` (the simulator, or the proxy in front of it)."""
    import httpx

    def post(batch: list[dict[str, Any]]) -> None:
        with httpx.Client(timeout=15.0, trust_env=False) as client:
            for view in batch:
                params = recording_status_params(
                    rig.sim_recording(view), status="completed", api_base_url=api_base_url or sim.base_url
                )
                answer = send_status_callback(url, auth_token=sim.auth_token, params=params, client=client)
                if answer.status_code != 204:
                    raise BenchError(f"callback refused: {answer.status_code} {answer.text[:200]}")

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(post, [views[i::4] for i in range(4)]))


def settled(db: Database, count: int) -> bool:
    counts = rig.count_by_status(db)
    if counts.get("failed"):
        raise BenchError(f"callvault gave up on recordings: {counts}")
    return counts.get("stored", 0) >= count


# -- verification ------------------------------------------------------------------------------------------
def verify(env: Env, views: list[dict[str, Any]], *, bucket: str, keys: dict[str, str | None]) -> int:
    """Every recording stored with the right SHA-256, deleted at the simulator, deleted exactly once.
    Returns how many were checked; raises :class:`BenchError` on the first loss."""
    client = env.s3.client()
    at_sim = env.sim.recordings()
    deletes = Counter(
        event["sid"] for event in env.sim.events("delete") if event["fault"] is None and event["sid"]
    )

    def check(view: dict[str, Any]) -> None:
        sid = view["sid"]
        key = keys.get(sid)
        if key is None:
            raise BenchError(f"{sid}: no storage key")
        found = rig.sha256_of_object(client, bucket, key)
        if found != rig.expected_sha256(view):
            raise BenchError(f"{sid}: stored object is missing or has the wrong SHA-256")
        if not at_sim[sid]["deleted"]:
            raise BenchError(f"{sid}: not deleted at the simulator")
        if deletes[sid] != 1:
            raise BenchError(f"{sid}: {deletes[sid]} DELETE requests reached the simulator")

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(check, views))
    return len(views)


# -- main ---------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small cases, under a minute")
    parser.add_argument("--soak", action="store_true", help="10,000 recordings with faults (bench/soak.py)")
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="postgres")
    parser.add_argument("--workers", type=int, default=2, help="callvault worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker process")
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=50.0,
        help="WAN case: added to every Twilio and S3 request (0: skip)",
    )
    args = parser.parse_args(argv)
    if args.soak:
        import soak

        return soak.main(quick=args.quick)
    cases = (
        [Case("small", 30, 1 * MB), Case("large", 1, 50 * MB)]
        if args.quick
        else [Case("small", 200, 1 * MB), Case("large", 1, 500 * MB)]
    )
    if args.latency_ms:
        cases.append(Case("small", 20 if args.quick else 200, 1 * MB, latency_ms=args.latency_ms))
    console.print(f"[bold]bench/ingest.py[/bold] on {rig.machine()}; {rig.load_average()}")
    results: list[Result] = []
    with Rig("ingest") as bench:
        sim = SimulatorProcess.start(bench)
        s3, _ = rig.start_ministack(bench)
        loopback = Env(bench, sim, s3, args.db, args.workers, args.threads)
        wan: Env | None = None
        for case in cases:
            env = loopback
            if case.latency_ms:
                if wan is None:
                    _, twilio_url, _ = rig.start_proxy(
                        bench, "twilio-wan", sim.base_url, delay_ms=case.latency_ms
                    )
                    _, s3_url, _ = rig.start_proxy(bench, "s3-wan", s3.endpoint_url, delay_ms=case.latency_ms)
                    wan = Env(bench, sim, s3, args.db, args.workers, args.threads, twilio_url, s3_url)
                env = wan
            for run in (run_naive, run_callvault):
                what = f"{case.label}, {run.__name__}"
                console.print(f"[dim]{what}[/dim]")
                results.append(run(env, case))
    report(results)
    return 0


def report(results: list[Result]) -> None:
    rows = []
    for result in results:
        baseline = next(r for r in results if r.case == result.case)
        rows.append(
            (
                result.case.label,
                result.approach,
                f"{result.per_second:.2f}",
                f"{result.mb_per_second:.1f}",
                f"{result.per_second / baseline.per_second:.2f}x",
                f"{result.peak_rss / MB:.0f}",
                f"{result.cpu_seconds / result.case.count * 1000:.0f}",
                f"{result.verified}/{result.case.count}",
            )
        )
    columns = ["case", "approach", "rec/s", "MB/s", "vs (a)", "peak RSS MB", "CPU ms/rec", "verified"]
    console.print(rig.table("Ingest (same run)", columns, rows))
    console.print(
        "Targets: (b) >= 5x (a) on the small recordings; (b) peak RSS < 150 MB on the large one. "
        "The WAN case adds the latency to every request through a proxy in front of the simulator and "
        "one in front of S3. "
        "Peak RSS of (b) is the largest worker process (with its children). CPU ms/rec: of the naive "
        "script, or of callvault's serve + worker processes."
    )
    console.print(rig.load_average())


if __name__ == "__main__":
    sys.exit(main())
