"""What a URL serves before any byte is fetched: where the bytes really are (after
redirects), their size, the validator that pins this version, whether ranges work, and the
digest a hub advertises for it (Hugging Face's X-Linked-Etag for LFS files)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import _http
from ..errors import NetworkError
from ._transport import (
    header_int,
    open_range,
    parse_content_range,
    redirect_target,
    retry_after_s,
)

if TYPE_CHECKING:
    import httpx

__all__ = ["RemoteFile", "ServerBusyError", "probe"]

_SHA256_ETAG = re.compile(r'(?:W/)?"?([0-9a-f]{64})"?')


class ServerBusyError(NetworkError):
    """429 or 503: the server asks to come back later, in ``retry_after_s`` if it said."""

    def __init__(self, message: str, *, url: str, status: int, retry_after_s: float | None):
        super().__init__(message, url=url, status=status)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class RemoteFile:
    """One file on a server, as one request found it."""

    url: str
    """Where the bytes are: the end of the redirects (ranged requests go straight there)."""
    size: int | None
    etag: str | None
    """A strong ETag (weak ones cannot validate a range)."""
    last_modified: str | None
    accepts_ranges: bool
    linked_sha256: str | None = None
    """``sha256:<hex>`` a hub advertised for the file (X-Linked-Etag), None without one."""
    linked_size: int | None = None

    @property
    def validator(self) -> str | None:
        """What If-Range sends to make sure a resumed range comes from the same version."""
        return self.etag or self.last_modified


MAX_REDIRECTS = 10
_REDIRECTS = (301, 302, 303, 307, 308)


def probe(
    url: str,
    *,
    client: httpx.Client | None = None,
    headers: Mapping[str, str] | None = None,
) -> RemoteFile:
    """Asks `url` for its first byte, following redirects.

    A GET for ``bytes=0-0`` rather than a HEAD: one answer proves range support and gives
    the size (in Content-Range), and signed CDN URLs often refuse HEAD. Sent by the same
    transport as the transfer (through `client` when given): no client to build, and each
    hop gets only its own host's credentials. Raises NetworkError (status set) for an error
    status, TransferError for a failed connection.
    """
    chain: list[Mapping[str, str]] = []
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        wanted = {**_http.request_headers(current), **(headers or {})}
        response = open_range(current, 0, 0, headers=wanted, client=client)
        status, answer = response.status, response.headers
        response.close()
        chain.append(answer)
        location = answer.get("location")
        if status in _REDIRECTS and location:
            current = redirect_target(current, location)
            continue
        break
    else:
        shown = _http.display_url(url)
        message = f"{shown}: too many redirects (more than {MAX_REDIRECTS}); check the URL"
        raise NetworkError(message, url=url)
    shown = _http.display_url(url)  # for a message: never the URL's password
    if status == 416:  # an empty file: there is no byte 0
        # "bytes */0": nothing to fetch. Any other 416 to bytes=0-0 makes no sense.
        if answer.get("content-range", "").replace(" ", "") != "bytes*/0":
            message = f"{shown} refused the range bytes=0-0 (HTTP 416) for a non-empty file"
            raise NetworkError(message, url=url, status=status)
        return _remote(current, 0, chain, accepts_ranges=True)
    if status in (429, 503):
        message = f"{shown} answered HTTP {status}: the server is busy; trying again later"
        delay = retry_after_s(answer.get("retry-after"))
        raise ServerBusyError(message, url=url, status=status, retry_after_s=delay)
    if status >= 400:
        raise _http.status_error(url, status)
    if status == 206:
        content_range = parse_content_range(answer.get("content-range"))
        if content_range is None or content_range.start != 0:
            message = f"{shown} answered a range request with a malformed Content-Range"
            raise NetworkError(message, url=url, status=status)
        return _remote(current, content_range.total, chain, accepts_ranges=True)
    if status == 200:
        size = header_int(answer.get("content-length"))
        return _remote(current, size, chain, accepts_ranges=False)
    message = f"{shown} answered HTTP {status} where a file was expected"
    raise NetworkError(message, url=url, status=status)


def _remote(
    url: str, size: int | None, chain: list[Mapping[str, str]], *, accepts_ranges: bool
) -> RemoteFile:
    """`chain`: each hop's response headers (lower-case names), the last the file's."""
    final = chain[-1]
    etag = final.get("etag")
    if etag is not None and etag.startswith("W/"):
        etag = None
    linked_sha256 = linked_size = None
    for answer in chain:  # the hub answers first; a CDN or mirror further on cannot override it
        linked = answer.get("x-linked-etag")
        match = _SHA256_ETAG.fullmatch(linked.strip()) if linked else None
        if match is not None and linked_sha256 is None:
            linked_sha256 = f"sha256:{match.group(1)}"
        linked_length = header_int(answer.get("x-linked-size"))
        if linked_length is not None and linked_size is None:
            linked_size = linked_length
    return RemoteFile(
        url=url,
        size=size,
        etag=etag,
        last_modified=final.get("last-modified"),
        accepts_ranges=accepts_ranges,
        linked_sha256=linked_sha256,
        linked_size=linked_size,
    )
