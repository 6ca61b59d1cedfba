"""A local HTTP server for the dataset tests: 127.0.0.1 only, routes registered from Python.

    with LocalServer() as srv:                      # or the `http_server` pytest fixture
        srv.add("/a.jpg", jpeg_bytes, "image/jpeg")
        srv.flaky("/b.png", png_bytes, failures=2, status=429, retry_after=1)
        url = srv.url("/a.jpg")
        ...
        srv.hits["/a.jpg"], srv.max_in_flight

Every route is a function `(handler, hit) -> None` that writes the whole response (hit counts from
1 for that path); the helpers below cover what a downloader must survive: plain bodies and status
codes, redirects (chains, loops, other schemes), a slow first byte, a slow drip, huge bodies with
and without Content-Length, N transient failures (500/503/429 with Retry-After, or a connection
reset) before a good answer, and a reset outright. `serve_prefix` answers a whole family of paths
from a function, so a benchmark can serve thousands of generated images without holding them.

The server records per-path hit counts (query strings ignored) and the largest number of requests
it was handling at once (`max_in_flight`): a client claiming to bound its connections is held to it.
Sleeping routes wait on the server's stop event, so closing the server never hangs on a drip.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

Route = Callable[["_Handler", int], None]

# Bytes written at a time for the huge bodies.
_CHUNK = 64 * 1024


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # close() must not wait for a drip a client gave up on
    allow_reuse_address = True

    def handle_error(self, request, client_address):  # clients that hang up mid-body are the point
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    owner: "LocalServer"  # set on the per-server subclass

    def log_message(self, format, *args):  # quiet
        pass

    def do_GET(self):
        self._dispatch()

    def do_HEAD(self):
        self._dispatch()

    def _dispatch(self):
        owner = self.owner
        path = urlsplit(self.path).path
        with owner._lock:
            owner.hits[path] += 1
            hit = owner.hits[path]
            owner.in_flight += 1
            owner.max_in_flight = max(owner.max_in_flight, owner.in_flight)
            owner.requests.append((self.command, self.path, dict(self.headers)))
        try:
            route = owner.routes.get(path)
            if route is None:
                for prefix, fn in owner.prefixes:
                    if path.startswith(prefix):
                        route = fn
                        break
            if route is None:
                self.send_body(b"not found", "text/plain", status=404)
            else:
                route(self, hit)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, socket.timeout):
            self.close_connection = True
        finally:
            with owner._lock:
                owner.in_flight -= 1

    # --- building blocks for routes -------------------------------------------------------------

    def send_head(self, status: int = 200, content_type: str | None = None, length: int | None = None,
                  headers: dict[str, str] | None = None) -> None:
        """Status line and headers. length=None: no Content-Length (the body ends when the
        connection closes)."""
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        if length is not None:
            self.send_header("Content-Length", str(length))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Connection", "close")
        self.close_connection = True
        self.end_headers()

    def send_body(self, body: bytes, content_type: str | None, status: int = 200,
                  headers: dict[str, str] | None = None) -> None:
        self.send_head(status, content_type, len(body), headers)
        if self.command != "HEAD":
            self.wfile.write(body)

    def reset(self) -> None:
        """Abort the connection with a TCP RST (SO_LINGER 0, then close) instead of an answer."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`; False when the server is closing (the route should stop)."""
        return not self.owner._stop.wait(seconds)


