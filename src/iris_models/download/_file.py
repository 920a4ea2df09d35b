"""One file from one URL (or its mirrors) into a part file: ranged connections writing at
their offsets, a hasher following the contiguous prefix so that the end of the transfer is
the end of verification, resume state saved as it goes, retries, stalls and mirrors.

Blocking, built from threads: the byte work (socket reads, writes, hashing) releases the GIL,
so connections and the hasher really run in parallel. The async engine runs it in a thread.
"""

from __future__ import annotations

import base64
import errno
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .. import _core, _http
from ..errors import (
    DigestMismatchError,
    DownloadPaused,
    InsufficientSpaceError,
    IntegrityError,
    NetworkError,
    RemoteChangedError,
)
from ._probe import RemoteFile, ServerBusyError, probe
from ._ranges import RangeSet
from ._rate import HostSlots, TokenBucket
from ._transport import (
    ConnectionPool,
    RangeResponse,
    TransferError,
    open_range,
    parse_content_range,
    redirect_target,
    retry_after_s,
)

if TYPE_CHECKING:
    import httpx

__all__ = [
    "FileDownload",
    "FileResult",
    "FileSource",
    "ResumeState",
    "TransferOptions",
]

MiB = 1 << 20
_log = logging.getLogger(__name__)
FLUSH_S = 0.5  # a slow connection writes (and reports) what it has at least this often
CHUNK_S = 4.0  # an adaptive chunk lasts about this long at one connection's speed
MAX_CHUNK_BYTES = 256 * MiB
TAIL_CHUNK_BYTES = 1 * MiB  # the smallest chunk, when the end of a file is shared out
_REDIRECTS = (301, 302, 303, 307, 308)


@dataclass(frozen=True)
class FileSource:
    """What to fetch and what it must turn out to be."""

    urls: Sequence[str]
    """The URL, then its mirrors, tried in order."""
    size: int | None = None
    sha256: str | None = None
    """``sha256:<hex>``; None: the hub's advertised digest, or none (see allow_unverified)."""
    piece_size: int | None = None
    piece_sha256: Sequence[str] = ()
    allow_unverified: bool = False
    """Keep a file no digest vouches for (neither the catalog nor the server gave one)."""


