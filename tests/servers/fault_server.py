"""A real HTTP/1.1 server on 127.0.0.1 for the download tests: byte bodies by path with single
byte ranges and validators, and programmable faults (resets, stalls, bad statuses, ...).

``with FaultServer() as server: url = server.serve("/m", body, faults=[ResetAfter(4096, times=1)])``
"""

from __future__ import annotations

import contextlib
import email.utils
import fcntl
import random
import re
import socket
import struct
import sys
import termios
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar, Literal, cast, final

__all__ = [
    "ChangeBody",
    "Corrupt",
    "DelayHeaders",
    "Fault",
    "FaultServer",
    "IgnoreRange",
    "RandomReset",
    "Redirect",
    "Request",
    "ResetAfter",
    "Stall",
    "Status",
    "Trickle",
    "Truncate",
    "WrongLength",
]

CHUNK_BYTES = 64 * 1024
"""Bodies go out in slices of at most this size, straight from a memoryview of the body."""

_RANGE = re.compile(r"bytes=(\d{0,18})-(\d{0,18})")  # longer numbers: ignored, not an error
_BODY_METHODS = ("GET",)
_ANSWER_METHODS = ("GET", "HEAD")


# --- faults -------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Fault:
    """What every fault has: which requests to its path it applies to.

    The requests to the path whose method is in `methods` are numbered from 0 as they arrive;
    the fault applies to numbers `after_requests` up to `after_requests + times - 1` (all from
    `after_requests` on when `times` is None). Faults in the body count GET only by default, so
    a HEAD probe does not use them up; faults that replace the answer count GET and HEAD.
    """

    after_requests: int = 0
    """Requests (counted as below) answered normally before this fault first applies."""
    times: int | None = None
    """How many requests in a row it applies to; None: every one from `after_requests` on."""
    methods: tuple[str, ...] | None = None
    """The methods counted and faulted; None: the class default (GET for faults in the body,
    GET and HEAD for faults that replace the answer)."""

    default_methods: ClassVar[tuple[str, ...]] = _BODY_METHODS

    def __post_init__(self) -> None:
        if self.after_requests < 0:
            raise ValueError(f"after_requests must be >= 0, not {self.after_requests}")
        if self.times is not None and self.times < 1:
            raise ValueError(f"times must be >= 1 or None, not {self.times}")
        for name, least in (("after_bytes", 0), ("seconds", 0), ("rate_bytes_per_s", 1)):
            value = getattr(self, name, None)
            if value is not None and value < least:
                raise ValueError(f"{name} must be >= {least}, not {value}")

    def counts(self, method: str) -> bool:
        methods = self.default_methods if self.methods is None else self.methods
        return method.upper() in (m.upper() for m in methods)

    def covers(self, number: int) -> bool:
        """Whether it applies to the request with this number (0-based, see the module doc)."""
        if number < self.after_requests:
            return False
        return self.times is None or number < self.after_requests + self.times


@dataclass(frozen=True)
class Status(Fault):
    """Answer `status` with `body` instead: 500, 503 or 429 with Retry-After, 401, 403, 404..."""

    status: int
    retry_after: int | str | None = None
    """Sent as Retry-After: seconds, or an HTTP date as a string."""
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()

    default_methods: ClassVar[tuple[str, ...]] = _ANSWER_METHODS


@dataclass(frozen=True)
class Redirect(Fault):
    """Answer `status` with a Location: a URL as given, or the same path (and query) on another
    FaultServer."""

    to: str | FaultServer
    status: int = 302

    default_methods: ClassVar[tuple[str, ...]] = _ANSWER_METHODS

    def location(self, target: str) -> str:
        return self.to.url(target) if isinstance(self.to, FaultServer) else self.to


@dataclass(frozen=True)
class IgnoreRange(Fault):
    """Answer as a server without range support: 200 with the whole body, no Accept-Ranges."""

    default_methods: ClassVar[tuple[str, ...]] = _ANSWER_METHODS


@dataclass(frozen=True)
class ChangeBody(Fault):
    """Serve another version of the resource (body, ETag, Last-Modified) while it applies; with
    the default ``times=None`` the change is for good from request `after_requests` on."""

    body: bytes = field(repr=False)
    etag: str | None
    last_modified: str | None = None

    default_methods: ClassVar[tuple[str, ...]] = _ANSWER_METHODS


@dataclass(frozen=True)
class DelayHeaders(Fault):
    """Wait `seconds` before the status line: a slow first byte."""

    seconds: float

    default_methods: ClassVar[tuple[str, ...]] = _ANSWER_METHODS


