"""Fault injection between callvault and the services it depends on, over real loopback sockets.

* :class:`TcpProxy` forwards bytes to a TCP service (PostgreSQL, S3). ``cut()`` closes every live connection
  and stops listening, so new connections are refused as if the server were down; ``restore()`` listens on
  the same port again.
* :class:`S3FaultProxy` is an HTTP proxy in front of the S3 test server that answers chosen requests with a
  fault (a status and S3 error code, e.g. ``503 SlowDown``, or a connection reset) and forwards the rest
  unchanged. The ``Host`` header is forwarded as the client sent it, so SigV4 signatures still verify.
  Every request is logged, so a test can count PUTs per key.
* :class:`DatabaseOutage` makes the test database unavailable for a while: PostgreSQL behind a
  :class:`TcpProxy`, SQLite by holding its write lock from another connection.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import sqlite3
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy.engine import make_url

_BUFFER = 64 * 1024


def _close_hard(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0): the peer sees a reset, as when a server or a middlebox dies."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


# -- TCP ----------------------------------------------------------------------------------------------------


class TcpProxy:
    """A loopback TCP proxy to ``target`` that a test can cut and restore."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._listener: socket.socket | None = None
        self._lock = threading.Lock()
        self._live: set[socket.socket] = set()
        self.connections = 0  # accepted so far

    @property
    def address(self) -> tuple[str, int]:
        return "127.0.0.1", self.port

    def start(self) -> TcpProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), name="tcp-proxy", daemon=True).start()
        return self

    def cut(self) -> None:
        """Refuse new connections and reset every open one."""
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            live, self._live = self._live, set()
        for sock in live:
            _close_hard(sock)

    def restore(self) -> None:
        """Listen again on the same port."""
        if self._listener is None:
            self.start()

    def stop(self) -> None:
        self.cut()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut() closed the listener
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _close_hard(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._listener is not listener:  # cut while connecting
                    _close_hard(client)
                    _close_hard(upstream)
                    return
                self._live.update((client, upstream))
                self.connections += 1
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(_BUFFER):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)
            with self._lock:
                self._live.discard(source)
            with contextlib.suppress(OSError):
                source.close()


# -- S3 over HTTP -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class S3Request:
    """One request the proxy received, classified by S3 operation."""

    method: str
    path: str
    query: dict[str, list[str]]
    operation: str  # put_object, upload_part, create_multipart, complete_multipart, abort_multipart, head,
    # get, list_uploads, list, other
    status: int | None = None  # what the client was answered (None: reset)
    fault: str | None = None

    @property
    def key(self) -> str:
        """The object key (path after the bucket), for path-style requests."""
        return self.path.lstrip("/").partition("/")[2]


def classify(method: str, query: dict[str, list[str]]) -> str:
    if method == "PUT":
        return "upload_part" if "partNumber" in query else "put_object"
    if method == "POST":
        return "create_multipart" if "uploads" in query else "complete_multipart"
    if method == "DELETE":
        return "abort_multipart" if "uploadId" in query else "delete"
    if method == "HEAD":
        return "head"
    if method == "GET":
        return "list_uploads" if "uploads" in query else "get"
    return "other"


@dataclass
class S3Fault:
    """Answer the next ``times`` requests of ``operation`` with ``status``/``code``, or reset them."""

    operation: str
    times: int
    status: int = 503
    code: str = "SlowDown"
    reset: bool = False

    @property
    def name(self) -> str:
        return "reset" if self.reset else f"{self.status} {self.code}"


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # several worker processes connect at once (the default backlog is 5)
    daemon_threads = True


