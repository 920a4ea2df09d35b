"""Ranged GETs whose bodies land in the caller's buffers.

The fast path speaks HTTP/1.1 on a plain or TLS socket and reads the body with
``recv_into``, which releases the GIL: several connections and the hasher then run on
several cores, where httpx's pure-Python parser tops out near 300 MB/s on one. Where the
environment routes the URL through a proxy, or a response is not length-framed (chunked),
the same interface reads through httpx instead."""

from __future__ import annotations

import contextlib
import email.utils
import re
import socket
import ssl
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urljoin, urlsplit

from .. import _http
from ..errors import NetworkError

if TYPE_CHECKING:
    import httpx

__all__ = [
    "MAX_HEADER_BYTES",
    "ConnectionPool",
    "ContentRange",
    "RangeResponse",
    "TransferError",
    "header_int",
    "open_range",
    "parse_content_range",
    "redirect_target",
    "retry_after_s",
]

MAX_HEADER_BYTES = 64 * 1024
_CONTENT_RANGE = re.compile(r"bytes ([0-9]+)-([0-9]+)/([0-9]+|\*)", re.IGNORECASE)
_STATUS_CODE = re.compile(r"[0-9]{3}")


class TransferError(NetworkError):
    """A transfer broke off in a way a retry may fix: a reset, a stall, a truncated body,
    a refused or dropped connection. ``received`` bytes of the body had arrived."""

    def __init__(
        self, message: str, *, url: str, received: int = 0, status: int | None = None
    ) -> None:
        super().__init__(message, url=url, status=status)
        self.received = received


@dataclass(frozen=True)
class ContentRange:
    start: int
    end: int
    """Inclusive, as HTTP writes it."""
    total: int | None

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def parse_content_range(value: str | None) -> ContentRange | None:
    """``bytes 0-99/1000`` -> ContentRange(0, 99, 1000); None when absent or malformed (a
    range that ends before it starts, or past the total, RFC 9110 section 14.4)."""
    match = _CONTENT_RANGE.fullmatch((value or "").strip())
    if match is None:
        return None
    start, end = int(match.group(1)), int(match.group(2))
    total = None if match.group(3) == "*" else int(match.group(3))
    if end < start or (total is not None and end >= total):
        return None
    return ContentRange(start, end, total)


def header_int(value: str | None) -> int | None:
    """A header's non-negative decimal number (Content-Length, X-Linked-Size), or None: ASCII
    digits only (``str.isdigit`` also takes digits like ``²`` that ``int`` refuses)."""
    text = (value or "").strip()
    if not text or not text.isascii() or not text.isdigit():
        return None
    return int(text)


def retry_after_s(value: str | None) -> float | None:
    """Retry-After as seconds: a number, or an HTTP date."""
    if not value:
        return None
    seconds = header_int(value)
    if seconds is not None:
        return float(seconds)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _authority(netloc: str) -> str:
    """host[:port] of a URL's netloc: never its user:password (sent as an Authorization
    header instead, and kept out of messages)."""
    return netloc.rpartition("@")[2]


def redirect_target(url: str, location: str) -> str:
    """Where a redirect from `url` to `location` leads; NetworkError for one that would
    leave HTTPS (a downgraded hop could serve any bytes, and a digest to match them)."""
    target = urljoin(url, location)
    if urlsplit(url).scheme == "https" and urlsplit(target).scheme != "https":
        shown = f"{_http.display_url(url)} redirects to {_http.display_url(target)}"
        message = f"{shown}: refusing to leave HTTPS"
        raise NetworkError(message, url=url)
    return target


class RangeResponse(Protocol):
    """A response whose body the caller reads into its own buffers."""

    url: str
    status: int
    headers: Mapping[str, str]
    """Lower-case names."""
    length: int | None
    """The body's length from Content-Length; None when the body runs to the close."""

    def abort(self) -> None:
        """From another thread: makes a read blocked on this response return at once (it
        then fails); used to pause without waiting for a silent server."""
        ...

    def readinto(self, buffer: memoryview) -> int:
        """Fills up to ``len(buffer)`` bytes; 0 at the end of the body (or for an empty
        buffer). Raises
        TransferError for a reset, a stall (no bytes for the timeout) or a body that ends
        before its Content-Length."""
        ...

    def close(self) -> None: ...