class LocalServer:
    """A ThreadingHTTPServer on 127.0.0.1:<free port> in a daemon thread; a context manager."""

    def __init__(self):
        self.routes: dict[str, Route] = {}
        self.prefixes: list[tuple[str, Route]] = []
        self.hits: Counter[str] = Counter()
        self.requests: list[tuple[str, str, dict[str, str]]] = []  # (method, path, headers)
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        handler = type("Handler", (_Handler,), {"owner": self})
        self._httpd = _Server(("127.0.0.1", 0), handler)
        self.port = self._httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True, name=f"http-fixture-{self.port}")
        self._thread.start()

    # --- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def __enter__(self) -> "LocalServer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def url(self, path: str) -> str:
        return self.base + path

    def reset_counts(self) -> None:
        with self._lock:
            self.hits.clear()
            self.requests.clear()
            self.max_in_flight = self.in_flight

    # --- routes ---------------------------------------------------------------------------------

    def route(self, path: str, fn: Route) -> str:
        """Register fn(handler, hit) for `path`; returns the URL."""
        self.routes[path] = fn
        return self.url(path)

    def serve_prefix(self, prefix: str, fn: Callable[[str], tuple[bytes, str] | None]) -> None:
        """Every path starting with `prefix`: fn(path) -> (body, content type), or None for 404."""

        def answer(h: _Handler, hit: int) -> None:
            got = fn(urlsplit(h.path).path)
            if got is None:
                h.send_body(b"not found", "text/plain", status=404)
            else:
                h.send_body(got[0], got[1])

        self.prefixes.append((prefix, answer))

    def add(self, path: str, body: bytes, content_type: str | None = "application/octet-stream",
            status: int = 200, headers: dict[str, str] | None = None) -> str:
        """A fixed answer (any status: 404, 410, 500 forever...)."""
        return self.route(path, lambda h, hit: h.send_body(body, content_type, status, headers))

    def redirect(self, path: str, location: str, status: int = 302) -> str:
        """A redirect to `location` (a path on this server, a full URL, or another scheme)."""
        target = self.url(location) if location.startswith("/") else location
        return self.route(path, lambda h, hit: h.send_body(b"", None, status, {"Location": target}))

    def slow_first_byte(self, path: str, body: bytes, content_type: str, delay: float) -> str:
        """Nothing at all for `delay` seconds, then the answer."""

        def answer(h: _Handler, hit: int) -> None:
            if h.wait(delay):
                h.send_body(body, content_type)

        return self.route(path, answer)

    def drip(self, path: str, body: bytes, content_type: str, interval: float, chunk: int = 1) -> str:
        """Headers at once (with Content-Length), then `chunk` bytes every `interval` seconds: each
        read is quick, only a total deadline stops it."""

        def answer(h: _Handler, hit: int) -> None:
            h.send_head(200, content_type, len(body))
            for i in range(0, len(body), chunk):
                h.wfile.write(body[i : i + chunk])
                h.wfile.flush()
                if not h.wait(interval):
                    return

        return self.route(path, answer)

    def huge(self, path: str, size: int, content_type: str = "image/jpeg", content_length: bool = True,
             head: bytes = b"\xff\xd8\xff\xe0") -> str:
        """`size` bytes starting with `head` (a JPEG signature by default), generated as sent.
        content_length=False: no Content-Length header, the body ends at connection close, so
        only a limit enforced while streaming stops it."""

        def answer(h: _Handler, hit: int) -> None:
            h.send_head(200, content_type, size if content_length else None)
            h.wfile.write(head)
            sent = len(head)
            block = b"\0" * _CHUNK
            while sent < size and not h.owner._stop.is_set():
                n = min(_CHUNK, size - sent)
                h.wfile.write(block[:n])
                sent += n

        return self.route(path, answer)

    def flaky(self, path: str, body: bytes, content_type: str = "image/jpeg", failures: int = 2,
              status: int | str = 503, retry_after: float | str | None = None) -> str:
        """The first `failures` hits fail (status 500/503/429..., with Retry-After when given, or
        status="reset" for a connection reset), every later hit gets `body`."""

        def answer(h: _Handler, hit: int) -> None:
            if hit > failures:
                h.send_body(body, content_type)
            elif status == "reset":
                h.reset()
            else:
                headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
                h.send_body(b"try later", "text/plain", int(status), headers)

        return self.route(path, answer)

    def reset(self, path: str) -> str:
        """Every hit: the connection is reset before any answer."""
        return self.route(path, lambda h, hit: h.reset())


@contextmanager
def serve() -> Iterator[LocalServer]:
    with LocalServer() as srv:
        yield srv


@pytest.fixture
def http_server() -> Iterator[LocalServer]:
    """A fresh LocalServer per test (starting one takes about a millisecond)."""
    with serve() as srv:
        yield srv