@dataclass(frozen=True)
class ResetAfter(Fault):
    """Send `after_bytes` bytes of this response's body, then reset the connection (RST), or
    reset it right after the body when the body is shorter."""

    after_bytes: int


@dataclass(frozen=True)
class RandomReset(Fault):
    """Reset the connection at a random point in this response's body, drawn in [0, length)
    from a `random.Random(seed)` kept for the route, so a run is repeatable."""

    seed: int = 0


@dataclass(frozen=True)
class Truncate(Fault):
    """Send `after_bytes` bytes of the body under the full Content-Length, then close cleanly
    (FIN): the client sees the body end early."""

    after_bytes: int


@dataclass(frozen=True)
class WrongLength(Fault):
    """Send Content-Length = real length + `delta_bytes` (negative: smaller), send the real
    body, then close. Larger: the body ends early; smaller: the client believes a short body."""

    delta_bytes: int


@dataclass(frozen=True)
class Corrupt(Fault):
    """XOR the bytes at these offsets of the resource (not of the response) with `xor_mask`
    wherever a response carries them."""

    offsets: tuple[int, ...]
    xor_mask: int = 0xFF

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.xor_mask <= 0xFF:
            raise ValueError(f"xor_mask must be a byte, not {self.xor_mask}")


@dataclass(frozen=True)
class Stall(Fault):
    """After `after_bytes` bytes of the body, wait `seconds` (None: until the server stops)
    with the connection open, then go on."""

    after_bytes: int = 0
    seconds: float | None = None


@dataclass(frozen=True)
class Trickle(Fault):
    """Send the body at no more than `rate_bytes_per_s` (per response, so per connection)."""

    rate_bytes_per_s: int


# --- the request log ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One request as the server saw and answered it (a snapshot)."""

    method: str
    path: str
    headers: dict[str, str]
    """Header names in lower case."""
    connection: int
    """Serial number of the TCP connection it came on (1, 2, ...): equal numbers mean reuse."""
    status: int | None
    """The status sent; None while the answer has not started."""
    body_bytes_sent: int
    faults: tuple[Fault, ...]
    """The faults whose window covered this request."""
    finished: bool
    """False while the server is still answering it."""

    @property
    def range(self) -> str | None:
        return self.headers.get("range")


@dataclass
class _Exchange:
    method: str
    path: str
    headers: dict[str, str]
    connection: int
    faults: tuple[Fault, ...]
    status: int | None = None
    body_bytes_sent: int = 0
    finished: bool = False

    def snapshot(self) -> Request:
        return Request(
            self.method,
            self.path,
            self.headers,
            self.connection,
            self.status,
            self.body_bytes_sent,
            self.faults,
            self.finished,
        )


@dataclass(frozen=True)
class _Version:
    body: memoryview
    etag: str | None
    last_modified: str | None


@dataclass
class _Route:
    version: _Version
    ranges: bool
    faults: tuple[Fault, ...]
    numbers: list[int]
    """Per fault: how many requests it has counted so far."""
    rngs: dict[int, random.Random]
    """Per RandomReset, by id."""


# --- the server ---------------------------------------------------------------------------------


