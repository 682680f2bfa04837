"""``bench/ingest.py --soak``: 10,000 small recordings through four ``callvault worker`` processes on a fresh
PostgreSQL database, with 1 % of Twilio requests failing (the simulator's fail_rate: 429 or 500) and 1 % of
storage requests answered ``503 SlowDown`` by bench/s3proxy.py in front of ministack.

Reports end states, not just speed: stored, verified (the object in the bucket has the SHA-256 of the
simulator's media), lost, early deletes (a DELETE that reached the simulator before the recording's object
had been completely written through the proxy: the simulator's event time against the proxy's log, both
CLOCK_MONOTONIC), double deletes (more than one DELETE for a recording reaching the simulator's handler),
throughput and the peak RSS of every callvault process.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import ingest
import rig
from rig import BenchError, Rig, RssSampler, SimulatorProcess, console

from callvault.db.database import Database
from callvault.db.models import Recording

SIZE = 16 * 1024
FAIL_RATE = 0.01
WORKERS = 4
THREADS = 4
TIMEOUT = 2400.0


def main(*, quick: bool) -> int:
    count = 500 if quick else 10_000
    console.print(f"[bold]bench/ingest.py --soak[/bold] on {rig.machine()}; {rig.load_average()}")
    with Rig("soak") as bench:
        sim = SimulatorProcess.start(bench)
        s3, _ = rig.start_ministack(bench)
        proxy, proxy_url, proxy_log = rig.start_proxy(bench, "s3proxy", s3.endpoint_url, fail_rate=FAIL_RATE)
        console.print(f"[dim]adding {count} recordings of {SIZE // 1024} KB to the simulator[/dim]")
        views = sim.add_recordings(count, size_bytes=SIZE, threads=8)
        bucket = s3.fresh_bucket()
        database_url = rig.fresh_database(bench, "postgres")
        port = rig.free_port()
        base = f"http://127.0.0.1:{port}"
        env = {
            **sim.callvault_env(),
            **rig.s3_env(s3, bucket, endpoint_url=proxy_url),
            "CALLVAULT_DATABASE_URL": database_url,
            "CALLVAULT_DATA_DIR": str(bench.dir / "data"),
            "CALLVAULT_SECRET_KEY": "bench-" + "k" * 40,
            "CALLVAULT_PUBLIC_URL": base,
            "CALLVAULT_WORKER_POLL_SECONDS": "0.2",
            # Retries stay on callvault's defaults except the first backoff step: 0.5 s instead of 2 s,
            # so the run's tail is not dominated by waiting. The attempt budget (12) is unchanged.
            "CALLVAULT_RETRY_BASE_SECONDS": "0.5",
        }
        serve = bench.callvault("serve", "serve", "--no-worker", "--port", str(port), env=env)
        rig.wait_http_ok(f"{base}/healthz", serve)
        workers = [
            bench.callvault(f"worker{i}", "worker", "--concurrency", str(THREADS), env=env)
            for i in range(WORKERS)
        ]
        for worker in workers:
            rig.wait_log(worker, "worker started")
        sim.set_fail_rate(FAIL_RATE, seed=7)  # from here on: callbacks are not Twilio's REST API
        db = Database(database_url)
        try:
            with RssSampler([serve.pid, *(w.pid for w in workers)], interval=0.25) as sampler:
                started = time.perf_counter()
                ingest.send_callbacks(sim, views, f"{base}/twilio/recording-status")
                rig.deadline_loop(
                    lambda: settled(db, count),
                    timeout=TIMEOUT,
                    what=f"{count} recordings to settle",
                    watch=[serve, *workers, proxy],
                    every=0.5,
                )
                elapsed = time.perf_counter() - started
            counts = rig.count_by_status(db)
            keys = storage_keys(db)
        finally:
            db.dispose()
        sim.set_fail_rate(0.0)
        for proc in [*workers, serve]:
            bench.stop(proc)
        console.print("[dim]verifying every object, the simulator's events and the proxy's log[/dim]")
        report = verify(sim, s3.client(), bucket, views, keys, proxy_log)
        report.update(counts=counts, elapsed=elapsed, count=count)
        peaks = {"serve --no-worker": sampler.peaks[serve.pid]}
        peaks.update({f"worker {i} ({THREADS} threads)": sampler.peaks[w.pid] for i, w in enumerate(workers)})
        print_report(report, peaks)
        return 0 if report["lost"] == 0 and not report["early"] and not report["double"] else 1


def settled(db: Database, count: int) -> bool:
    counts = rig.count_by_status(db)
    return counts.get("stored", 0) + counts.get("failed", 0) >= count


def storage_keys(db: Database) -> dict[str, str | None]:
    from sqlalchemy import select

    with db.read() as session:
        return dict(session.execute(select(Recording.sid, Recording.storage_key)).tuples().all())


def verify(
    sim: SimulatorProcess,
    client: Any,
    bucket: str,
    views: list[dict[str, Any]],
    keys: dict[str, str | None],
    proxy_log: Any,
) -> dict[str, Any]:
    def check(view: dict[str, Any]) -> bool:
        key = keys.get(view["sid"])
        return key is not None and rig.sha256_of_object(client, bucket, key) == rig.expected_sha256(view)

    with ThreadPoolExecutor(8) as pool:
        verified = sum(pool.map(check, views))
    # When each object was first completely written: a PUT (or multipart completion) the server accepted.
    written: dict[str, float] = {}
    injected_s3 = requests_s3 = 0
    for line in proxy_log.read_text().splitlines():
        entry = json.loads(line)
        requests_s3 += 1
        injected_s3 += entry["injected"]
        complete = (entry["method"] == "PUT" and "uploadId" not in entry["query"]) or (
            entry["method"] == "POST" and "uploadId" in entry["query"]
        )
        if complete and entry["status"] == 200:
            path = entry["path"].split("/", 2)[-1]  # /bucket/key -> key
            written.setdefault(path, entry["t_done"])
    if len(written) < verified:  # every verified object went through the proxy: the log must show it
        raise BenchError(f"the proxy log shows {len(written)} written objects for {verified} verified")
    events = sim.events()
    twilio_faults = sum(1 for e in events if e["fault"] in ("rate_limit", "server_error"))
    reached = [e for e in events if e["kind"] == "delete" and e["fault"] is None and e["sid"]]
    per_sid = Counter(e["sid"] for e in reached)
    early = []
    for event in reached:
        if event["status"] != 204:
            continue
        key = keys.get(event["sid"])
        done = written.get(key or "")
        if done is None or done > event["t"]:
            early.append(event["sid"])
    at_sim = sim.recordings()
    not_deleted = sum(1 for view in views if not at_sim[view["sid"]]["deleted"])
    return {
        "verified": verified,
        "lost": len(views) - verified,
        "early": early,
        "double": sorted(sid for sid, n in per_sid.items() if n > 1),
        "not_deleted": not_deleted,
        "twilio_requests": len(events),
        "twilio_faults": twilio_faults,
        "s3_requests": requests_s3,
        "s3_faults": injected_s3,
    }


def print_report(report: dict[str, Any], peaks: dict[str, int]) -> None:
    counts = report["counts"]
    rows = [
        ("recordings", report["count"]),
        ("stored", counts.get("stored", 0)),
        ("verified in the bucket (SHA-256)", report["verified"]),
        ("lost", report["lost"]),
        ("failed (gave up)", counts.get("failed", 0)),
        ("still at Twilio (not deleted)", report["not_deleted"]),
        ("early deletes", len(report["early"])),
        ("double deletes", len(report["double"])),
        ("Twilio requests / injected 429+500", f"{report['twilio_requests']} / {report['twilio_faults']}"),
        ("S3 requests / injected 503 SlowDown", f"{report['s3_requests']} / {report['s3_faults']}"),
        ("elapsed s", f"{report['elapsed']:.1f}"),
        ("recordings/s", f"{report['count'] / report['elapsed']:.1f}"),
    ]
    console.print(rig.table("Soak: end state", ["", "value"], rows))
    console.print(
        rig.table(
            "Soak: peak RSS per process",
            ["process", "MB"],
            [(k, f"{v / rig.MB:.0f}") for k, v in peaks.items()],
        )
    )
    if report["early"] or report["double"]:
        console.print(f"early: {report['early'][:10]} double: {report['double'][:10]}")
    console.print(rig.load_average())