def open_range(
    url: str,
    start: int,
    end: int | None,
    *,
    if_range: str | None = None,
    headers: Mapping[str, str] | None = None,
    connect_timeout_s: float = 15.0,
    stall_timeout_s: float = 30.0,
    client: httpx.Client | None = None,
    pool: ConnectionPool | None = None,
) -> RangeResponse:
    """GET `url` for bytes `start` to `end` (inclusive; None: to the end of the file).
    With a `pool`, the connection is reused from it and returned to it when the body has
    been read to its end.

    With `if_range` (an ETag or Last-Modified), a server whose file changed answers 200
    with the whole new file, which the caller must notice. Any status comes back as a
    response; only a failure to connect or to read the head raises (TransferError, or
    NetworkError for a TLS certificate the system does not trust).
    """
    wanted = {"Range": f"bytes={start}-{'' if end is None else end}"}
    if if_range is not None:
        wanted["If-Range"] = if_range
    wanted.update(headers or {})
    parts = urlsplit(url)
    if client is not None or parts.scheme not in ("http", "https") or _proxied(url):
        return _HttpxResponse.open(url, wanted, connect_timeout_s, stall_timeout_s, client)
    response = _SocketResponse.open(url, wanted, connect_timeout_s, stall_timeout_s, pool)
    if response is None:  # not length-framed: let httpx decode it
        return _HttpxResponse.open(url, wanted, connect_timeout_s, stall_timeout_s, client)
    return response