@final
class FaultServer:
    """A threaded loopback HTTP/1.1 server whose answers can be made to fail on purpose."""

    def __init__(self) -> None:
        self._routes: dict[str, _Route] = {}
        self._log: list[_Exchange] = []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._sockets: dict[int, socket.socket] = {}
        self._connections = 0
        self._in_flight = 0
        self._peak_connections = 0
        self._peak_requests = 0
        self._errors: list[BaseException] = []
        self._httpd = _HTTPServer(self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    # set-up

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def serve(
        self,
        path: str,
        body: bytes,
        *,
        etag: str | None = '"v1"',
        last_modified: str | None = None,
        ranges: bool = True,
        faults: Sequence[Fault] = (),
    ) -> str:
        """Serves `body` at `path` (replacing what was there, fault counts included) and returns
        its URL. `last_modified` is an HTTP date (email.utils.formatdate(t, usegmt=True))."""
        route = _Route(
            _Version(memoryview(body), etag, last_modified),
            ranges,
            tuple(faults),
            [0] * len(faults),
            {id(f): random.Random(f.seed) for f in faults if isinstance(f, RandomReset)},
        )
        with self._lock:
            self._routes[path] = route
        return self.url(path)

    def replace(
        self, path: str, body: bytes, *, etag: str | None, last_modified: str | None = None
    ) -> None:
        """Swaps in a new version of `path`, keeping its faults and their counts; answers under
        way finish with the version they started with."""
        with self._lock:
            self._routes[path].version = _Version(memoryview(body), etag, last_modified)

    # what happened

    def requests(self, path: str | None = None) -> list[Request]:
        with self._lock:
            return [e.snapshot() for e in self._log if path is None or e.path == path]

    def count(self, path: str | None = None) -> int:
        return len(self.requests(path))

    def wait_for_requests(self, count: int, path: str | None = None, timeout_s: float = 10) -> bool:
        """Waits until at least `count` requests (to `path`) have arrived; False on time-out."""
        with self._changed:
            return self._changed.wait_for(
                lambda: sum(path is None or e.path == path for e in self._log) >= count, timeout_s
            )

    def wait_for_close(self, connection: int, timeout_s: float = 10) -> bool:
        """Waits until the server has closed connection number `connection` (its end of the
        stream sent); False on time-out."""
        with self._changed:
            return self._changed.wait_for(lambda: connection not in self._sockets, timeout_s)

    @property
    def peak_connections(self) -> int:
        """The most TCP connections open at once so far (idle keep-alive ones included)."""
        with self._lock:
            return self._peak_connections

    @property
    def peak_requests(self) -> int:
        """The most requests being answered at once so far."""
        with self._lock:
            return self._peak_requests

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._sockets)

    # life cycle

    def __enter__(self) -> FaultServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        with self._lock:
            self._stop.set()  # under the lock: a connection set up after this closes itself
            sockets = list(self._sockets.values())
        self._httpd.shutdown()
        for sock in sockets:  # wakes handlers blocked in send or in reading the next request
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._httpd.server_close()
        with self._changed:
            self._changed.wait_for(lambda: not self._sockets, timeout=10)
        self._thread.join(timeout=10)
        if self._errors and error is None:
            raise AssertionError(f"the fault server failed: {self._errors[0]!r}") from (
                self._errors[0]
            )

    # called by the handlers

    def _opened(self, sock: socket.socket) -> int:
        with self._lock:
            if self._stop.is_set():
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            self._connections += 1
            self._sockets[self._connections] = sock
            self._peak_connections = max(self._peak_connections, len(self._sockets))
            return self._connections

    def _closed(self, connection: int) -> None:
        with self._changed:
            self._sockets.pop(connection, None)
            self._changed.notify_all()

    def _begin(
        self, method: str, path: str, headers: dict[str, str], connection: int
    ) -> tuple[_Exchange, _Route | None, _Version | None]:
        with self._changed:
            route = self._routes.get(path)
            active: list[Fault] = []
            if route is not None:
                for i, fault in enumerate(route.faults):
                    if fault.counts(method):
                        if fault.covers(route.numbers[i]):
                            active.append(fault)
                        route.numbers[i] += 1
            exchange = _Exchange(method, path, headers, connection, tuple(active))
            self._log.append(exchange)
            self._in_flight += 1
            self._peak_requests = max(self._peak_requests, self._in_flight)
            self._changed.notify_all()
            return exchange, route, None if route is None else route.version

    def _end(self, exchange: _Exchange) -> None:
        with self._lock:
            exchange.finished = True
            self._in_flight -= 1

    def _random_cut(self, route: _Route, fault: RandomReset, length: int) -> int:
        with self._lock:
            rng = route.rngs[id(fault)]
            return rng.randrange(length) if length > 0 else 0

    def _failed(self, error: BaseException) -> None:
        with self._lock:
            self._errors.append(error)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 drops connects when a test opens many at once

    def __init__(self, owner: FaultServer) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.owner = owner

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if error is not None and not isinstance(error, OSError):
            self.owner._failed(error)  # a bug in the server, reported when it stops
        # OSError: a client that reset, closed or timed out, which is normal here