@dataclass(frozen=True)
class TransferOptions:
    connections: int | None = None
    """Connections for one file; None adapts: one while it is fast, more while each is slow."""
    max_connections: int = 8
    slow_connection_bytes_per_s: int = 32 * MiB
    """Below this per connection, the adaptive mode opens another."""
    min_split_bytes: int = 8 * MiB
    """A connection takes over half of another's range only when both halves are this big;
    also the smallest chunk handed out."""
    chunk_bytes: int | None = None
    """Bytes per ranged request, handed out in file order so the hash can follow close
    behind; None adapts to about CHUNK_S of one connection's speed (at most 256 MiB)."""
    buffer_bytes: int = 1 * MiB
    """One read buffer per connection: memory is bounded by connections x buffer."""
    stall_timeout_s: float = 30.0
    connect_timeout_s: float = 15.0
    retries: int = 8
    """Attempts per range in a row without a byte arriving; a range that moves resets it."""
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    max_retry_after_s: float = 600.0
    checkpoint_interval_s: float = 2.0
    checkpoint_bytes: int = 64 * MiB
    """Resume state is saved when this many new bytes landed or the interval passed."""
    rate_limit: TokenBucket | None = None
    host_slots: HostSlots | None = None
    """Shared limit on connections per host (the Downloader sets one for all its transfers)."""
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass
class ResumeState:
    """What a later process needs to carry on: saved in the store's downloads table."""

    url: str
    size: int | None
    validator: str | None
    done: RangeSet = field(default_factory=RangeSet)
    hashed_bytes: int = 0
    hash_state: bytes | None = None
    sha256: str | None = None
    """The digest the bytes were fetched to match: another digest means another file."""

    def to_json(self) -> dict[str, Any]:
        return {
            "url": _http.display_url(self.url),  # saved in the store: no password at rest
            "size": self.size,
            "validator": self.validator,
            "sha256": self.sha256,
            "done": self.done.to_list(),
            "hashed_bytes": self.hashed_bytes,
            "hash_state": None
            if self.hash_state is None
            else base64.b64encode(self.hash_state).decode("ascii"),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ResumeState:
        """Raises ValueError (or KeyError, TypeError) for data `to_json` did not write."""
        saved = data.get("hash_state")
        return cls(
            url=str(data["url"]),
            size=None if data.get("size") is None else int(data["size"]),
            validator=data.get("validator"),
            done=RangeSet((int(start), int(end)) for start, end in data.get("done", ())),
            hashed_bytes=int(data.get("hashed_bytes", 0)),
            hash_state=None if saved is None else base64.b64decode(saved),
            sha256=data.get("sha256"),
        )


@dataclass(frozen=True)
class FileResult:
    path: Path
    sha256: str
    """``sha256:<hex>`` of the bytes on disk, computed as they landed."""
    size: int
    digest_source: str
    """Who vouched for the digest: ``catalog``, ``server`` (a hub's X-Linked-Etag) or
    ``none`` (allow_unverified)."""
    fetched_bytes: int
    """Bytes this run received (a resume fetches only what was missing)."""
    duration_s: float
    url: str


@dataclass(frozen=True)
class Progress:
    done_bytes: int
    total_bytes: int | None
    fetched_bytes: int
    hashed_bytes: int
    connections: int


class _Stop(Exception):
    """Paused or cancelled: workers unwind quietly."""


class _RangesIgnored(Exception):
    """The server answered a range request with the whole file."""


@dataclass
class _Assignment:
    position: int
    end: int


class FileDownload:
    """Downloads one file into `part_path`. ``run()`` blocks until the file is complete and
    verified (returning a FileResult), paused (raising DownloadPaused) or failed; ``pause``,
    ``cancel`` and ``progress`` may be called from any thread meanwhile."""

    def __init__(
        self,
        source: FileSource,
        part_path: Path,
        *,
        options: TransferOptions | None = None,
        state: ResumeState | None = None,
        on_checkpoint: Callable[[ResumeState], None] | None = None,
        on_retry: Callable[[int, float, str], None] | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        if not source.urls:
            message = "a download needs at least one URL"
            raise ValueError(message)
        self.source = source
        self.part_path = Path(part_path)
        self.options = options or TransferOptions()
        self._saved = state
        self._on_checkpoint = on_checkpoint
        self._on_retry = on_retry
        self._client = client
        self._stop = threading.Event()  # pause or cancel, asked for by the user
        self._halt = threading.Event()  # this transfer's connections must stop (any reason)
        self._responses: set[RangeResponse] = set()  # being read, to wake them on a stop
        self._stop_reason = ""
        self._lock = threading.Condition()
        self._done = RangeSet()
        self._fetched = 0
        self._hashed = 0
        self._active: list[_Assignment] = []
        self._pending: list[tuple[int, int]] = []
        self._connections = 0
        self._failure: BaseException | None = None
        self._remote: RemoteFile | None = None
        self._hash_snapshot: tuple[int, bytes] | None = None
        self._expected: str | None = None
        self._started_transfer = time.monotonic()
        self._fetched_at_start = 0
        self._target_connections = 1

    # -- control, from any thread -------------------------------------------------------

    def pause(self) -> None:
        """Stops soon, keeping the part file and saving the state to resume from."""
        self._stop_reason = self._stop_reason or "paused"
        self._stop.set()
        self._halt.set()
        self._abort_responses()

    def cancel(self) -> None:
        self._stop_reason = "cancelled"
        self._stop.set()
        self._halt.set()
        self._abort_responses()

    def _abort_responses(self) -> None:
        """Wakes every connection blocked on a read, so a stop does not wait for the stall
        timeout on a silent server."""
        with self._lock:
            responses = list(self._responses)
            self._lock.notify_all()
        for response in responses:
            response.abort()

    def progress(self) -> Progress:
        with self._lock:
            size = self._remote.size if self._remote else self.source.size
            return Progress(self._done.total, size, self._fetched, self._hashed, self._connections)

    # -- the run ------------------------------------------------------------------------

    def run(self) -> FileResult:
        started = time.monotonic()
        try:
            return self._run(started)
        except _Stop:
            raise self._paused() from None

    def _run(self, started: float) -> FileResult:
        restarted = False  # a changed remote or a bad digest: start over once, not forever
        single_stream_breaks = 0
        force_single = False
        reprobed = False
        mirror = 0
        while True:
            if self._stop.is_set():
                raise self._paused()
            self._halt.clear()  # the last transfer's connections are gone; a pause sets both
            url = self.source.urls[mirror]
            try:
                remote = self._probe(url)
            except NetworkError:
                if mirror + 1 < len(self.source.urls):  # refused, or still failing after retries
                    mirror += 1
                    continue
                raise
            try:
                expected = self._expected_digest(remote)
            except IntegrityError:
                if mirror + 1 < len(self.source.urls):  # this one serves another file
                    mirror += 1
                    continue
                raise
            self._remote = remote
            self._expected = expected[0]
            single = force_single or remote.size is None or not remote.accepts_ranges
            state = self._starting_state(remote, single=single, expected=expected[0])
            try:
                sha256 = self._transfer(remote, state, expected[0], single=single)
            except _RangesIgnored:
                force_single = True  # this server does not honour ranges after all
                self._saved = None
                continue
            except _StreamBroke as broke:
                single_stream_breaks += 1
                if single_stream_breaks > self.options.retries:
                    raise broke.error from None
                self._saved = None
                self._sleep_before_retry(single_stream_breaks, broke.retry_after_s, str(broke))
                continue
            except RemoteChangedError:
                if restarted:
                    raise
                restarted = True
                self._saved = None
                continue
            except _MirrorFailed as failed:
                status = getattr(failed.error, "status", None)
                if remote.url != url and not reprobed and status in (401, 403, 410):
                    # A redirect's signed URL may have expired: ask the mirror again, once.
                    reprobed = True
                    self._saved = self._checkpoint_state()
                    continue
                reprobed = False
                if mirror + 1 < len(self.source.urls):
                    mirror += 1
                    self._saved = self._checkpoint_state()  # the bytes so far stay
                    continue
                raise failed.error from None
            except IntegrityError as bad:
                if mirror + 1 < len(self.source.urls):
                    # Bytes that are not the file: another mirror, from the start (which of
                    # the URLs so far served the bad bytes cannot be told).
                    _log.warning("%s; trying the next mirror", bad)
                    mirror += 1
                    self._saved = None
                    continue
                if restarted or self.source.piece_sha256:
                    raise
                restarted = True  # no pieces to tell bad bytes from good: fetch it all again
                self._saved = None
                continue
            size = remote.size if remote.size is not None else self._done.total
            return FileResult(
                path=self.part_path,
                sha256=sha256,
                size=size,
                digest_source=expected[1],
                fetched_bytes=self._fetched,
                duration_s=time.monotonic() - started,
                url=remote.url,
            )

    def _probe(self, url: str) -> RemoteFile:
        attempt = 0
        while True:
            self._check_stop()
            try:
                return probe(url, client=self._client, headers=self.options.headers)
            except NetworkError as error:
                transient = isinstance(error, TransferError) or (error.status or 0) in (
                    429, 500, 502, 503, 504,
                )  # fmt: skip
                if not transient or attempt >= self.options.retries:
                    raise
                attempt += 1
                retry_after = error.retry_after_s if isinstance(error, ServerBusyError) else None
                self._sleep_before_retry(attempt, retry_after, str(error))

    def _expected_digest(self, remote: RemoteFile) -> tuple[str | None, str]:
        source = self.source
        if source.size is not None and remote.size is not None and source.size != remote.size:
            message = (
                f"{remote.url} serves {remote.size} bytes, but the catalog says the file has "
                f"{source.size}: refusing a file that is not the one the catalog describes"
            )
            raise IntegrityError(message, url=remote.url)
        if source.sha256 is not None:
            return source.sha256, "catalog"
        if remote.linked_sha256 is not None:
            return remote.linked_sha256, "server"
        if source.allow_unverified:
            return None, "none"
        message = (
            f"no digest is known for {remote.url}: neither the catalog nor the server gives "
            "one, so the download could not be verified; allow an unverified download to take "
            "it anyway"
        )
        raise IntegrityError(message, url=remote.url)

    def _starting_state(
        self, remote: RemoteFile, *, single: bool, expected: str | None
    ) -> ResumeState:
        """The saved state when it still describes this file: same size, same validator,
        ranges to resume with. Another URL (a mirror, a freshly signed CDN link) has its own
        validators; its bytes are kept only when a digest will check the mixture."""
        saved = self._saved
        checked = expected is not None
        # Compared without passwords: the store keeps none (ResumeState.to_json).
        another_url = saved is not None and (
            _http.display_url(saved.url) != _http.display_url(remote.url)
        )
        same_version = (
            saved is not None
            and saved.sha256 == expected
            and (saved.validator == remote.validator or (another_url and checked))
        )
        if (
            saved is not None
            and same_version
            and not single
            and saved.size == remote.size
            and saved.validator is not None
            and self.part_path.exists()
        ):
            return saved
        return ResumeState(
            url=remote.url, size=remote.size, validator=remote.validator, sha256=expected
        )

    def _transfer(
        self, remote: RemoteFile, state: ResumeState, expected: str | None, *, single: bool
    ) -> str:
        if self._stop.is_set():
            raise self._paused()
        self.part_path.parent.mkdir(parents=True, exist_ok=True)
        part = _core.PartFile(str(self.part_path))
        hasher: _PrefixHasher | None = None
        try:
            if not state.done:
                part.truncate(0)
                # Forget, durably, any earlier state before writing a byte: a saved state
                # must never describe bytes this truncation has just thrown away.
                self._report_checkpoint(state)
            if remote.size is not None:
                part.reserve(remote.size)
            with self._lock:
                self._done = RangeSet(state.done)
                self._pending = self._done.gaps(remote.size) if remote.size is not None else []
                self._started_transfer = time.monotonic()
                self._fetched_at_start = self._fetched
                self._active = []
                self._failure = None
                self._connections = 0
            hasher = _PrefixHasher(self, part, state, expected, pieces=not single)
            hasher.start()
            if single:
                self._single_stream(part, remote)
            else:
                self._ranged(part, remote, hasher)
            digest = hasher.finish(remote.size if remote.size is not None else self._done.total)
            part.sync()
            return digest
        except OSError as error:
            if error.errno not in DISK_FULL:
                raise
            raise disk_full(self.part_path, remote.size) from error
        finally:
            if hasher is not None:
                hasher.abandon()
            self._save_checkpoint(part)
            part.close()

    # -- connections ----------------------------------------------------------------------

    def _ranged(self, part: _core.PartFile, remote: RemoteFile, hasher: _PrefixHasher) -> None:
        """Runs connections until every byte is on disk and hashed (a piece that fails its
        hash comes back as work), adapting their number and saving the state as it goes."""
        options = self.options
        workers: list[threading.Thread] = []
        target = options.connections or 1
        last_adapt = time.monotonic()
        last_fetched = self._fetched
        last_checkpoint = time.monotonic()
        checkpointed_done = self._done.total
        size = remote.size or 0
        try:
            while True:
                with self._lock:
                    workers = [worker for worker in workers if worker.is_alive()]
                    self._connections = len(workers)
                    failure = self._failure or hasher.error
                    finished = not workers and not self._pending and self._hashed >= size
                if failure is not None:
                    raise failure
                if self._halt.is_set():
                    raise _Stop
                if finished:
                    return
                self._target_connections = target
                while len(workers) < target and self._work_available():
                    worker = threading.Thread(
                        target=self._worker, args=(part, remote), name="iris-download", daemon=True
                    )
                    workers.append(worker)
                    worker.start()
                with self._lock:
                    self._lock.wait(0.2)
                now = time.monotonic()
                if options.connections is None and now - last_adapt >= 1.0:
                    rate = (self._fetched - last_fetched) / (now - last_adapt)
                    if rate / max(len(workers), 1) < options.slow_connection_bytes_per_s:
                        target = min(target * 2, options.max_connections)  # 1, 2, 4, 8
                    last_adapt, last_fetched = now, self._fetched
                done = self._done.total
                if (
                    now - last_checkpoint >= options.checkpoint_interval_s
                    or done - checkpointed_done >= options.checkpoint_bytes
                ):
                    self._save_checkpoint(part)
                    last_checkpoint, checkpointed_done = now, done
        finally:
            self._stop_workers(workers)

    def _stop_workers(self, workers: list[threading.Thread]) -> None:
        if not any(worker.is_alive() for worker in workers):
            return
        self._halt.set()
        self._abort_responses()  # and wakes the workers waiting on the lock
        for worker in workers:
            worker.join()

    def _work_available(self) -> bool:
        with self._lock:
            if self._pending:
                return True
            return any(a.end - a.position >= 2 * self.options.min_split_bytes for a in self._active)

    def _next_assignment(self) -> _Assignment | None:
        """The next chunk in file order (the hasher follows the contiguous prefix, so the
        connections stay near its front), else the second half of the largest range in
        flight (so one slow connection does not hold up the end)."""
        with self._lock:
            if self._pending:
                self._pending.sort()
                start, end = self._pending[0]
                # No bigger than an even share of what is left (waiting and in flight), so the
                # connections finish together instead of one carrying a long last chunk.
                left = sum(gap_end - gap_start for gap_start, gap_end in self._pending)
                left += sum(a.end - a.position for a in self._active)
                share = -(-left // max(self._target_connections, 1))
                chunk = self._chunk_bytes()
                size = max(min(chunk, share), min(chunk, TAIL_CHUNK_BYTES))
                if end - start > size + size // 4:
                    end = start + size
                    self._pending[0] = (end, self._pending[0][1])
                else:
                    self._pending.pop(0)
                assignment = _Assignment(start, end)
                self._active.append(assignment)
                return assignment
            largest = max(self._active, key=lambda a: a.end - a.position, default=None)
            margin = 2 * self.options.buffer_bytes  # past what its owner may be writing now
            if largest is None or largest.end - largest.position < 2 * self.options.min_split_bytes:
                return None
            middle = largest.position + margin + (largest.end - largest.position - margin) // 2
            if middle + self.options.min_split_bytes > largest.end:
                return None  # the buffers are too big for this split to leave both halves
            assignment = _Assignment(middle, largest.end)
            largest.end = middle
            self._active.append(assignment)
            return assignment

    def _chunk_bytes(self) -> int:
        """Called with the lock held."""
        options = self.options
        if options.chunk_bytes is not None:
            return max(options.chunk_bytes, 1)
        elapsed = time.monotonic() - self._started_transfer
        if elapsed <= 0 or self._fetched_this_transfer() <= 0:
            return options.min_split_bytes
        per_connection = self._fetched_this_transfer() / elapsed / max(self._connections, 1)
        wanted = int(per_connection * CHUNK_S)
        return max(options.min_split_bytes, min(wanted, MAX_CHUNK_BYTES))

    def _fetched_this_transfer(self) -> int:
        return self._fetched - self._fetched_at_start

    def _worker(self, part: _core.PartFile, remote: RemoteFile) -> None:
        buffer = bytearray(self.options.buffer_bytes)
        view = memoryview(buffer)
        pool = ConnectionPool()  # one keep-alive connection carries this worker's chunks
        try:
            while not self._halt.is_set():
                assignment = self._next_assignment()
                if assignment is None:
                    return
                try:
                    self._fetch_with_retries(part, remote, assignment, view, pool)
                finally:
                    with self._lock:
                        self._active.remove(assignment)
                        if assignment.position < assignment.end:
                            self._pending.append((assignment.position, assignment.end))
                        self._lock.notify_all()
        except _Stop:
            return
        except BaseException as error:  # noqa: BLE001 - handed to the thread that runs the download
            with self._lock:
                if self._failure is None:
                    self._failure = error
                self._lock.notify_all()
        finally:
            pool.close()

    def _fetch_with_retries(
        self,
        part: _core.PartFile,
        remote: RemoteFile,
        assignment: _Assignment,
        view: memoryview,
        pool: ConnectionPool,
    ) -> None:
        attempt = 0
        url = remote.url
        while assignment.position < assignment.end:
            self._check_stop()
            before = assignment.position
            retry_after: float | None = None
            try:
                url = self._fetch(part, remote, url, assignment, view, pool)
                if assignment.position > before or assignment.position >= assignment.end:
                    attempt = 0
                    continue
                reason = f"{_http.display_url(url)} answered without any of the bytes asked for"
            except _RetryLater as later:
                retry_after, reason = later.delay_s, later.reason
            except TransferError as error:
                reason = str(error)
            if assignment.position > before:
                attempt = 0  # bytes flowed: this is a new run of trouble, not the same one
            attempt += 1
            if attempt > self.options.retries:
                raise _MirrorFailed(
                    TransferError(
                        f"{reason} (gave up after {self.options.retries} attempts)", url=url
                    )
                )
            self._sleep_before_retry(attempt, retry_after, reason)
            url = remote.url  # a redirect's target may have expired: start from the top

    def _fetch(
        self,
        part: _core.PartFile,
        remote: RemoteFile,
        url: str,
        assignment: _Assignment,
        view: memoryview,
        pool: ConnectionPool,
    ) -> str:
        """Reads into the assignment until it is done or the response ends; returns the URL
        the bytes came from (after any redirect)."""
        slots = self.options.host_slots
        host = urlsplit(url).hostname or ""
        if slots is not None and not slots.acquire(host, cancelled=self._halt):
            raise _Stop
        try:
            return self._fetch_connected(part, remote, url, assignment, view, pool)
        finally:
            if slots is not None:
                slots.release(host)

    def _fetch_connected(
        self,
        part: _core.PartFile,
        remote: RemoteFile,
        url: str,
        assignment: _Assignment,
        view: memoryview,
        pool: ConnectionPool,
    ) -> str:
        options = self.options
        for _ in range(10):
            response = open_range(
                url,
                assignment.position,
                assignment.end - 1,
                if_range=remote.validator,
                headers=_headers_for(url, options.headers),
                connect_timeout_s=options.connect_timeout_s,
                stall_timeout_s=options.stall_timeout_s,
                client=self._client,
                pool=pool,
            )
            if response.status in _REDIRECTS and response.headers.get("location"):
                response.close()
                url = _redirect_target(url, response.headers["location"])
                continue
            break
        else:
            raise _MirrorFailed(
                NetworkError(f"{_http.display_url(url)}: too many redirects", url=url)
            )
        with self._lock:
            self._responses.add(response)
        try:
            if self._halt.is_set():  # stopped while this request was on its way
                raise _Stop
            self._check_status(response, remote, assignment)
            self._read_body(part, response, assignment, view)
        finally:
            with self._lock:
                self._responses.discard(response)
            response.close()
        return url

    def _check_status(
        self, response: RangeResponse, remote: RemoteFile, assignment: _Assignment
    ) -> None:
        status = response.status
        shown = _http.display_url(response.url)  # for a message: never the URL's password
        if status == 206:
            etag = response.headers.get("etag")
            validator = remote.validator or ""
            if etag and validator.startswith(('"', "W/")) and etag != validator:
                message = f"{shown} sent a range of another version (ETag {etag})"
                raise RemoteChangedError(message, url=response.url)
            content_range = parse_content_range(response.headers.get("content-range"))
            if (
                content_range is not None
                and response.length is not None
                and response.length != content_range.length
            ):
                message = (
                    f"{shown} sent Content-Length {response.length} for a "
                    f"{content_range.length}-byte range"
                )
                raise TransferError(message, url=response.url)
            if content_range is None or content_range.start != assignment.position:
                sent = response.headers.get("content-range")
                message = f"{shown} sent the wrong range ({sent})"
                raise TransferError(message, url=response.url)
            if remote.size is not None and content_range.total not in (None, remote.size):
                message = (
                    f"{shown} now has {content_range.total} bytes, not {remote.size}: the "
                    "remote file changed"
                )
                raise RemoteChangedError(message, url=response.url)
            return
        if status == 200:
            current = response.headers.get("etag") or response.headers.get("last-modified")
            if remote.validator is not None and current is not None and current != remote.validator:
                message = f"{shown} has a new version (its ETag changed): starting over"
                raise RemoteChangedError(message, url=response.url)
            raise _RangesIgnored
        if status == 416:
            message = f"{shown} no longer has byte {assignment.position}: the remote file changed"
            raise RemoteChangedError(message, url=response.url)
        if status in (408, 429, 503) or status >= 500:
            delay = retry_after_s(response.headers.get("retry-after"))
            raise _RetryLater(delay, f"{shown} answered HTTP {status}")
        if status >= 400:
            raise _MirrorFailed(_http.status_error(response.url, status))
        message = f"{shown} answered HTTP {status} to a range request"
        raise TransferError(message, url=response.url, status=status)

    def _read_body(
        self,
        part: _core.PartFile,
        response: RangeResponse,
        assignment: _Assignment,
        view: memoryview,
    ) -> None:
        """Reads the response into the assignment. A socket read returns what the kernel
        has (often a few hundred KiB); the buffer is filled before it is written, so the
        write, the lock and the hasher's wake-up happen per buffer, not per read. A slow
        link still writes at least every FLUSH_S, and what arrived is written before an
        error or a stop propagates."""
        bucket = self.options.rate_limit
        expected_end = assignment.end
        if response.length is not None:
            expected_end = min(expected_end, assignment.position + response.length)
        content_range = parse_content_range(response.headers.get("content-range"))
        if content_range is not None:
            expected_end = min(expected_end, content_range.end + 1)
        # A body with no length and a file of no known size: its clean end is the file's.
        size_unknown = self._remote is None or self._remote.size is None
        open_ended = response.length is None and content_range is None and size_unknown
        while True:
            with self._lock:
                end = assignment.end
            wanted = min(len(view), end - assignment.position)
            if wanted <= 0:
                return
            filled, ended = 0, False
            flush_at = time.monotonic() + FLUSH_S
            try:
                while filled < wanted and not self._halt.is_set():
                    ask = wanted - filled
                    if bucket is not None:
                        ask = bucket.take(ask, cancelled=self._halt)
                        if ask == 0:
                            break
                    count = response.readinto(view[filled : filled + ask])
                    if bucket is not None and count < ask:
                        bucket.give_back(ask - count)
                    if count == 0:
                        ended = True
                        break
                    filled += count
                    if time.monotonic() >= flush_at:
                        break
            finally:
                if filled:
                    self._land(part, assignment, view[:filled])
            if ended:
                if not open_ended and assignment.position < min(expected_end, end):
                    message = "the response ended before the range it was asked for"
                    raise TransferError(message, url=response.url)
                return
            self._check_stop()

    def _land(self, part: _core.PartFile, assignment: _Assignment, data: memoryview) -> None:
        """Writes bytes at the assignment's position and marks them done (never past its
        end, which another connection may have taken over meanwhile)."""
        with self._lock:
            use = min(len(data), assignment.end - assignment.position)
        if use <= 0:
            return
        part.write_at(assignment.position, data[:use])
        with self._lock:
            self._done.add(assignment.position, assignment.position + use)
            assignment.position += use
            self._fetched += use
            self._lock.notify_all()

    def _single_stream(self, part: _core.PartFile, remote: RemoteFile) -> None:
        """A server without ranges (or a size): one connection from byte 0. A break means
        starting over (raised as _StreamBroke for the caller to retry)."""
        view = memoryview(bytearray(self.options.buffer_bytes))
        end = remote.size if remote.size is not None else 1 << 62
        assignment = _Assignment(0, end)
        with self._lock:
            self._connections = 1
        try:
            response = open_range(
                remote.url,
                0,
                None,
                headers=_headers_for(remote.url, self.options.headers),
                connect_timeout_s=self.options.connect_timeout_s,
                stall_timeout_s=self.options.stall_timeout_s,
                client=self._client,
            )
        except TransferError as error:
            raise _StreamBroke(error) from None
        try:
            if response.status not in (200, 206):
                self._check_status(response, remote, assignment)
            self._read_body(part, response, assignment, view)
        except TransferError as error:
            raise _StreamBroke(error) from None
        except _RetryLater as later:
            raise _StreamBroke(TransferError(later.reason, url=remote.url), later.delay_s) from None
        finally:  # a _MirrorFailed goes up to _run, which tries the next mirror
            response.close()
            with self._lock:
                self._connections = 0
        if remote.size is not None and assignment.position < remote.size:
            message = "the response ended before the end of the file"
            raise _StreamBroke(TransferError(message, url=remote.url))

    # -- helpers ----------------------------------------------------------------------------

    def _check_stop(self) -> None:
        if self._halt.is_set() or self._stop.is_set():
            raise _Stop

    def _paused(self) -> DownloadPaused:
        return DownloadPaused(self._stop_reason or "paused", url=self.source.urls[0])

    def _sleep_before_retry(self, attempt: int, retry_after_s: float | None, reason: str) -> None:
        options = self.options
        delay = min(options.max_backoff_s, options.backoff_s * 2 ** (attempt - 1))
        delay *= random.uniform(0.5, 1.0)  # jitter: connections that failed together spread out
        if retry_after_s is not None:
            delay = max(delay, min(retry_after_s, options.max_retry_after_s))
        if self._on_retry is not None:
            self._on_retry(attempt, delay, reason)
        if self._halt.wait(delay):
            raise _Stop

    def _checkpoint_state(self) -> ResumeState:
        remote = self._remote
        with self._lock:
            snapshot = self._hash_snapshot
            return ResumeState(
                url=remote.url if remote else self.source.urls[0],
                size=remote.size if remote else self.source.size,
                validator=remote.validator if remote else None,
                sha256=self._expected,
                done=RangeSet(self._done),
                hashed_bytes=snapshot[0] if snapshot else 0,
                hash_state=snapshot[1] if snapshot else None,
            )

    def _save_checkpoint(self, part: _core.PartFile) -> None:
        if self._on_checkpoint is None or self._remote is None:
            return
        # The state first, then the flush: every byte the state calls done (or hashed) was
        # written before it was taken, so the flush makes all of them durable before the
        # state that claims them is saved.
        state = self._checkpoint_state()
        try:
            part.sync()
        except OSError:
            return  # not durable: better no new state than one that claims too much
        self._report_checkpoint(state)

    def _report_checkpoint(self, state: ResumeState) -> None:
        if self._on_checkpoint is None:
            return
        try:
            self._on_checkpoint(state)
        except Exception:  # noqa: BLE001 - a busy database must not stop the transfer
            _log.warning("could not save the resume state of %s", self.part_path, exc_info=True)


class _RetryLater(Exception):
    def __init__(self, delay_s: float | None, reason: str) -> None:
        super().__init__(reason)
        self.delay_s = delay_s
        self.reason = reason


class _StreamBroke(Exception):
    """A single-stream transfer broke: it can only start over."""

    def __init__(self, error: BaseException, retry_after_s: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after_s = retry_after_s


class _MirrorFailed(Exception):
    """This URL will not serve the file: try the next mirror."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def _headers_for(url: str, extra: Mapping[str, str]) -> dict[str, str]:
    """The request's headers: the user's, plus the credentials meant for this URL's host
    only (HF_TOKEN for the Hugging Face endpoint), never carried to another host."""
    return {**_http.request_headers(url), **extra}


def _redirect_target(url: str, location: str) -> str:
    try:
        return redirect_target(url, location)
    except NetworkError as refused:
        raise _MirrorFailed(refused) from None


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)  # no space left, or the user's quota is


def disk_full(part_path: Path, size: int | None) -> InsufficientSpaceError:
    """The error for a part file the disk (or quota) has no more room for: it is kept."""
    message = (
        f"the disk is full while writing {part_path}: free some space and run the download "
        "again; it resumes where it stopped"
    )
    available = free_bytes(part_path.parent)
    return InsufficientSpaceError(message, bytes_needed=size or 0, bytes_available=available)


def free_bytes(folder: Path) -> int:
    """Free bytes on `folder`'s file system; 0 when that cannot be read."""
    import shutil

    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return 0


class _PrefixHasher:
    """Hashes the file's contiguous prefix as it lands, read back from the part file (what
    will be renamed into the store is what gets hashed). With a piece manifest, each piece is
    checked on the way; a bad one is un-hashed and handed back to the connections."""

    def __init__(
        self,
        download: FileDownload,
        part: _core.PartFile,
        state: ResumeState,
        expected: str | None,
        *,
        pieces: bool,
    ) -> None:
        self._download = download
        self._part = part
        self._expected = expected
        source = download.source
        self._piece_size = source.piece_size if pieces and source.piece_sha256 else None
        self._pieces = list(source.piece_sha256)
        self._piece_failures: dict[int, int] = {}
        aligned = not self._piece_size or state.hashed_bytes % self._piece_size == 0
        if (
            state.hash_state is not None
            and aligned
            and 0 < state.hashed_bytes <= state.done.contiguous_end(0)
        ):
            self._whole = _core.Sha256.restore(state.hash_state)
            self._position = state.hashed_bytes
        else:
            self._whole = _core.Sha256()
            self._position = 0
        self._total: int | None = None
        self._abandoned = False
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="iris-hash", daemon=True)
        self._publish()

    def start(self) -> None:
        self._thread.start()

    def abandon(self) -> None:
        lock = self._download._lock
        with lock:
            self._abandoned = True
            lock.notify_all()
        self._thread.join()

    def finish(self, total: int) -> str:
        """Waits until all `total` bytes are hashed; returns the digest, checked."""
        lock = self._download._lock
        with lock:
            self._total = total
            lock.notify_all()
        while self._thread.is_alive():
            self._thread.join(0.2)
            if self._download._stop.is_set():
                raise _Stop
        if self.error is not None:
            raise self.error
        digest = f"sha256:{self._whole.hexdigest()}"
        if self._expected is not None and digest != self._expected:
            remote = self._download._remote
            message = (
                f"the downloaded file has {digest}, not the expected {self._expected}: the "
                "bytes are not the file the digest describes"
            )
            raise DigestMismatchError(message, url=remote.url if remote else None)
        return digest

    def _publish(self) -> None:
        download = self._download
        with download._lock:
            download._hashed = self._position
            download._hash_snapshot = (self._position, self._whole.save())
            download._lock.notify_all()

    def _ready_bytes(self) -> int | None:
        """How many bytes can be hashed now (0: wait); None: nothing more to do. Called
        with the lock held."""
        if self._abandoned:
            return None
        total = self._total
        if total is not None and self._position >= total:
            return None
        available = self._download._done.contiguous_end(self._position)
        if not self._piece_size:
            return available - self._position
        piece_end = self._position + self._piece_size
        if total is not None:
            piece_end = min(piece_end, total)
        size = self._download._remote.size if self._download._remote else None
        if size is not None:
            piece_end = min(piece_end, size)
        return piece_end - self._position if available >= piece_end else 0

    def _run(self) -> None:
        lock = self._download._lock
        try:
            while True:
                with lock:
                    ready = self._ready_bytes()
                    while ready == 0:
                        lock.wait(0.5)
                        ready = self._ready_bytes()
                if ready is None:
                    return
                if self._piece_size:
                    self._hash_piece(ready)
                else:
                    length = min(ready, 64 * MiB)  # publish progress (and state) as it goes
                    _core.hash_range(self._part, [self._whole], self._position, length)
                    self._position += length
                self._publish()
        except BaseException as error:  # noqa: BLE001 - handed to the thread that runs the download
            self.error = error
            with lock:
                lock.notify_all()

    def _hash_piece(self, length: int) -> None:
        assert self._piece_size is not None
        index = self._position // self._piece_size
        before = self._whole.copy()
        piece = _core.Sha256()
        _core.hash_range(self._part, [self._whole, piece], self._position, length)
        expected = self._pieces[index] if index < len(self._pieces) else None
        if expected is None or piece.hexdigest() == expected.removeprefix("sha256:"):
            self._position += length
            return
        self._whole = before  # un-hash the bad piece
        failures = self._piece_failures.get(index, 0) + 1
        self._piece_failures[index] = failures
        start, end = self._position, self._position + length
        download = self._download
        if failures >= 3:
            message = f"piece {index} (bytes {start}-{end - 1}) failed its hash {failures} times"
            url = download._remote.url if download._remote else None
            raise DigestMismatchError(message, url=url)
        with download._lock:
            download._done.remove(start, end)
            download._pending.append((start, end))
            download._lock.notify_all()
