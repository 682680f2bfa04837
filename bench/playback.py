"""Playback links: callvault's endpoints against boto3's raw ``generate_presigned_url``, in the same run.

Setup (not timed): a few recordings are taken into custody the real way (the Twilio simulator in its own
process, signed callbacks to ``callvault serve`` with its embedded workers, S3 storage on ministack), then an
admin and an API token are made with the CLI (``callvault users add``, ``callvault tokens create``).

Measured, against one ``callvault serve --no-worker`` process (S3 storage, presigned-redirect mode):

* ``POST /api/v1/recordings/{sid}/playback`` with ``Authorization: Bearer`` (200, a JSON link);
* ``GET /r/{sid}`` with the same token, redirects not followed (302 to the presigned URL);
* the baseline: ``generate_presigned_url`` on a boto3 client like callvault's, in this process.

"Cost per link" is CPU time per link: of the serve process for the endpoints, of this process for the raw
presign. Afterwards the audit trail must hold one ``playback.issue`` entry per link, and a sample of the
links must play (200 from the S3 server).

    .venv/bin/python bench/playback.py [--quick] [--db sqlite|postgres]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass

import httpx
import ingest
import loadgen
import rig
from rig import BenchError, Rig, SimulatorProcess, console
from sqlalchemy import func, select

from callvault.db.database import Database
from callvault.db.models import AuditEntry

RECORDINGS = 5


@dataclass(frozen=True)
class Measured:
    name: str
    links: int
    elapsed: float
    cpu_seconds: float
    p50_ms: float | None = None
    p99_ms: float | None = None

    @property
    def per_second(self) -> float:
        return self.links / self.elapsed

    @property
    def cpu_ms_per_link(self) -> float:
        return self.cpu_seconds / self.links * 1000


def cli(bench: Rig, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [rig.PYTHON, "-m", "callvault", *args],
        env={**rig.base_env(), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"callvault {' '.join(args)} failed: {done.stderr[-2000:]}")
    return done.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer links, under a minute")
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="postgres")
    parser.add_argument("--clients", type=int, default=2, help="load generator processes")
    parser.add_argument("--connections", type=int, default=4, help="keep-alive connections per client")
    args = parser.parse_args(argv)
    links = 1000 if args.quick else 5000
    console.print(f"[bold]bench/playback.py[/bold] on {rig.machine()}; {rig.load_average()}")
    with Rig("playback") as bench:
        sim = SimulatorProcess.start(bench)
        s3, _ = rig.start_ministack(bench)
        bucket = s3.fresh_bucket()
        database_url = rig.fresh_database(bench, args.db)
        port = rig.free_port()
        base = f"http://127.0.0.1:{port}"
        env = {
            **sim.callvault_env(),
            **rig.s3_env(s3, bucket),
            "CALLVAULT_DATABASE_URL": database_url,
            "CALLVAULT_DATA_DIR": str(bench.dir / "data"),
            "CALLVAULT_SECRET_KEY": "bench-" + "k" * 40,
            "CALLVAULT_PUBLIC_URL": base,
            "CALLVAULT_WORKER_POLL_SECONDS": "0.2",
        }
        keys = take_custody(bench, sim, env, base, port)
        cli(bench, env, "users", "add", "bench@example.com", "--role", "admin", "--no-password")
        token = (
            cli(bench, env, "tokens", "create", "bench@example.com", "--name", "bench")
            .strip()
            .splitlines()[-1]
        )
        serve = bench.callvault("serve", "serve", "--no-worker", "--port", str(port), env=env)
        rig.wait_http_ok(f"{base}/healthz", serve)
        sids = sorted(keys)
        auth = {"Authorization": f"Bearer {token}", "User-Agent": "bench"}
        api = [
            loadgen.render(
                "POST", f"/api/v1/recordings/{sid}/playback", host=f"127.0.0.1:{port}", headers=auth
            )
            for sid in sids
        ]
        permalink = [
            loadgen.render("GET", f"/r/{sid}", host=f"127.0.0.1:{port}", headers=auth) for sid in sids
        ]
        results = [
            presign_baseline(s3, bucket, keys, links),
            endpoint(serve, port, "POST /api/v1/recordings/{sid}/playback", api, 200, links, args),
            endpoint(serve, port, "GET /r/{sid} (302, not followed)", permalink, 302, links, args),
        ]
        issued = audit_count(database_url)
        expected = 2 * links
        if issued != expected:
            raise BenchError(f"{expected} links issued but {issued} playback.issue audit entries")
        check_links_play(base, token, sids)
    report(results, issued)
    return 0


def take_custody(
    bench: Rig, sim: SimulatorProcess, env: dict[str, str], base: str, port: int
) -> dict[str, str]:
    """Store a few recordings through the real pipeline; return their storage keys by SID."""
    views = sim.add_recordings(RECORDINGS, size_bytes=256 * 1024)
    serve = bench.callvault("serve-ingest", "serve", "--port", str(port), env=env)
    rig.wait_http_ok(f"{base}/healthz", serve)
    ingest.send_callbacks(sim, views, f"{base}/twilio/recording-status")
    db = Database(env["CALLVAULT_DATABASE_URL"])
    try:
        rig.deadline_loop(
            lambda: rig.count_by_status(db).get("stored", 0) == RECORDINGS,
            timeout=120,
            what="the recordings to be stored",
            watch=[serve],
        )
        from callvault.db.recordings import get_recording

        with db.read() as session:
            keys = {view["sid"]: get_recording(session, view["sid"]).storage_key for view in views}
    finally:
        db.dispose()
    bench.stop(serve)
    return {sid: key for sid, key in keys.items() if key}


def presign_baseline(s3: rig.S3Server, bucket: str, keys: dict[str, str], links: int) -> Measured:
    """boto3's presigner, configured as callvault's store configures it (SigV4, path style), with the same
    response overrides callvault adds; CPU time of this process."""
    import os

    from callvault.settings import Settings
    from callvault.storage.factory import s3_client

    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ.update(AWS_ACCESS_KEY_ID=s3.access_key_id, AWS_SECRET_ACCESS_KEY=s3.secret_access_key)
    try:
        client = s3_client(
            Settings(s3_endpoint_url=s3.endpoint_url, storage_url=f"s3://{bucket}", public_url="http://x")
        )
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    names = list(keys.values())
    cpu, wall = time.process_time(), time.perf_counter()
    for i in range(links):
        client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": bucket,
                "Key": names[i % len(names)],
                "ResponseContentType": "audio/wav",
                "ResponseContentDisposition": 'inline; filename="recording.wav"',
            },
            ExpiresIn=30,
        )
    return Measured(
        "boto3 generate_presigned_url (baseline)",
        links,
        time.perf_counter() - wall,
        time.process_time() - cpu,
    )


def endpoint(
    serve: rig.Proc,
    port: int,
    name: str,
    requests: list[bytes],
    ok: int,
    links: int,
    args: argparse.Namespace,
) -> Measured:
    cpu = rig.tree_cpu_seconds(serve.pid)
    samples = loadgen.drive(
        [("127.0.0.1", port)],
        lambda i: requests[i % len(requests)],
        total=links,
        processes=args.clients,
        connections=args.connections,
    )
    cpu = rig.tree_cpu_seconds(serve.pid) - cpu
    bad = sorted({s.status for s in samples if s.status != ok})
    if bad:
        raise BenchError(f"{name}: answers other than {ok}: {bad}")
    latencies = sorted((s.end - s.start) * 1000 for s in samples)
    elapsed = max(s.end for s in samples) - min(s.start for s in samples)
    return Measured(
        name, len(samples), elapsed, cpu, rig.percentile(latencies, 50), rig.percentile(latencies, 99)
    )


def audit_count(database_url: str) -> int:
    db = Database(database_url)
    try:
        with db.read() as session:
            query = select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "playback.issue")
            return int(session.execute(query).scalar_one())
    finally:
        db.dispose()


def check_links_play(base: str, token: str, sids: list[str]) -> None:
    with httpx.Client(trust_env=False, timeout=10) as http:
        for sid in sids:
            link = http.post(
                f"{base}/api/v1/recordings/{sid}/playback", headers={"Authorization": f"Bearer {token}"}
            )
            link.raise_for_status()
            media = http.get(link.json()["url"], headers={"Range": "bytes=0-11"})
            if media.status_code not in (200, 206) or media.content[:4] != b"RIFF":
                raise BenchError(f"an issued link for {sid} does not play: {media.status_code}")


def report(results: list[Measured], issued: int) -> None:
    baseline = results[0]
    rows = [
        (
            r.name,
            r.links,
            f"{r.per_second:.0f}",
            f"{r.cpu_ms_per_link:.2f}",
            f"{r.cpu_ms_per_link / baseline.cpu_ms_per_link:.1f}x",
            "-" if r.p50_ms is None else f"{r.p50_ms:.1f}",
            "-" if r.p99_ms is None else f"{r.p99_ms:.1f}",
        )
        for r in results
    ]
    columns = ["how", "links", "links/s", "CPU ms/link", "cost vs presign", "p50 ms", "p99 ms"]
    console.print(rig.table("Playback links (same run, loopback, S3 on ministack)", columns, rows))
    console.print(
        f"{issued} playback.issue audit entries for {issued} links issued through callvault. "
        "Targets: the endpoint costs at most 3x the raw presign per link; >= 500 links/s."
    )
    console.print(rig.load_average())


if __name__ == "__main__":
    sys.exit(main())
