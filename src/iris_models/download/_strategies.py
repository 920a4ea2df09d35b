"""How a file's bytes are fetched, chosen by URL scheme: http(s) with ranged, resumable,
verified transfers; ``hf://`` through the Hugging Face endpoint; ``file://`` from a local
path or mount; and any scheme a user registers."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit

from .. import _core, _http
from ..errors import DigestMismatchError, DownloadPaused, IntegrityError
from ._file import (
    DISK_FULL,
    FileDownload,
    FileResult,
    FileSource,
    Progress,
    ResumeState,
    TransferOptions,
    disk_full,
)

if TYPE_CHECKING:
    import httpx

__all__ = [
    "DownloadStrategy",
    "Transfer",
    "TransferRequest",
    "register_strategy",
    "strategy_for",
]


@dataclass(frozen=True)
class TransferRequest:
    """One file to fetch into `part_path`, with what it must be and where to report."""

    source: FileSource
    part_path: Path
    options: TransferOptions = field(default_factory=TransferOptions)
    state: ResumeState | None = None
    on_checkpoint: Callable[[ResumeState], None] | None = None
    on_retry: Callable[[int, float, str], None] | None = None
    client: httpx.Client | None = None


@runtime_checkable
class Transfer(Protocol):
    """A file being fetched: ``run`` blocks (in a worker thread); the rest may be called
    from any thread meanwhile."""

    def run(self) -> FileResult: ...
    def pause(self) -> None: ...
    def cancel(self) -> None: ...
    def progress(self) -> Progress: ...


class DownloadStrategy(Protocol):
    """Makes transfers for the URLs of one scheme."""

    def transfer(self, request: TransferRequest) -> Transfer: ...


class HTTPStrategy:
    """http(s): ranged connections, resume, mirrors, verification as the bytes land."""

    def transfer(self, request: TransferRequest) -> Transfer:
        return FileDownload(
            request.source,
            request.part_path,
            options=request.options,
            state=request.state,
            on_checkpoint=request.on_checkpoint,
            on_retry=request.on_retry,
            client=request.client,
        )


class HuggingFaceStrategy(HTTPStrategy):
    """``hf://owner/repo[@revision]/path``: the endpoint's resolve URL (HF_ENDPOINT), then
    http(s); HF_TOKEN goes with each request to that host only."""

    def transfer(self, request: TransferRequest) -> Transfer:
        urls = [_http.resolve_url(url) for url in request.source.urls]
        source = FileSource(
            urls=urls,
            size=request.source.size,
            sha256=request.source.sha256,
            piece_size=request.source.piece_size,
            piece_sha256=request.source.piece_sha256,
            allow_unverified=request.source.allow_unverified,
        )
        # HF_TOKEN is added per request, for the endpoint's host only (never to the CDN).
        return super().transfer(
            TransferRequest(
                source, request.part_path, request.options, request.state,
                request.on_checkpoint, request.on_retry, request.client,
            )
        )  # fmt: skip


class LocalFileStrategy:
    """``file://`` (a local disk, a mounted share or card): copied and hashed in one pass."""

    def transfer(self, request: TransferRequest) -> Transfer:
        return _LocalCopy(request)


class _LocalCopy:
    def __init__(self, request: TransferRequest) -> None:
        self._request = request
        self._stop = threading.Event()
        self._reason = "paused"
        self._done = 0
        self._total: int | None = None

    def pause(self) -> None:
        self._stop.set()

    def cancel(self) -> None:
        self._reason = "cancelled"
        self._stop.set()

    def progress(self) -> Progress:
        return Progress(self._done, self._total, self._done, self._done, 1)

    def run(self) -> FileResult:
        started = time.monotonic()
        source = self._request.source
        url = source.urls[0]
        path = Path(unquote(urlsplit(url).path))
        total = path.stat().st_size
        self._total = total
        if source.size is not None and source.size != total:
            message = f"{path} has {total} bytes, but the catalog says {source.size}"
            raise IntegrityError(message, url=url)
        if source.sha256 is None and not source.allow_unverified:
            shown = _http.display_url(url)
            message = f"no digest is known for {shown}; allow an unverified download to take it"
            raise IntegrityError(message, url=url)
        part = _core.PartFile(str(self._request.part_path))
        hasher = _core.Sha256()
        try:
            self._copy(path, part, hasher, total, url)
        except OSError as error:
            if error.errno not in DISK_FULL:
                raise
            raise disk_full(self._request.part_path, total) from error
        finally:
            part.close()
        digest = f"sha256:{hasher.hexdigest()}"
        if source.sha256 is not None and digest != source.sha256:
            message = f"{path} has {digest}, not the expected {source.sha256}"
            raise DigestMismatchError(message, url=url)
        return FileResult(
            path=self._request.part_path,
            sha256=digest,
            size=self._done,
            digest_source="catalog" if source.sha256 else "none",
            fetched_bytes=self._done,
            duration_s=time.monotonic() - started,
            url=url,
        )

    def _copy(
        self, path: Path, part: _core.PartFile, hasher: _core.Sha256, total: int, url: str
    ) -> None:
        part.truncate(0)
        part.reserve(total)
        view = memoryview(bytearray(4 << 20))
        with path.open("rb", buffering=0) as reader:
            while count := reader.readinto(view):
                if self._stop.is_set():
                    raise DownloadPaused(self._reason, url=url)
                part.write_at(self._done, view[:count])
                hasher.update(view[:count])
                self._done += count
        part.sync()


_STRATEGIES: dict[str, DownloadStrategy] = {
    "http": HTTPStrategy(),
    "https": HTTPStrategy(),
    "hf": HuggingFaceStrategy(),
    "file": LocalFileStrategy(),
}


def register_strategy(scheme: str, strategy: DownloadStrategy) -> None:
    """Makes `strategy` fetch the URLs whose scheme is `scheme` (replacing any before)."""
    if not scheme or not scheme.replace("+", "").replace("-", "").replace(".", "").isalnum():
        message = f"not a URL scheme: {scheme!r}"
        raise ValueError(message)
    _STRATEGIES[scheme.lower()] = strategy


def strategy_for(url: str) -> DownloadStrategy:
    scheme = urlsplit(url).scheme.lower()
    try:
        return _STRATEGIES[scheme]
    except KeyError:
        known = ", ".join(sorted(_STRATEGIES))
        message = (
            f"no download strategy for {scheme or 'a URL without a scheme'}:// ({url}); known: "
            f"{known}; register_strategy() adds one"
        )
        raise ValueError(message) from None
