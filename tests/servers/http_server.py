"""A small real HTTP/1.1 server on 127.0.0.1 for tests: byte bodies by path, with ETags and
304s, byte ranges (206, If-Range) or none, forced error statuses, and a log of requests."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, final

__all__ = ["HTTPTestServer", "Request", "Route"]

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


@dataclass
class Route:
    """What one path answers."""

    body: bytes = b""
    status: int = 200
    """Anything but 200 is sent as is, with `body`, before ETags and ranges are looked at."""
    etag: str | None = None
    """Sent as ETag; a matching If-None-Match gets 304, a differing If-Range the whole body."""
    ranges: bool = True
    """False: ignore Range headers and always answer 200 with the whole body."""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    """Header names in lower case."""


@final
class HTTPTestServer:
    """``with HTTPTestServer() as server: url = server.serve("/x", b"...")``."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self._log: list[Request] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def serve(self, path: str, body: bytes = b"", **options: Any) -> str:
        """Serves `body` at `path` (replacing what was there) and returns its URL."""
        self.routes[path] = Route(body, **options)
        return self.url(path)

    def requests(self, path: str | None = None) -> list[Request]:
        with self._lock:
            return [r for r in self._log if path is None or r.path == path]

    def count(self, path: str | None = None) -> int:
        return len(self.requests(path))

    def _record(self, request: Request) -> None:
        with self._lock:
            self._log.append(request)

    def __enter__(self) -> HTTPTestServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)


def _handler_for(server: HTTPTestServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 30

        def do_GET(self) -> None:
            self._answer(send_body=True)

        def do_HEAD(self) -> None:
            self._answer(send_body=False)

        def _answer(self, *, send_body: bool) -> None:
            path = self.path.split("?", 1)[0]
            headers = {name.lower(): value for name, value in self.headers.items()}
            server._record(Request(self.command, path, headers))
            route = server.routes.get(path)
            if route is None:
                self._send(404, b"not found", {}, send_body)
                return
            extra = dict(route.headers)
            if route.etag is not None:
                extra["ETag"] = route.etag
            if route.status != 200:
                self._send(route.status, route.body, extra, send_body)
                return
            if route.etag is not None and headers.get("if-none-match") == route.etag:
                self._send(304, b"", extra, send_body=False)
                return
            wanted = headers.get("range")
            if_range = headers.get("if-range")
            if route.ranges:
                extra["Accept-Ranges"] = "bytes"
            if not route.ranges or wanted is None or (if_range and if_range != route.etag):
                self._send(200, route.body, extra, send_body)
                return
            self._send_range(route.body, wanted, extra, send_body)

        def _send_range(
            self, body: bytes, wanted: str, extra: dict[str, str], send_body: bool
        ) -> None:
            match = _RANGE.fullmatch(wanted.strip())
            if match is None or match.group(1) == match.group(2) == "":
                self._send(200, body, extra, send_body)  # several ranges: not supported here
                return
            first, last = match.groups()
            if first == "":  # bytes=-n: the last n bytes
                start, end = max(len(body) - int(last), 0), len(body) - 1
            else:
                start = int(first)
                end = min(int(last), len(body) - 1) if last else len(body) - 1
            if start >= len(body) or end < start:
                extra["Content-Range"] = f"bytes */{len(body)}"
                self._send(416, b"", extra, send_body)
                return
            extra["Content-Range"] = f"bytes {start}-{end}/{len(body)}"
            self._send(206, body[start : end + 1], extra, send_body)

        def _send(self, status: int, body: bytes, extra: dict[str, str], send_body: bool) -> None:
            try:
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                if status != 304:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if send_body and body:
                    self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client stopped reading: a normal end here

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: the request log is kept in HTTPTestServer

    return Handler