def _proxied(url: str) -> bool:
    """Whether the environment (HTTP_PROXY, NO_PROXY, ...) sends `url` through a proxy."""
    parts = urlsplit(url)
    proxies = urllib.request.getproxies()
    if not (proxies.get(parts.scheme) or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass(parts.hostname or "")


@cache
def _tls_context() -> ssl.SSLContext:
    # httpx's own context: the same trust store (certifi, or SSL_CERT_FILE / SSL_CERT_DIR)
    # as every other request iris-models makes.
    import httpx

    context = httpx.create_ssl_context()
    context.set_alpn_protocols(["http/1.1"])
    return context


_PoolKey = tuple[str, str, int]


class ConnectionPool:
    """A worker's idle keep-alive connections, by scheme, host and port: the next range to
    the same server goes over the same connection (no new TCP or TLS handshake per range).
    One per thread; not thread-safe."""

    def __init__(self) -> None:
        self._idle: dict[_PoolKey, socket.socket] = {}

    def take(self, key: _PoolKey) -> socket.socket | None:
        return self._idle.pop(key, None)

    def give(self, key: _PoolKey, connection: socket.socket) -> None:
        old = self._idle.pop(key, None)
        if old is not None:
            old.close()
        self._idle[key] = connection

    def close(self) -> None:
        for connection in self._idle.values():
            connection.close()
        self._idle.clear()


class _SocketResponse:
    """HTTP/1.1 over a socket of our own: kept alive in a ConnectionPool when one is given
    and the body was read to its end, else one request per connection."""

    def __init__(
        self,
        url: str,
        connection: socket.socket,
        status: int,
        headers: dict[str, str],
        early: bytes,
        length: int | None,
        pool: tuple[ConnectionPool, _PoolKey] | None,
    ) -> None:
        self.url = url
        self.status = status
        self.headers: Mapping[str, str] = headers
        self.length = length
        self._connection: socket.socket | None = connection
        self._early = early  # body bytes that came in with the head
        self._remaining = length
        self._received = 0
        keep = headers.get("connection", "").lower() != "close" and length is not None
        self._pool = pool if keep else None

    @classmethod
    def open(
        cls,
        url: str,
        wanted: Mapping[str, str],
        connect_timeout_s: float,
        stall_timeout_s: float,
        pool: ConnectionPool | None = None,
    ) -> _SocketResponse | None:
        parts = urlsplit(url)
        tls = parts.scheme == "https"
        key = (parts.scheme, (parts.hostname or "").lower(), parts.port or (443 if tls else 80))
        authority = _authority(parts.netloc)
        idle = pool.take(key) if pool is not None else None
        if idle is not None:
            try:
                return cls._exchange(url, idle, wanted, stall_timeout_s, pool, key)
            except (TransferError, OSError):
                pass  # the server closed the idle connection meanwhile: a fresh one, once
        try:
            connection = socket.create_connection(key[1:], timeout=connect_timeout_s)
        except OSError as error:
            message = f"could not connect to {authority} ({error.strerror or error})"
            raise TransferError(message, url=url) from None
        try:
            if tls:
                connection = _tls_context().wrap_socket(connection, server_hostname=key[1])
        except ssl.SSLCertVerificationError as error:
            connection.close()
            message = f"TLS certificate check failed for {authority}: {error.verify_message}"
            raise NetworkError(message, url=url) from None
        except OSError as error:
            connection.close()
            message = f"the TLS handshake with {authority} failed: {_describe(error)}"
            raise TransferError(message, url=url) from None
        return cls._exchange(url, connection, wanted, stall_timeout_s, pool, key)

    @classmethod
    def _exchange(
        cls,
        url: str,
        connection: socket.socket,
        wanted: Mapping[str, str],
        stall_timeout_s: float,
        pool: ConnectionPool | None,
        key: _PoolKey,
    ) -> _SocketResponse | None:
        """Sends the request on `connection` and reads the head (closing it on failure)."""
        from .. import __version__

        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            connection.settimeout(stall_timeout_s)
            authority = _authority(parts.netloc)
            lines = [
                f"GET {target} HTTP/1.1",
                f"Host: {authority}",
                f"User-Agent: iris-models/{__version__}",
                "Accept-Encoding: identity",
                *([] if pool is not None else ["Connection: close"]),
                *(f"{name}: {value}" for name, value in wanted.items()),
            ]
            connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            status, headers, early = _read_head(connection, url)
        except TransferError:
            connection.close()
            raise
        except (OSError, UnicodeError) as error:
            connection.close()
            message = f"the request to {_authority(parts.netloc)} failed: {_describe(error)}"
            raise TransferError(message, url=url) from None
        if "transfer-encoding" in headers:
            connection.close()
            return None
        length = header_int(headers.get("content-length"))
        if length is None and "content-length" in headers:
            connection.close()
            message = f"a malformed Content-Length: {headers['content-length'][:40]!r}"
            raise TransferError(message, url=url)
        reusable = pool
        if length is not None and len(early) > length:
            early = early[:length]
            reusable = None  # bytes past the body: the connection's framing is not ours
        held = (reusable, key) if reusable is not None else None
        return cls(url, connection, status, headers, early, length, held)

    def abort(self) -> None:
        connection = self._connection
        if connection is not None:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def readinto(self, buffer: memoryview) -> int:
        if self._remaining == 0 or self._connection is None or not len(buffer):
            return 0  # the end, or no room asked for: as socket.recv_into does
        want = len(buffer) if self._remaining is None else min(len(buffer), self._remaining)
        if self._early:
            count = min(want, len(self._early))
            buffer[:count] = self._early[:count]
            self._early = self._early[count:]
        else:
            try:
                count = self._connection.recv_into(buffer, want)
            except TimeoutError:
                message = f"no data for {self._connection.gettimeout():g} s: the transfer stalled"
                raise TransferError(message, url=self.url, received=self._received) from None
            except OSError as error:
                message = f"the connection broke: {_describe(error)}"
                raise TransferError(message, url=self.url, received=self._received) from None
            if count == 0:
                if self._remaining is None:
                    return 0  # a body that runs to the close has ended
                message = (
                    f"the server closed the connection {self._remaining} bytes before the "
                    "end of the body"
                )
                raise TransferError(message, url=self.url, received=self._received)
        self._received += count
        if self._remaining is not None:
            self._remaining -= count
        return count

    def close(self) -> None:
        if self._connection is None:
            return
        connection, self._connection = self._connection, None
        if self._pool is not None and self._remaining == 0 and not self._early:
            pool, key = self._pool
            pool.give(key, connection)  # read to its end: the next request can use it
        else:
            connection.close()


def _describe(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


def _read_head(connection: socket.socket, url: str) -> tuple[int, dict[str, str], bytes]:
    """The final response's status, headers (lower-case names) and any body bytes read past
    its head; interim 1xx responses (100 Continue, 103 Early Hints) are read and skipped."""
    data = b""
    for _ in range(16):
        status, headers, data = _read_one_head(connection, url, data)
        if not 100 <= status < 200 or status == 101:
            return status, headers, data
    message = "the server sent more than 16 interim (1xx) responses"
    raise TransferError(message, url=url)


def _read_one_head(
    connection: socket.socket, url: str, data: bytes
) -> tuple[int, dict[str, str], bytes]:
    while True:
        end = data.find(b"\r\n\r\n")
        if end != -1:
            break
        if len(data) > MAX_HEADER_BYTES:
            message = f"the response head is over {MAX_HEADER_BYTES} bytes"
            raise TransferError(message, url=url)
        try:
            chunk = connection.recv(16384)
        except TimeoutError:
            message = "no response: the request timed out"
            raise TransferError(message, url=url) from None
        if not chunk:
            message = "the server closed the connection without answering"
            raise TransferError(message, url=url)
        data += chunk
    head, early = data[:end], data[end + 4 :]
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    version, _, rest = status_line.partition(" ")
    code = rest.partition(" ")[0]
    if not version.startswith("HTTP/1.") or not _STATUS_CODE.fullmatch(code):
        message = f"not an HTTP/1.x response: {status_line[:80]!r}"
        raise TransferError(message, url=url)
    headers: dict[str, str] = {}
    for line in header_lines:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            message = f"a malformed response header: {line[:80]!r}"
            raise TransferError(message, url=url)
        key = name.lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return int(code), headers, early


class _HttpxResponse:
    """The same interface over httpx: proxies, chunked bodies, schemes httpx knows."""

    def __init__(self, url: str, response: httpx.Response, owned: httpx.Client | None) -> None:
        self.url = url
        self.status = response.status_code
        self.headers: Mapping[str, str] = {
            name.lower(): value for name, value in response.headers.items()
        }
        length = self.headers.get("content-length", "")
        self.length = header_int(length) if "transfer-encoding" not in self.headers else None
        self._response = response
        self._chunks = response.iter_raw(1 << 20)
        self._pending = b""
        self._owned = owned

    @classmethod
    def open(
        cls,
        url: str,
        wanted: Mapping[str, str],
        connect_timeout_s: float,
        stall_timeout_s: float,
        client: httpx.Client | None,
    ) -> _HttpxResponse:
        import httpx

        from .._http import make_client

        owned = None
        if client is None:
            client = owned = make_client(timeout_s=stall_timeout_s)
        request = client.build_request(
            "GET",
            url,
            headers={"Accept-Encoding": "identity", **wanted},
            timeout=httpx.Timeout(stall_timeout_s, connect=connect_timeout_s),
        )
        try:
            response = client.send(request, stream=True, follow_redirects=False)
        except httpx.HTTPError as error:
            if owned is not None:
                owned.close()
            from .._http import network_error

            described = network_error(error, url)  # "could not connect", "timed out", ...
            if isinstance(error, httpx.ConnectError) and "CERTIFICATE" in str(error).upper():
                raise described from None
            raise TransferError(str(described), url=url) from None
        return cls(url, response, owned)

    def abort(self) -> None:
        pass  # httpx's stream cannot be woken from another thread: its read timeout ends it

    def readinto(self, buffer: memoryview) -> int:
        import httpx

        if not self._pending:
            try:
                self._pending = next(self._chunks, b"")
            except httpx.HTTPError as error:
                message = f"the transfer broke: {str(error) or type(error).__name__}"
                raise TransferError(message, url=self.url) from None
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count

    def close(self) -> None:
        self._response.close()
        if self._owned is not None:
            self._owned.close()
