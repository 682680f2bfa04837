"""Webhook throughput: signed recording-status callbacks against a running ``callvault serve --no-worker``.

Load comes from other processes (bench/loadgen.py: forked clients, keep-alive connections, requests signed
before the clock starts). Each callback carries a new RecordingSid, so every accepted one (204) is one insert;
afterwards the rows are counted and must equal the accepted callbacks. Baselines in the same run, same
uvicorn, same load: a bare Starlette app that reads the body and answers 204, and callvault's own
``/healthz`` (one ``SELECT 1``). Databases: SQLite and PostgreSQL; one web process, and two behind a
load balancer (the load generator spreads connections over both ports, as a real deployment's balancer would).

    .venv/bin/python bench/webhook.py [--quick]
"""

from __future__ import annotations

import argparse
import hashlib
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

import loadgen
import rig
from rig import BenchError, Rig, console

from callvault.db.database import Database
from callvault.twilio.signature import compute_signature
from callvault.twilio.simulator.callbacks import recording_status_params
from callvault.twilio.simulator.state import SimRecording

PUBLIC_URL = "https://vault.bench.invalid"  # behind the (simulated) load balancer; never resolved
API_BASE = "http://127.0.0.1:9"  # the Twilio API base the callbacks point at; serve never contacts it
PATH = "/twilio/recording-status"


@dataclass(frozen=True)
class Outcome:
    name: str
    sent: int
    accepted: int
    elapsed: float
    p50_ms: float
    p99_ms: float
    cpu_ms: float  # CPU time of the server processes per request
    rows: int | None  # rows counted afterwards (None for the baselines)

    @property
    def per_second(self) -> float:
        return self.accepted / self.elapsed


class Account:
    def __init__(self) -> None:
        self.sid = "AC" + secrets.token_hex(16)
        self.token = secrets.token_hex(16)
        self.salt = secrets.token_hex(4)

    def callback(self, index: int) -> bytes:
        sid = "RE" + hashlib.sha256(f"{self.salt}-{index}".encode()).hexdigest()[:32]
        recording = SimRecording(
            sid=sid,
            account_sid=self.sid,
            call_sid="CA" + sid[2:],
            date_created=datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
            size_bytes=160_044,
            channels=1,
            seed=0,
        )
        params = recording_status_params(recording, status="completed", api_base_url=API_BASE)
        signature = compute_signature(auth_token=self.token, url=PUBLIC_URL + PATH, params=params)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
            "User-Agent": "TwilioProxy/1.1",
        }
        return loadgen.render(
            "POST", PATH, host="vault.bench.invalid", headers=headers, body=urlencode(params).encode()
        )


def start_callvault(
    bench: Rig, account: Account, database_url: str, count: int, label: str
) -> tuple[list[int], list[int]]:
    """``count`` serve processes on one database; returns their ports and pids."""
    env = {
        "CALLVAULT_TWILIO_ACCOUNT_SID": account.sid,
        "CALLVAULT_TWILIO_AUTH_TOKEN": account.token,
        "CALLVAULT_TWILIO_API_BASE_URL": API_BASE,
        "CALLVAULT_PUBLIC_URL": PUBLIC_URL,
        "CALLVAULT_DATABASE_URL": database_url,
        "CALLVAULT_STORAGE_URL": f"file://{bench.dir / 'vault'}",
        "CALLVAULT_DATA_DIR": str(bench.dir / "data"),
        "CALLVAULT_SECRET_KEY": "bench-" + "k" * 40,
    }
    ports, pids = [], []
    for index in range(count):
        port = rig.free_port()
        proc = bench.callvault(f"serve-{label}-{index}", "serve", "--no-worker", "--port", str(port), env=env)
        rig.wait_http_ok(f"http://127.0.0.1:{port}/healthz", proc)
        ports.append(port)
        pids.append(proc.pid)
    return ports, pids


def start_bare(bench: Rig) -> tuple[int, int]:
    port = rig.free_port()
    argv = [rig.PYTHON, "-m", "uvicorn", "--app-dir", str(rig.REPO_ROOT / "bench"), "bare_app:app"]
    proc = bench.start("bare", [*argv, "--port", str(port), "--no-access-log", "--log-level", "warning"])
    rig.wait_log_or_port(proc, port)
    return port, proc.pid


