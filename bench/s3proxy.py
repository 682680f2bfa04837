"""A fault-injecting, latency-adding HTTP proxy, in front of the S3 test server or the Twilio simulator.

``bench/ingest.py --soak`` puts it in front of ministack with ``--fail-rate``; the ingest benchmark's WAN
case puts one in front of each server with ``--delay-ms`` (every request waits that long before it is
forwarded, like a round trip to a distant region). A random share of requests (``--fail-rate``, seeded) is
answered here with S3's ``503 SlowDown``; the rest is forwarded unchanged: method, raw path and query, every
header including ``Host`` (the SigV4 signature covers them, so the S3 server still verifies it), and the
body. Each request is logged as one JSON line (method, path, query, status, whether the fault was injected,
and ``t_done``: ``time.monotonic()`` when the answer was complete, comparable with the simulator's event
times on the same machine).

    python bench/s3proxy.py --upstream http://127.0.0.1:4566 --port 0 --fail-rate 0.01 --log s3.jsonl
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import sys
import time

import httpx
import uvicorn
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"transfer-encoding", b"te", b"upgrade", b"trailer"})
SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message><RequestId>bench-proxy</RequestId></Error>"
)


class FaultProxy:
    def __init__(self, *, upstream: str, fail_rate: float, delay_ms: float, seed: int, log_path: str) -> None:
        self.upstream = httpx.URL(upstream)
        self.fail_rate = fail_rate
        self.delay = delay_ms / 1000
        self.rng = random.Random(seed)
        self.log = open(log_path, "a", buffering=1)  # noqa: SIM115 - lives as long as the process
        self.client = httpx.AsyncClient(timeout=120.0, limits=httpx.Limits(max_connections=64))
        self.client.headers.clear()  # forward exactly the client's headers, add none

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        body = await request.body()
        raw_path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string", b"")
        injected = self.rng.random() < self.fail_rate
        if self.delay:
            await asyncio.sleep(self.delay)
        if injected:
            response = Response(SLOW_DOWN, status_code=503, media_type="application/xml")
        else:
            url = self.upstream.copy_with(raw_path=raw_path + (b"?" + query if query else b""))
            headers = [(k, v) for k, v in scope["headers"] if k.lower() not in HOP_BY_HOP]
            upstream = await self.client.send(
                self.client.build_request(request.method, url, headers=headers, content=body), stream=True
            )
            content = b"".join([chunk async for chunk in upstream.aiter_raw()])
            await upstream.aclose()
            response = Response(content, status_code=upstream.status_code)
            raw = [(k, v) for k, v in upstream.headers.raw if k.lower() not in HOP_BY_HOP]
            sized = any(k.lower() == b"content-length" for k, _ in raw)
            if not sized and request.method != "HEAD" and upstream.status_code not in (204, 304):
                raw.append((b"content-length", str(len(content)).encode()))  # was chunked upstream
            response.raw_headers = raw
        await response(scope, receive, send)
        entry = {
            "t_done": time.monotonic(),
            "method": request.method,
            "path": raw_path.decode("latin-1"),
            "query": query.decode("latin-1"),
            "status": response.status_code,
            "injected": injected,
        }
        self.log.write(json.dumps(entry) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--fail-rate", type=float, default=0.01)
    parser.add_argument("--delay-ms", type=float, default=0.0, help="added before forwarding each request")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    app = FaultProxy(
        upstream=args.upstream,
        fail_rate=args.fail_rate,
        delay_ms=args.delay_ms,
        seed=args.seed,
        log_path=args.log,
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    print(json.dumps({"port": sock.getsockname()[1]}), flush=True)
    config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False, backlog=1024)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
