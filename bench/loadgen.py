"""A lean HTTP/1.1 load generator: pre-built requests, keep-alive connections, one asyncio loop per process.

The machine has two cores and the server under test needs them, so the client must cost as little as
possible: requests are rendered to bytes (signatures included) before the clock starts, and responses are
parsed only as far as the status line, headers and Content-Length. Every request's start and end
(``time.perf_counter``, CLOCK_MONOTONIC on Linux, comparable across processes) and status are returned.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

Target = tuple[str, int]  # host, port


@dataclass(frozen=True)
class Sample:
    start: float
    end: float
    status: int


def render(
    method: str, path: str, *, host: str, headers: dict[str, str] | None = None, body: bytes = b""
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def _connection(target: Target, requests: Sequence[bytes], out: list[Sample]) -> None:
    reader, writer = await _open(target)
    try:
        for raw in requests:
            start = time.perf_counter()
            writer.write(raw)
            status, close = await _read_response(reader)
            out.append(Sample(start, time.perf_counter(), status))
            if close:
                writer.close()
                reader, writer = await _open(target)
    finally:
        writer.close()


async def _open(target: Target) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(*target)
    sock = writer.get_extra_info("socket")
    if sock is not None:  # a request is one write: without NODELAY the next one can wait on a delayed ACK
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return reader, writer


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("the server closed the connection")
    status = int(status_line.split()[1])
    length, close = 0, False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.partition(b":")
        lowered = name.strip().lower()
        if lowered == b"content-length":
            length = int(value)
        elif lowered == b"connection" and value.strip().lower() == b"close":
            close = True
    if length:
        await reader.readexactly(length)
    return status, close


def _client_process(
    targets: list[Target],
    build: Callable[[int], bytes],
    indexes: list[int],
    connections: int,
    ready: Any,
    go: Any,
    results: Any,
) -> None:
    requests = [build(i) for i in indexes]  # signatures etc. are computed before the clock starts
    ready.release()
    go.wait()
    samples: list[Sample] = []

    async def run() -> None:
        share = [requests[i::connections] for i in range(connections)]
        await asyncio.gather(
            *(_connection(targets[i % len(targets)], share[i], samples) for i in range(connections))
        )

    try:
        asyncio.run(run())
        results.put(("ok", [(s.start, s.end, s.status) for s in samples]))
    except Exception as exc:  # reported to the parent, which fails the run
        results.put(("error", f"{type(exc).__name__}: {exc}"))


def drive(
    targets: list[Target],
    build: Callable[[int], bytes],
    *,
    total: int,
    processes: int,
    connections: int,
    timeout: float = 300.0,
) -> list[Sample]:
    """Send ``build(0) … build(total-1)`` over ``processes`` forked client processes with ``connections``
    keep-alive connections each, spread over ``targets`` (a client-side load balancer). Returns every
    sample; raises RuntimeError when a client failed."""
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Semaphore(0)
    go = ctx.Event()
    results = ctx.Queue()
    children = [
        ctx.Process(
            target=_client_process,
            args=(targets, build, list(range(p, total, processes)), connections, ready, go, results),
            daemon=True,
        )
        for p in range(processes)
    ]
    for child in children:
        child.start()
    try:
        for _ in children:
            if not ready.acquire(timeout=timeout):
                raise RuntimeError("a load generator did not get ready")
        go.set()
        samples: list[Sample] = []
        for _ in children:
            kind, payload = results.get(timeout=timeout)
            if kind != "ok":
                raise RuntimeError(f"load generator failed: {payload}")
            samples.extend(Sample(*row) for row in payload)
        return samples
    finally:
        for child in children:
            child.join(5)
            if child.is_alive():
                child.kill()
                child.join()
