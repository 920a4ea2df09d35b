"""Remote catalogs: fetched with ETag / Last-Modified revalidation, kept on disk, used from the
cache within a validity window (24 h by default) and whenever the network fails or is off.
A fetched catalog replaces the cached copy only after it has passed validation."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import _http
from ..errors import CatalogError, NetworkError
from ._catalog import DEFAULT_MAX_AGE_S
from ._validate import validated_catalog
from ._wire import WireCatalog

if TYPE_CHECKING:
    import httpx

__all__ = ["DEFAULT_MAX_AGE_S", "MAX_CATALOG_BYTES", "RemoteStatus", "load_remote"]

MAX_CATALOG_BYTES = 64 << 20


@dataclass(frozen=True)
class RemoteStatus:
    """How a remote catalog was obtained this time.

    outcome: ``fresh`` (cached copy within its validity window, no request made),
    ``not-modified`` (the server answered 304), ``updated`` (a new copy was fetched and
    cached), ``stale`` (the fetch failed; the cached copy was used), ``offline`` (offline
    mode; the cached copy was used) or ``unavailable`` (no copy at all: the source was
    left out).
    """

    url: str
    outcome: str
    detail: str = ""
    cached_at: float | None = None

    @property
    def ok(self) -> bool:
        return self.outcome in ("fresh", "not-modified", "updated")


def _cache_paths(cache_dir: Path, url: str) -> tuple[Path, Path]:
    import hashlib  # here, not at import: loading only local catalogs never needs it

    key = hashlib.sha256(url.encode()).hexdigest()[:24]
    folder = cache_dir / "catalogs"
    return folder / f"{key}.json", folder / f"{key}.meta.json"


def _read_cached(
    body_path: Path, meta_path: Path, url: str, allow_http: bool
) -> tuple[WireCatalog, dict[str, Any]] | None:
    """The cached document and its metadata, or None if absent or no longer valid."""
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        source = f"cached copy of {url}"
        document = validated_catalog(body_path.read_bytes(), source, allow_http=allow_http)
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("url") != url:
        return None
    return document, meta


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with temporary.open("wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


def load_remote(
    url: str,
    *,
    cache_dir: Path,
    max_age_s: float = DEFAULT_MAX_AGE_S,
    force: bool = False,
    allow_http: bool = False,
    client: httpx.Client | None = None,
) -> tuple[WireCatalog | None, RemoteStatus]:
    """The catalog document at `url` (None when there is no usable copy) and how it was had.

    Never raises for a network or content failure: those become the status, so one bad
    source cannot take the other catalogs down with it.
    """
    body_path, meta_path = _cache_paths(cache_dir, url)
    cached = _read_cached(body_path, meta_path, url, allow_http)
    now = time.time()
    if cached is not None:
        document, meta = cached
        checked_at = float(meta.get("checked_at", 0.0))
        if not force and 0 <= now - checked_at < max_age_s:
            return document, RemoteStatus(url, "fresh", cached_at=checked_at)
    if _http.is_offline():
        if cached is not None:
            return cached[0], RemoteStatus(
                url, "offline", "offline mode: using the cached copy", cached[1].get("fetched_at")
            )
        return None, RemoteStatus(url, "unavailable", "offline mode and no cached copy")
    try:
        return _fetch(url, cached, body_path, meta_path, allow_http=allow_http, client=client)
    except (NetworkError, CatalogError) as error:
        if cached is not None:
            return cached[0], RemoteStatus(
                url, "stale", f"{error}; using the cached copy", cached[1].get("fetched_at")
            )
        return None, RemoteStatus(url, "unavailable", str(error))


def _fetch(
    url: str,
    cached: tuple[Any, dict[str, Any]] | None,
    body_path: Path,
    meta_path: Path,
    *,
    allow_http: bool,
    client: httpx.Client | None,
) -> tuple[WireCatalog, RemoteStatus]:
    import httpx

    headers: dict[str, str] = {"Accept": "application/json"}
    if cached is not None:
        meta = cached[1]
        if meta.get("etag"):
            headers["If-None-Match"] = meta["etag"]
        if meta.get("last_modified"):
            headers["If-Modified-Since"] = meta["last_modified"]
    own_client = client is None
    active = client if client is not None else _http.make_client()
    try:
        with active.stream("GET", url, headers=_http.request_headers(url, headers)) as response:
            if response.status_code == 304 and cached is not None:
                meta = {**cached[1], "checked_at": time.time()}
                _write_atomically(meta_path, json.dumps(meta).encode())
                return cached[0], RemoteStatus(url, "not-modified", cached_at=meta["checked_at"])
            _http.check_response(response, url)
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_CATALOG_BYTES:
                    message = f"{url}: the catalog is over {MAX_CATALOG_BYTES >> 20} MiB; refused"
                    raise CatalogError(message, source=url, rule="size")
            etag = response.headers.get("ETag")
            last_modified = response.headers.get("Last-Modified")
    except httpx.HTTPError as error:
        raise _http.network_error(error, url) from None
    finally:
        if own_client:
            active.close()
    document = validated_catalog(bytes(body), url, allow_http=allow_http)
    now = time.time()
    _write_atomically(body_path, bytes(body))
    meta = {
        "url": url,
        "etag": etag,
        "last_modified": last_modified,
        "fetched_at": now,
        "checked_at": now,
    }
    _write_atomically(meta_path, json.dumps(meta).encode())
    return document, RemoteStatus(url, "updated", cached_at=now)
