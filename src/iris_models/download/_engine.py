"""The download engine: jobs for catalog models, a limit on how many run at once, one job
per model however often it is asked for (and one process per model, by the store's lock),
pause, resume and cancel, a policy that can hold transfers, resume state in the store, and
the events of it all. A model becomes READY only through the store's install, after every
file is in and verified."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .. import _http
from ..errors import (
    DigestMismatchError,
    DownloadPaused,
    InsufficientSpaceError,
    ModelExistsError,
    ModelInUseError,
)
from . import _events as ev
from ._archive import ArchiveError, extract, is_archive, unpacked_size
from ._file import DISK_FULL, FileResult, FileSource, ResumeState, TransferOptions, free_bytes
from ._rate import HostSlots, TokenBucket
from ._strategies import DownloadStrategy, Transfer, TransferRequest, strategy_for

if TYPE_CHECKING:
    from ..catalog import ModelDescriptor, ModelFileSpec
    from ..store import InstalledModel, Store

__all__ = ["DEFAULT_SPACE_BUFFER_BYTES", "Downloader", "NetworkPolicy"]

DEFAULT_SPACE_BUFFER_BYTES = 500 * 1024 * 1024  # the specification's headroom
PROGRESS_INTERVAL_S = 0.25
LOCK_POLL_S = 0.5
POLICY_POLL_S = 5.0

EventCallback = Callable[[ev.DownloadEvent], Any]
_log = logging.getLogger(__name__)


class NetworkPolicy(Protocol):
    """Decides whether transfers may run now (for example: only on an unmetered network, or
    only while charging). Asked before each download starts, while one waits, and every
    POLICY_POLL_S while one runs (a no pauses it until the answer is yes again)."""

    def allows_transfers(self) -> bool | Awaitable[bool]: ...


@dataclass
class _Job:
    model_id: str
    future: asyncio.Future[InstalledModel]
    listeners: list[EventCallback] = field(default_factory=list)
    transfer: Transfer | None = None
    stop: str | None = None  # "paused" or "cancelled", asked for before or during a transfer
    keep_part_files: bool = False
    bytes_done: int = 0
    stopped: asyncio.Event = field(default_factory=asyncio.Event)
    slot_taken: bool = False
    strategy: DownloadStrategy | None = None  # this model's own; else by URL scheme


class Downloader:
    """Downloads catalog models into a store. One per process is enough; the Registry holds
    one. All methods run on one event loop."""

    def __init__(
        self,
        store: Store,
        *,
        max_concurrent: int = 2,
        max_per_host: int = 8,
        options: TransferOptions | None = None,
        rate_limit_bytes_per_s: int | None = None,
        policy: NetworkPolicy | None = None,
        space_buffer_bytes: int = DEFAULT_SPACE_BUFFER_BYTES,
    ) -> None:
        if max_concurrent < 1:
            message = f"max_concurrent must be at least 1, not {max_concurrent}"
            raise ValueError(message)
        self.store = store
        self.max_concurrent = max_concurrent
        self.options = options or TransferOptions()
        if self.options.host_slots is None:
            self.options = replace(self.options, host_slots=HostSlots(max_per_host))
        if rate_limit_bytes_per_s is not None:
            self.options = replace(self.options, rate_limit=TokenBucket(rate_limit_bytes_per_s))
        self.policy = policy
        self.space_buffer_bytes = space_buffer_bytes
        self._jobs: dict[str, _Job] = {}
        self._slots: asyncio.Semaphore | None = None
        self._slots_loop: asyncio.AbstractEventLoop | None = None
        self._waiting: list[str] = []
        self._subscribers: list[asyncio.Queue[ev.DownloadEvent | None]] = []
        self._listeners: list[EventCallback] = []
        self._callback_tasks: set[asyncio.Future[Any]] = set()

    # -- events -----------------------------------------------------------------------------

    def add_listener(self, callback: EventCallback) -> None:
        """Calls `callback` with every event of every download (on the event loop)."""
        self._listeners.append(callback)

    async def events(self) -> AsyncIterator[ev.DownloadEvent]:
        """Every event from now on, as an async iterator (``async for event in ...``)."""
        queue: asyncio.Queue[ev.DownloadEvent | None] = asyncio.Queue()
        self._subscribers.append(queue)
        try:
            while (event := await queue.get()) is not None:
                yield event
        finally:
            self._subscribers.remove(queue)

    def _emit(self, job: _Job | None, event: ev.DownloadEvent) -> None:
        for callback in [*self._listeners, *(job.listeners if job else ())]:
            try:
                result = callback(event)
            except Exception:  # noqa: BLE001 - a listener's bug must not break the download
                _log.exception("a download event listener failed on %s", event.kind)
                continue
            if inspect.isawaitable(result):  # an async callback: run it, keep it referenced
                task = asyncio.ensure_future(result)
                self._callback_tasks.add(task)
                task.add_done_callback(self._callback_tasks.discard)
        for queue in self._subscribers:
            queue.put_nowait(event)

    # -- control ----------------------------------------------------------------------------

    def running(self) -> list[str]:
        """Ids of the downloads this process runs or has queued."""
        return [job.model_id for job in self._jobs.values()]

    def pause(self, model_id: str) -> bool:
        """Pauses a download of this process (its part files and state are kept; pulling it
        again resumes). False if there is none."""
        return self._stop(model_id, "paused", keep_part_files=True)

    def cancel(self, model_id: str, *, keep_part_files: bool = False) -> bool:
        """Stops a download and forgets it; its part files go unless `keep_part_files`."""
        return self._stop(model_id, "cancelled", keep_part_files=keep_part_files)

    def pause_all(self) -> int:
        return sum(self.pause(model_id) for model_id in list(self.running()))

    def _stop(self, model_id: str, how: str, *, keep_part_files: bool) -> bool:
        job = self._jobs.get(model_id.lower())
        if job is None:
            return False
        job.stop = how
        job.keep_part_files = keep_part_files
        job.stopped.set()
        if job.transfer is not None:
            if how == "cancelled":
                job.transfer.cancel()
            else:
                job.transfer.pause()
        return True

    # -- pulling ----------------------------------------------------------------------------

    async def pull(
        self,
        model: ModelDescriptor,
        *,
        connections: int | None = None,
        mirrors: Sequence[str] = (),
        allow_unverified: bool = False,
        on_event: EventCallback | None = None,
        strategy: DownloadStrategy | None = None,
    ) -> InstalledModel:
        """Downloads `model` into the store and returns it once READY.

        A model already READY returns at once. Asked again while running, the same job is
        joined. `mirrors` (tried before the catalog's URLs) are for a model of one file. A
        paused or failed earlier download resumes from its saved state. `strategy` fetches
        this model's files instead of the one registered for their URL scheme (see
        register_strategy). Raises ValueError for a file name that would leave the model's
        folder, DownloadPaused when paused or cancelled, DownloadError (and its kinds) or
        NetworkError when it fails; the part files of a failed transfer are kept to resume.
        """
        installed = self.store.find(model.id)
        if installed is not None and installed.state.is_installed:
            return installed
        _http.require_online(f"download {model.id!r}", model.download_url)
        _check_file_names(model)
        if mirrors and len(model.files) > 1:
            message = (
                f"model {model.id!r} has {len(model.files)} files: mirrors name one file's URL, "
                "so they are for single-file models (the catalog lists each file's own mirrors)"
            )
            raise ValueError(message)
        key = model.id.lower()
        existing = self._jobs.get(key)
        if existing is not None:
            if on_event is not None:
                existing.listeners.append(on_event)
            return await asyncio.shield(existing.future)
        loop = asyncio.get_running_loop()
        job = _Job(model.id, loop.create_future(), strategy=strategy)
        if on_event is not None:
            job.listeners.append(on_event)
        self._jobs[key] = job
        try:
            installed = await self._run(job, model, connections, mirrors, allow_unverified)
        except BaseException as error:
            if not job.future.done():
                if isinstance(error, asyncio.CancelledError):
                    job.future.cancel()  # a future cannot hold a CancelledError
                else:
                    job.future.set_exception(error)
                    job.future.exception()  # retrieved: joiners re-raise it themselves
            raise
        else:
            job.future.set_result(installed)
            return installed
        finally:
            del self._jobs[key]

    async def _run(
        self,
        job: _Job,
        model: ModelDescriptor,
        connections: int | None,
        mirrors: Sequence[str],
        allow_unverified: bool,
    ) -> InstalledModel:
        from ..store._locks import ModelLock

        store = self.store
        self._prepare_record(model)  # pull() returned a model already READY
        loop = asyncio.get_running_loop()
        if self._slots is None or self._slots_loop is not loop:
            # One semaphore per event loop: pull_sync runs a new loop for each call.
            self._slots, self._slots_loop = asyncio.Semaphore(self.max_concurrent), loop
        self._waiting.append(job.model_id)
        self._emit(job, ev.Queued(job.model_id, position=self._position(job)))
        lock = ModelLock(store.root, model.id)
        try:
            try:
                await self._take_slot(job)
                await self._wait_for_policy(job)
                await self._acquire(job, lock)
                installed = store.find(model.id)
                if installed is not None and installed.state.is_installed:
                    return installed  # another process finished it meanwhile
                self._check_stopped(job)
            except DownloadPaused as paused:  # stopped before any transfer began
                await self._stopped(job, model, paused.reason, 0, lock_held=lock.held)
                raise
            return await self._download(job, model, connections, mirrors, allow_unverified)
        finally:
            if lock.held:
                lock.release(unlink=True)
            if job.slot_taken and self._slots is not None:
                self._slots.release()
            if job.model_id in self._waiting:
                self._waiting.remove(job.model_id)

    async def _take_slot(self, job: _Job) -> None:
        """Waits for one of the max_concurrent slots, or for the job to be stopped
        (DownloadPaused)."""
        assert self._slots is not None
        slot = asyncio.ensure_future(self._slots.acquire())
        stopped = asyncio.ensure_future(job.stopped.wait())
        try:
            await asyncio.wait({slot, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            if not slot.done():
                slot.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await slot
        job.slot_taken = slot.done() and not slot.cancelled() and slot.exception() is None
        if job.model_id in self._waiting:
            self._waiting.remove(job.model_id)
        self._check_stopped(job)

    def _position(self, job: _Job) -> int:
        running = len(self._jobs) - len(self._waiting)
        ahead = self._waiting.index(job.model_id) if job.model_id in self._waiting else 0
        return max(0, running + ahead - self.max_concurrent + 1)

    def _prepare_record(self, model: ModelDescriptor) -> None:
        """The model's store record in QUEUED: registered if new, or moved back from where
        an earlier attempt left it (PAUSED, ERROR, DISCOVERED)."""
        from ..store import LifecycleState as S

        store = self.store
        if store.find(model.id) is None:
            with contextlib.suppress(ModelExistsError):  # another process registered it now
                store.register(
                    model.id,
                    name=model.name,
                    category=model.type.value,
                    source=_http.display_url(model.download_url),  # no password at rest
                )
        # Another process pulling the same model may move the record between a read and a
        # write here (the lock comes later), so each step is a compare-and-set.
        store.transition_if(model.id, [S.ERROR], S.DISCOVERED, reason="download again")
        store.transition_if(model.id, [S.DISCOVERED, S.PAUSED], S.QUEUED, reason="download")
        # QUEUED, DOWNLOADING or later: another process is at it, or was and died; which one
        # is known once its lock is ours (see _take_over).

    def _take_over(self, model_id: str, resumed: bool) -> None:
        """With the model's lock held: its record to DOWNLOADING from wherever an earlier
        run (perhaps a process that died) left it."""
        from ..store import LifecycleState as S

        store = self.store
        state = store.get(model_id).state
        # A process that died mid-transfer left DOWNLOADING (its state is saved); one that
        # died between the transfer and READY left one of the later states: the saved state
        # says the bytes are all in and hashed, so going round again costs no transfer.
        unfinished = [S.ERROR, S.DISCOVERED]
        steps = {
            S.DOWNLOADING: [S.PAUSED],
            S.DOWNLOADED: unfinished,
            S.EXTRACTING: unfinished,
            S.EXTRACTED: unfinished,
            S.VALIDATING: unfinished,
            S.ERROR: [S.DISCOVERED],
        }.get(state, [])
        for step in steps:
            store.transition(model_id, step, reason="taking over an unfinished download")
        store.transition(model_id, S.DOWNLOADING, reason="resumed" if resumed else None)

    async def _wait_for_policy(self, job: _Job) -> None:
        if self.policy is None:
            return
        announced = False
        while True:
            if await self._policy_allows():
                return
            if not announced:
                self._emit(job, ev.Queued(job.model_id, reason="held by the network policy"))
                announced = True
            self._check_stopped(job)
            await asyncio.sleep(POLICY_POLL_S)

    async def _acquire(self, job: _Job, lock: Any) -> None:
        """The model's exclusive lock: another process downloading the same model holds it,
        and this one waits for it rather than fetch the same bytes twice."""
        announced = False
        while not lock.acquire(exclusive=True, wait_s=0):
            if not announced:
                reason = "another process is downloading or using this model"
                self._emit(job, ev.Queued(job.model_id, reason=reason))
                announced = True
            self._check_stopped(job)
            await asyncio.sleep(LOCK_POLL_S)

    def _check_stopped(self, job: _Job) -> None:
        if job.stop is not None:
            raise DownloadPaused(job.stop)

    async def _download(
        self,
        job: _Job,
        model: ModelDescriptor,
        connections: int | None,
        mirrors: Sequence[str],
        allow_unverified: bool,
    ) -> InstalledModel:
        from ..store import LifecycleState as S

        store = self.store
        store.download_dir(model.id).mkdir(parents=True, exist_ok=True)
        saved = {item.rel_path: item for item in store.saved_downloads(model.id)}
        files = list(model.files)
        total = _total_size(files)
        resumed = sum(item.bytes_done for item in saved.values())
        started = time.monotonic()
        results: list[tuple[ModelFileSpec, FileResult]] = []
        done_before = 0
        try:
            self._ensure_space(model, files)  # before any byte moves: a failure is recorded
            self._take_over(model.id, bool(resumed))
            if resumed:
                self._emit(job, ev.Resumed(job.model_id, bytes_done=resumed))
            self._emit(
                job,
                ev.Started(
                    job.model_id, files=len(files), total_bytes=total, resumed_bytes=resumed
                ),
            )
            for spec in files:
                result = await self._fetch_file(
                    job, model, spec, saved.get(spec.name), connections, mirrors,
                    allow_unverified, done_before, total,
                )  # fmt: skip
                results.append((spec, result))
                done_before += result.size
        except DownloadPaused as paused:
            await self._stopped(job, model, paused.reason, job.bytes_done)
            raise
        except asyncio.CancelledError:  # the caller's task was cancelled (Ctrl-C): a pause
            await self._stopped(job, model, "paused", job.bytes_done)
            raise
        except BaseException as error:
            await asyncio.to_thread(self._record_failure, model, error)
            self._emit(job, ev.Failed(job.model_id, error=error, message=str(error)))
            raise
        store.transition(model.id, S.DOWNLOADED, reason="all files verified as they landed")
        self._emit(job, ev.Verifying(job.model_id, files=len(results)))
        try:
            installed = await asyncio.to_thread(self._install, model, results)
        except BaseException as error:
            await asyncio.to_thread(self._record_failure, model, error)
            self._emit(job, ev.Failed(job.model_id, error=error, message=str(error)))
            raise
        duration = time.monotonic() - started
        primary = results[0][1]
        fetched = sum(result.fetched_bytes for _, result in results)
        self._emit(
            job,
            ev.Completed(
                job.model_id,
                path=str(installed.path) if hasattr(installed, "path") else "",
                sha256=primary.sha256,
                digest_source=primary.digest_source,
                size_bytes=installed.size_bytes,
                fetched_bytes=fetched,
                duration_s=duration,
                mean_speed_bytes_per_s=fetched / duration if duration > 0 else 0.0,
            ),
        )
        return installed

    def _ensure_space(self, model: ModelDescriptor, files: list[ModelFileSpec]) -> None:
        """Fails before any byte moves when the disk cannot take the rest of the files plus
        the buffer (after what the store's eviction policy may free)."""
        sizes = [spec.size_bytes for spec in files]
        if any(size is None for size in sizes):
            return  # the server's figure is checked when the part file is reserved
        remaining = 0
        for spec in files:
            part = self._part_path(model, spec)
            try:
                allocated = part.stat().st_blocks * 512
            except OSError:
                allocated = 0
            remaining += max(0, (spec.size_bytes or 0) - allocated)
        self.store.ensure_space(
            remaining + self.space_buffer_bytes,
            incoming_owned_bytes=remaining,
            model_id=model.id,
        )

    def _part_path(self, model: ModelDescriptor, spec: ModelFileSpec) -> Path:
        """Where the download of one file of a model is kept until it is installed."""
        return self.store.download_dir(model.id) / f"{spec.name}.part"

    async def _fetch_file(
        self,
        job: _Job,
        model: ModelDescriptor,
        spec: ModelFileSpec,
        saved: Any,
        connections: int | None,
        mirrors: Sequence[str],
        allow_unverified: bool,
        done_before: int,
        total: int | None,
    ) -> FileResult:
        store = self.store
        loop = asyncio.get_running_loop()
        part_path = self._part_path(model, spec)
        state = None
        if saved is not None and part_path.exists():
            with contextlib.suppress(KeyError, TypeError, ValueError):
                state = ResumeState.from_json(saved.state)
        # hf:// as the endpoint's https URL, each on its own: mirrors may mix schemes.
        urls = [_http.resolve_url(url) for url in (*mirrors, spec.url, *spec.mirrors)]
        source = FileSource(
            urls=urls,
            size=spec.size_bytes if not spec.size_approximate else None,
            sha256=spec.sha256,
            piece_size=spec.piece_size,
            piece_sha256=spec.piece_sha256,
            allow_unverified=allow_unverified,
        )
        options = self.options
        if connections is not None:
            options = replace(options, connections=connections)

        def checkpoint(resume: ResumeState) -> None:  # in a transfer thread
            store.save_download(
                model.id, spec.name, url=_http.display_url(resume.url), etag=resume.validator,
                total_bytes=resume.size, bytes_done=resume.done.total, state=resume.to_json(),
            )  # fmt: skip

        def retrying(attempt: int, delay_s: float, reason: str) -> None:  # in a transfer thread
            event = ev.Retrying(
                job.model_id, file=spec.name, attempt=attempt, delay_s=delay_s, reason=reason
            )
            loop.call_soon_threadsafe(self._emit, job, event)

        while True:
            request = TransferRequest(source, part_path, options, state, checkpoint, retrying)
            result = await self._run_transfer(job, spec, request, urls[0], done_before, total)
            if result is not None:
                return result
            # The policy withdrew its permission mid-transfer: the transfer paused (and saved
            # its state); wait for the policy, then carry on from that state.
            await self._wait_for_policy(job)
            saved_now = {item.rel_path: item for item in store.saved_downloads(model.id)}
            state = None
            if spec.name in saved_now:
                with contextlib.suppress(KeyError, TypeError, ValueError):
                    state = ResumeState.from_json(saved_now[spec.name].state)

    async def _run_transfer(
        self,
        job: _Job,
        spec: ModelFileSpec,
        request: TransferRequest,
        url: str,
        done_before: int,
        total: int | None,
    ) -> FileResult | None:
        """Runs one transfer in a worker thread, reporting progress; None when the network
        policy held it (it paused, its state saved)."""
        transfer = (job.strategy or strategy_for(url)).transfer(request)
        job.transfer = transfer
        if job.stop is not None:  # asked for while the transfer was being set up
            transfer.cancel() if job.stop == "cancelled" else transfer.pause()
        worker = asyncio.ensure_future(asyncio.to_thread(transfer.run))
        meter = _Meter()
        held = False
        next_policy_check = time.monotonic() + POLICY_POLL_S
        try:
            while not worker.done():
                await asyncio.wait([worker], timeout=PROGRESS_INTERVAL_S)
                progress = transfer.progress()
                done = done_before + progress.done_bytes
                job.bytes_done = done
                speed, eta = meter.update(done, total)
                self._emit(
                    job,
                    ev.Progress(
                        job.model_id, file=spec.name, bytes_done=done, total_bytes=total,
                        speed_bytes_per_s=speed, eta_s=eta, connections=progress.connections,
                    ),
                )  # fmt: skip
                if self.policy is not None and not held and time.monotonic() >= next_policy_check:
                    next_policy_check = time.monotonic() + POLICY_POLL_S
                    if not await self._policy_allows():
                        held = True
                        transfer.pause()
            try:
                return worker.result()
            except DownloadPaused:
                if held and job.stop is None:
                    reason = "held by the network policy"
                    self._emit(
                        job, ev.Paused(job.model_id, reason=reason, bytes_done=job.bytes_done)
                    )
                    return None
                raise
        except asyncio.CancelledError:
            transfer.pause()  # the task was cancelled (Ctrl-C): stop the threads, keep state
            with contextlib.suppress(BaseException):
                await worker
            raise
        finally:
            job.transfer = None

    async def _policy_allows(self) -> bool:
        if self.policy is None:
            return True
        allowed = self.policy.allows_transfers()
        if inspect.isawaitable(allowed):
            allowed = await allowed
        return bool(allowed)

    async def _stopped(
        self,
        job: _Job,
        model: ModelDescriptor,
        reason: str,
        done: int,
        *,
        lock_held: bool = True,
    ) -> None:
        """A stop asked for: a pause keeps everything (PAUSED), a cancel forgets the model
        unless its part files are to be kept. Without the model's lock (still queued, or
        waiting for another process) the record is left to whoever holds it."""
        if reason == "cancelled":
            await asyncio.to_thread(
                self._forget, model, keep=job.keep_part_files, lock_held=lock_held
            )
            self._emit(job, ev.Cancelled(job.model_id, kept_part_files=job.keep_part_files))
            return
        self._mark_paused(model, reason, lock_held=lock_held)
        self._emit(job, ev.Paused(job.model_id, reason=reason, bytes_done=done))

    def _mark_paused(self, model: ModelDescriptor, reason: str, *, lock_held: bool) -> None:
        from ..store import LifecycleState as S

        store = self.store
        ours = [S.QUEUED, S.DOWNLOADING] if lock_held else [S.QUEUED]
        with contextlib.suppress(Exception):  # another process may have removed it meanwhile
            store.transition_if(model.id, ours, S.PAUSED, reason=reason)

    def _forget(self, model: ModelDescriptor, *, keep: bool, lock_held: bool) -> None:
        """A cancelled download: the record goes; the part files too unless kept."""
        if keep:
            self._mark_paused(model, "cancelled, part files kept", lock_held=lock_held)
            return
        store = self.store
        with contextlib.suppress(ModelInUseError):  # another process is at it: leave it be
            store._remove(
                model.id, kind="cancelled", reason="download cancelled", wait_s=0,
                lock_held=lock_held,
            )  # fmt: skip

    def _record_failure(self, model: ModelDescriptor, error: BaseException) -> None:
        """The record goes to ERROR with the reason; part files stay to resume from, unless
        their bytes proved not to be the file."""
        from ..store import LifecycleState as S

        store = self.store
        if isinstance(error, DigestMismatchError):  # bytes that are not the file: not kept
            store.clear_downloads(model.id)
            store._delete_part_files(model.id)
        reason = f"{type(error).__name__}: {error}"[:500]
        failing = (S.QUEUED, S.DOWNLOADING, S.PAUSED, S.DOWNLOADED, S.EXTRACTING, S.EXTRACTED)
        with contextlib.suppress(Exception):  # another process may have removed it meanwhile
            store.transition_if(model.id, failing, S.ERROR, reason=reason)

    def _install(
        self, model: ModelDescriptor, results: list[tuple[ModelFileSpec, FileResult]]
    ) -> InstalledModel:
        """The store's install, from the part files (moved, not copied; their digests were
        taken as they landed); an archive is unpacked first and its files installed."""
        from ..store import FileSpec, Placement
        from ..store._install import install_model
        from ..store._policy import Priority

        archives = [result.path for spec, result in results if is_archive(spec.name)]
        specs = self._unpack(model, archives) if archives else []
        specs += [
            FileSpec(result.path, spec.name, spec.role, result.sha256, verified=True)
            for spec, result in results
            if not is_archive(spec.name)
        ]
        installed = install_model(
            self.store,
            model.id,
            specs,
            placement=Placement.MOVE,
            name=model.name,
            category=model.type.value,
            source=_http.display_url(model.download_url),  # no password at rest
            priority=Priority.NORMAL,
            pinned=False,
            metadata={"digest_source": results[0][1].digest_source},
            on_progress=None,
            lock_held=True,
        )
        self.store.clear_downloads(model.id)
        self.store._delete_part_files(model.id)  # an unpacked archive, and the folder
        return installed

    def _unpack(self, model: ModelDescriptor, archives: list[Path]) -> list[Any]:
        """DOWNLOADED -> EXTRACTING -> EXTRACTED: the archives' files, unpacked safely (each
        into its own folder; a name two archives share is refused), as files to install (the
        first GGUF is the model; the install hashes them)."""
        from ..store import FileSpec
        from ..store import LifecycleState as S
        from ..store._files import remove_tree

        store = self.store
        store.transition(model.id, S.EXTRACTING)
        root = store.download_dir(model.id) / "unpacked"
        if root.exists():  # what an earlier, interrupted unpacking left
            remove_tree(root)
        located: dict[str, Path] = {}
        taken: set[str] = set()  # the names so far, lower-cased: the store ignores case
        try:
            for index, archive in enumerate(archives):
                folder = root / str(index)
                for item in extract(archive, folder):
                    if item.rel_path.lower() in taken:
                        message = f"{item.rel_path!r} is in more than one of the model's archives"
                        raise ArchiveError(message)
                    taken.add(item.rel_path.lower())
                    located[item.rel_path] = folder / item.rel_path
        except OSError as error:
            if error.errno not in DISK_FULL:
                raise
            # What was unpacked goes, to give the space back; the archives stay, complete
            # and verified, so the next pull unpacks them again without fetching a byte.
            with contextlib.suppress(OSError):
                remove_tree(root)
            message = (
                f"the disk is full while unpacking {model.id!r}'s archive into {root}: free "
                "some space and pull it again; the downloaded archive is kept and is not "
                "fetched again"
            )
            needed = sum(unpacked_size(archive) or 0 for archive in archives)
            available = free_bytes(root.parent)
            raise InsufficientSpaceError(
                message, model_id=model.id, bytes_needed=needed, bytes_available=available
            ) from error
        store.transition(model.id, S.EXTRACTED, reason=f"{len(located)} files")
        names = list(located)
        return [
            FileSpec(path, name, _role_in_archive(name, names)) for name, path in located.items()
        ]


def _check_file_names(model: ModelDescriptor) -> None:
    """The catalog refuses a file name that would leave the model's folder; a descriptor
    built by hand never met that check, and its names become part-file paths."""
    from ..catalog._model import SAFE_FILE_NAME_RULE, is_safe_file_name

    for spec in model.files:
        if not is_safe_file_name(spec.name):
            message = (
                f"model {model.id!r}: file name {spec.name!r} is refused: {SAFE_FILE_NAME_RULE}"
            )
            raise ValueError(message)


_SPLIT_SHARD = re.compile(r"-\d{5}-of-\d{5}\.gguf$")


def _role_in_archive(name: str, names: list[str]) -> str:
    """The model is the first GGUF file (the first shard of a split one); the other shards
    are shards, a multimodal projector (mmproj) a projector, anything else extra."""
    lower = name.lower()
    if not lower.endswith(".gguf"):
        return "extra"
    if "mmproj" in lower:
        return "projector"
    weights = sorted(
        other
        for other in names
        if other.lower().endswith(".gguf") and "mmproj" not in other.lower()
    )
    if name == weights[0]:
        return "model"
    return "shard" if _SPLIT_SHARD.search(lower) else "extra"


def _total_size(files: Sequence[ModelFileSpec]) -> int | None:
    sizes = [spec.size_bytes for spec in files]
    if any(size is None for size in sizes):
        return None
    return sum(size for size in sizes if size is not None)


class _Meter:
    """Speed over the last few seconds (a moving window), and the time left at that speed."""

    def __init__(self, window_s: float = 3.0) -> None:
        self._samples: list[tuple[float, int]] = []
        self._window_s = window_s

    def update(self, done: int, total: int | None) -> tuple[float, float | None]:
        now = time.monotonic()
        self._samples.append((now, done))
        while len(self._samples) > 2 and now - self._samples[0][0] > self._window_s:
            self._samples.pop(0)
        first_time, first_done = self._samples[0]
        elapsed = now - first_time
        speed = (done - first_done) / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / speed if total is not None and speed > 0 else None
        return speed, eta