@dataclass
class _BodyPlan:
    view: memoryview
    start: int
    """Offset of view[0] in the resource, for Corrupt."""
    cut: int | None = None
    reset: bool = False
    close: bool = False
    stalls: list[tuple[int, float | None]] = field(default_factory=list)
    rate_bytes_per_s: int | None = None
    corrupt: list[tuple[int, int]] = field(default_factory=list)
    """(offset in view, XOR mask)."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30
    disable_nagle_algorithm = True  # small trickled writes go out at once
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self._owner = self.server.owner
        self._stop = self._owner._stop
        self._connection_number = self._owner._opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
            # The end of the stream goes out before the log says the connection is closed, so a
            # test that waits for the close finds the client's socket already at its end.
            self.connection.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            self._owner._closed(self._connection_number)

    def do_GET(self) -> None:
        self._answer()

    def do_HEAD(self) -> None:
        self._answer()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the request log is kept in FaultServer

    # one answer

    def _answer(self) -> None:
        path = self.path.split("?", 1)[0]
        headers = {name.lower(): value for name, value in self.headers.items()}
        exchange, route, version = self._owner._begin(
            self.command, path, headers, self._connection_number
        )
        try:
            if route is None or version is None:
                self._send_whole(exchange, 404, b"not found", [])
            else:
                self._answer_route(exchange, route, version)
        except OSError:
            self.close_connection = True  # the client went away: a normal end here
        finally:
            self._owner._end(exchange)

    def _answer_route(self, exchange: _Exchange, route: _Route, version: _Version) -> None:
        faults = exchange.faults
        delay_s = sum(f.seconds for f in faults if isinstance(f, DelayHeaders))
        if delay_s > 0 and self._stop.wait(delay_s):
            self.close_connection = True
            return
        for fault in faults:
            if isinstance(fault, ChangeBody):
                version = _Version(memoryview(fault.body), fault.etag, fault.last_modified)
        for fault in faults:
            if isinstance(fault, Redirect):
                location = fault.location(self.path)
                self._send_whole(exchange, fault.status, b"", [("Location", location)])
                return
            if isinstance(fault, Status):
                extra = list(fault.headers)
                if fault.retry_after is not None:
                    extra.append(("Retry-After", str(fault.retry_after)))
                self._send_whole(exchange, fault.status, fault.body, extra)
                return

        headers = exchange.headers
        extra = [("Content-Type", "application/octet-stream")]
        if version.etag is not None:
            extra.append(("ETag", version.etag))
        if version.last_modified is not None:
            extra.append(("Last-Modified", version.last_modified))
        if _none_match(headers.get("if-none-match"), version.etag):
            self._start(exchange, 304, extra)
            return
        ranges = route.ranges and not any(isinstance(f, IgnoreRange) for f in faults)
        if ranges:
            extra.append(("Accept-Ranges", "bytes"))
        size = len(version.body)
        wanted = headers.get("range")
        status, start, end = 200, 0, size
        if (
            ranges
            and wanted is not None
            and _if_range_holds(headers.get("if-range"), version.etag, version.last_modified)
        ):
            parsed = _parse_range(wanted, size)
            if isinstance(parsed, str):  # "unsatisfiable"
                extra.append(("Content-Range", f"bytes */{size}"))
                self._send_whole(exchange, 416, b"", extra)
                return
            if parsed is not None:
                status, (start, end) = 206, parsed
                extra.append(("Content-Range", f"bytes {start}-{end - 1}/{size}"))

        plan = self._plan(route, faults, version.body[start:end], start)
        declared = end - start
        for fault in faults:
            if isinstance(fault, WrongLength):
                declared = max(declared + fault.delta_bytes, 0)
                plan.close = True
        extra.append(("Content-Length", str(declared)))
        self._start(exchange, status, extra)
        if self.command == "HEAD":
            return
        if not self._send_body(exchange, plan):
            self.close_connection = True  # the server is stopping
        elif plan.reset:
            self._reset()
        elif plan.close:
            self.close_connection = True

    def _plan(
        self, route: _Route, faults: tuple[Fault, ...], view: memoryview, start: int
    ) -> _BodyPlan:
        plan = _BodyPlan(view, start)
        for fault in faults:
            cut: int | None = None
            if isinstance(fault, ResetAfter):
                cut = fault.after_bytes
            elif isinstance(fault, RandomReset):
                cut = self._owner._random_cut(route, fault, len(view))
            elif isinstance(fault, Truncate):
                cut = fault.after_bytes
            elif isinstance(fault, Stall):
                plan.stalls.append((fault.after_bytes, fault.seconds))
            elif isinstance(fault, Trickle):
                rate = fault.rate_bytes_per_s
                plan.rate_bytes_per_s = min(plan.rate_bytes_per_s or rate, rate)
            elif isinstance(fault, Corrupt):
                plan.corrupt += [
                    (offset - start, fault.xor_mask)
                    for offset in fault.offsets
                    if start <= offset < start + len(view)
                ]
            if cut is not None and (plan.cut is None or cut < plan.cut):
                plan.cut = max(cut, 0)
                plan.reset = not isinstance(fault, Truncate)
                plan.close = True
        plan.stalls.sort(key=lambda stall: stall[0])
        return plan

    def _send_body(self, exchange: _Exchange, plan: _BodyPlan) -> bool:
        """Sends the planned body; False when the server stopped it half way."""
        view = plan.view
        limit = len(view) if plan.cut is None else min(plan.cut, len(view))
        stalls = [stall for stall in plan.stalls if stall[0] <= limit]
        rate = plan.rate_bytes_per_s
        step = CHUNK_BYTES if rate is None else max(1, min(CHUNK_BYTES, rate // 20))
        paced_from = time.monotonic()
        position = 0
        while True:
            while stalls and stalls[0][0] <= position:
                if self._stop.wait(stalls.pop(0)[1]):
                    return False
                if rate is not None:  # the stall does not earn a burst afterwards
                    paced_from = time.monotonic() - position / rate
            if position >= limit:
                return True
            end = min(limit, position + step)
            if stalls:
                end = min(end, stalls[0][0])
            if rate is not None:
                wait_s = paced_from + position / rate - time.monotonic()
                if wait_s > 0 and self._stop.wait(wait_s):
                    return False
            chunk: memoryview | bytearray = view[position:end]
            flips = [(at, mask) for at, mask in plan.corrupt if position <= at < end]
            if flips:
                chunk = bytearray(chunk)  # only a chunk with a flipped byte is copied
                for at, mask in flips:
                    chunk[at - position] ^= mask
            self.connection.sendall(chunk)
            position = end
            exchange.body_bytes_sent = position

    def _reset(self) -> None:
        """Abortive close: once the client has everything sent (so it reads exactly that much),
        close with SO_LINGER 0 so the kernel sends RST instead of FIN."""
        deadline = time.monotonic() + 5
        while _unsent_bytes(self.connection) > 0 and time.monotonic() < deadline:
            if self._stop.wait(0.001):
                break
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()  # drops the makefile's reference, so close() really closes
        self.connection.close()
        self.close_connection = True

    def _start(self, exchange: _Exchange, status: int, headers: list[tuple[str, str]]) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        exchange.status = status

    def _send_whole(
        self, exchange: _Exchange, status: int, body: bytes, headers: list[tuple[str, str]]
    ) -> None:
        self._start(exchange, status, [*headers, ("Content-Length", str(len(body)))])
        if self.command != "HEAD" and body:
            self.connection.sendall(body)
            exchange.body_bytes_sent = len(body)


# --- HTTP details -------------------------------------------------------------------------------


def _parse_range(wanted: str, size: int) -> tuple[int, int] | Literal["unsatisfiable"] | None:
    """[start, end) for a single byte range, "unsatisfiable", or None to ignore the header (not
    bytes, several ranges, or invalid, as RFC 9110 14.2 asks)."""
    match = _RANGE.fullmatch(wanted.strip())
    if match is None:
        return None
    first, last = match.groups()
    if first == "":
        if last == "":
            return None
        suffix = int(last)  # bytes=-n: the last n bytes
        return (size - min(suffix, size), size) if suffix > 0 and size > 0 else "unsatisfiable"
    start = int(first)
    if last != "" and int(last) < start:
        return None
    if start >= size:
        return "unsatisfiable"
    end = size if last == "" else min(int(last) + 1, size)
    return start, end


def _if_range_holds(if_range: str | None, etag: str | None, last_modified: str | None) -> bool:
    """Whether a Range may be honoured: no If-Range, or one naming the current version (a strong
    ETag compared exactly, or a date equal to Last-Modified)."""
    if if_range is None:
        return True
    if_range = if_range.strip()
    if if_range.startswith(('"', "W/")):
        return etag is not None and not etag.startswith("W/") and if_range == etag
    if last_modified is None:
        return False
    try:
        return email.utils.parsedate_to_datetime(if_range) == email.utils.parsedate_to_datetime(
            last_modified
        )
    except (TypeError, ValueError):
        return False


def _none_match(if_none_match: str | None, etag: str | None) -> bool:
    if if_none_match is None or etag is None:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or etag.removeprefix("W/") in tags


def _unsent_bytes(sock: socket.socket) -> int:
    """Bytes in the send queue not yet acknowledged by the peer (Linux SIOCOUTQ)."""
    try:
        answer = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, struct.pack("i", 0))
    except OSError:
        return 0
    return cast(int, struct.unpack("i", answer)[0])