def measure(
    name: str,
    ports: list[int],
    pids: list[int],
    build: Callable[[int], bytes],
    args: argparse.Namespace,
    *,
    ok: int,
) -> tuple[Outcome, int]:
    cpu = sum(rig.tree_cpu_seconds(pid) for pid in pids)
    samples = loadgen.drive(
        [("127.0.0.1", port) for port in ports],
        build,
        total=args.requests,
        processes=args.clients,
        connections=args.connections,
    )
    cpu = sum(rig.tree_cpu_seconds(pid) for pid in pids) - cpu
    good = [s for s in samples if s.status == ok]
    if len(good) != len(samples):
        statuses = sorted({s.status for s in samples})
        raise BenchError(f"{name}: {len(samples) - len(good)} requests not answered {ok} (saw {statuses})")
    latencies = sorted((s.end - s.start) * 1000 for s in samples)
    elapsed = max(s.end for s in samples) - min(s.start for s in samples)
    outcome = Outcome(
        name,
        len(samples),
        len(good),
        elapsed,
        rig.percentile(latencies, 50),
        rig.percentile(latencies, 99),
        cpu / len(samples) * 1000,
        None,
    )
    return outcome, len(good)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer requests, under a minute")
    parser.add_argument("--requests", type=int, default=None, help="requests per measurement")
    parser.add_argument("--clients", type=int, default=2, help="load generator processes")
    parser.add_argument("--connections", type=int, default=8, help="keep-alive connections per client")
    args = parser.parse_args(argv)
    if args.requests is None:
        args.requests = 800 if args.quick else 6000
    console.print(f"[bold]bench/webhook.py[/bold] on {rig.machine()}; {rig.load_average()}")
    outcomes: list[Outcome] = []
    with Rig("webhook") as bench:
        account = Account()
        bare_port, bare_pid = start_bare(bench)
        name = "bare Starlette app, 204 (baseline)"
        outcomes.append(measure(name, [bare_port], [bare_pid], account.callback, args, ok=204)[0])
        health_db = rig.fresh_database(bench, "sqlite")
        health_ports, health_pids = start_callvault(bench, account, health_db, 1, "health")
        health = loadgen.render("GET", "/healthz", host="vault.bench.invalid")
        name = "callvault GET /healthz (baseline)"
        outcomes.append(measure(name, health_ports, health_pids, lambda i: health, args, ok=200)[0])
        for kind in ("sqlite", "postgres"):
            for processes in (1, 2):
                account = Account()  # new SIDs, new database: every accepted callback is a new row
                database_url = rig.fresh_database(bench, kind)
                ports, pids = start_callvault(bench, account, database_url, processes, f"{kind}{processes}")
                name = f"callvault webhook, {kind}, {processes} web process{'es' if processes > 1 else ''}"
                outcome, accepted = measure(name, ports, pids, account.callback, args, ok=204)
                rows = count_rows(database_url)
                if rows != accepted:
                    raise BenchError(f"{name}: {accepted} callbacks accepted but {rows} rows stored")
                outcomes.append(Outcome(**{**outcome.__dict__, "rows": rows}))
    report(outcomes, args)
    return 0


def count_rows(database_url: str) -> int:
    db = Database(database_url)
    try:
        return sum(rig.count_by_status(db).values())
    finally:
        db.dispose()


def report(outcomes: list[Outcome], args: argparse.Namespace) -> None:
    rows = [
        (
            o.name,
            o.sent,
            f"{o.per_second:.0f}",
            f"{o.p50_ms:.1f}",
            f"{o.p99_ms:.1f}",
            f"{o.cpu_ms:.2f}",
            "-" if o.rows is None else f"{o.rows}/{o.accepted}",
        )
        for o in outcomes
    ]
    columns = ["endpoint", "requests", "accepted/s", "p50 ms", "p99 ms", "server CPU ms/req", "rows/accepted"]
    console.print(rig.table("Webhook (same run, loopback)", columns, rows))
    console.print(
        f"Load: {args.clients} client processes x {args.connections} keep-alive connections, closed loop. "
        "Targets: >= 1,000 accepted callbacks/s with p99 < 50 ms; every accepted callback has its row."
    )
    console.print(rig.load_average())


if __name__ == "__main__":
    sys.exit(main())