@dataclass
class S3FaultProxy:
    upstream: str  # http://127.0.0.1:port of the S3 server
    requests: list[S3Request] = field(default_factory=list)
    _faults: list[S3Fault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def endpoint_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def fail(
        self,
        operation: str,
        *,
        times: int = 1,
        status: int = 503,
        code: str = "SlowDown",
        reset: bool = False,
    ) -> None:
        with self._lock:
            self._faults.append(S3Fault(operation, times, status, code, reset))

    def logged(self, operation: str | None = None) -> list[S3Request]:
        with self._lock:
            return [r for r in self.requests if operation is None or r.operation == operation]

    def _take(self, operation: str) -> S3Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.operation == operation and fault.times > 0:
                    fault.times -= 1
                    return fault
        return None

    def _log(self, request: S3Request) -> None:
        with self._lock:
            self.requests.append(request)

    def start(self) -> S3FaultProxy:
        proxy = self
        upstream = urlsplit(self.upstream)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, and "100 Continue" for botocore's Expect header

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base signature
                pass

            def _relay(self) -> None:
                parts = urlsplit(self.path)
                query = parse_qs(parts.query, keep_blank_values=True)
                operation = classify(self.command, query)
                body = self._body()
                fault = proxy._take(operation)
                if fault is not None and fault.reset:
                    proxy._log(S3Request(self.command, parts.path, query, operation, None, fault.name))
                    self.close_connection = True
                    _close_hard(self.connection)
                    return
                if fault is not None:
                    error = (
                        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{fault.code}</Code>'
                        f"<Message>injected by the test proxy</Message></Error>"
                    ).encode()
                    proxy._log(
                        S3Request(self.command, parts.path, query, operation, fault.status, fault.name)
                    )
                    self.send_response(fault.status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(error)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(error)
                    return
                conn = http.client.HTTPConnection(upstream.hostname or "127.0.0.1", upstream.port, timeout=30)
                try:
                    conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                    for name, value in self.headers.items():
                        # Expect and Transfer-Encoding are never signed (botocore's SIGNED_HEADERS_BLACKLIST);
                        # the body goes upstream whole, with its length.
                        if name.lower() not in (
                            "expect",
                            "transfer-encoding",
                            "connection",
                            "content-length",
                        ):
                            conn.putheader(name, value)
                    if body or self.command in ("PUT", "POST"):
                        conn.putheader("Content-Length", str(len(body)))
                    conn.endheaders(body or None)
                    answer = conn.getresponse()
                    data = answer.read()
                    headers = answer.getheaders()
                finally:
                    conn.close()
                proxy._log(S3Request(self.command, parts.path, query, operation, answer.status))
                self.send_response_only(answer.status, answer.reason)
                for name, value in headers:
                    if name.lower() in ("transfer-encoding", "connection", "date", "server"):
                        continue
                    if name.lower() == "content-length" and self.command != "HEAD":
                        continue
                    self.send_header(name, value)
                if self.command != "HEAD":
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass  # trailers
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _relay  # noqa: N815

        server = _Server(("127.0.0.1", 0), Handler)
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


# -- the database -------------------------------------------------------------------------------------------


class DatabaseOutage(Protocol):
    url: str  # the URL callvault must use, so that cut() reaches it

    def cut(self) -> None:
        """From now on callvault cannot write to the database."""

    def restore(self) -> None:
        """The database is back."""

    def close(self) -> None: ...


class PostgresOutage:
    """PostgreSQL behind a :class:`TcpProxy`: cut means connections reset and new ones refused."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        self.proxy = TcpProxy((parsed.host or "127.0.0.1", parsed.port or 5432)).start()
        self.url = parsed.set(host="127.0.0.1", port=self.proxy.port).render_as_string(hide_password=False)

    def cut(self) -> None:
        self.proxy.cut()

    def restore(self) -> None:
        self.proxy.restore()

    def close(self) -> None:
        self.proxy.stop()


class SqliteOutage:
    """SQLite whose write lock another connection holds: every writer waits its busy timeout, then fails."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._path = make_url(url).database or ""
        self._holder: sqlite3.Connection | None = None

    def cut(self) -> None:
        holder = sqlite3.connect(self._path, timeout=30, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN EXCLUSIVE")
        self._holder = holder

    def restore(self) -> None:
        holder, self._holder = self._holder, None
        if holder is not None:
            holder.execute("ROLLBACK")
            holder.close()

    def close(self) -> None:
        self.restore()


@pytest.fixture
def database_outage(database_url: str) -> Iterator[DatabaseOutage]:
    """A way to take the test database away from callvault and give it back (see :class:`DatabaseOutage`)."""
    outage: DatabaseOutage = (
        SqliteOutage(database_url) if database_url.startswith("sqlite") else PostgresOutage(database_url)
    )
    yield outage
    outage.close()


@pytest.fixture
def tcp_proxy() -> Iterator[Callable[[tuple[str, int]], TcpProxy]]:
    """A factory of started :class:`TcpProxy` instances, all stopped at the end of the test."""
    started: list[TcpProxy] = []

    def make(target: tuple[str, int]) -> TcpProxy:
        proxy = TcpProxy(target).start()
        started.append(proxy)
        return proxy

    yield make
    for proxy in started:
        proxy.stop()


@pytest.fixture
def s3_fault_proxy(s3_server: object) -> Iterator[S3FaultProxy]:
    """An :class:`S3FaultProxy` in front of the session's S3 test server."""
    proxy = S3FaultProxy(upstream=s3_server.endpoint_url).start()  # type: ignore[attr-defined]
    yield proxy
    proxy.stop()
