"""The Registry: the one object an application holds. It fronts the catalog (what models
exist), the device profile, recommendations, and the model store (what is installed)."""

from __future__ import annotations

import contextlib
import enum
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._paths import cache_root, store_root

if TYPE_CHECKING:
    import httpx
    from typing_extensions import Self

    from .catalog import Catalog, ModelDescriptor, ModelType
    from .device import DeviceProfile
    from .download import Downloader, DownloadEvent, DownloadStrategy, PendingDownload
    from .recommend import Recommendation
    from .shape import ModelShape
    from .store import (
        CachePolicy,
        FsckReport,
        GcOutcome,
        ImportReport,
        InstalledModel,
        ModelRepository,
        Placement,
        Store,
    )
    from .verify import VerifyResult

__all__ = ["STORAGE_BUFFER_BYTES", "Registry", "ValidationIssue", "ValidationResult"]

STORAGE_BUFFER_BYTES = 500 * 1024 * 1024  # the specification's headroom above a model's size


class ValidationIssue(str, enum.Enum):
    DEVICE_INCOMPATIBLE = "DEVICE_INCOMPATIBLE"
    INSUFFICIENT_STORAGE = "INSUFFICIENT_STORAGE"
    URL_INACCESSIBLE = "URL_INACCESSIBLE"
    VALIDATION_ERROR = "VALIDATION_ERROR"


@dataclass(frozen=True)
class ValidationResult:
    """Whether a catalog model can be downloaded and run here; every problem found, each
    with its issue code, and the checks that were passed or skipped in ``notes``."""

    model_id: str
    valid: bool
    reason: str
    issues: tuple[ValidationIssue, ...] = ()
    notes: tuple[str, ...] = ()


class Registry:
    """Models on this device: ``Registry(home=None)`` uses the store at ``home`` (else
    IRIS_MODELS_HOME, else the user data folder), opened on first use.

    catalogs: catalog files or URLs merged over the bundled catalog and IRIS_MODELS_CATALOG
        (see :func:`iris_models.catalog.load_catalog`); loaded on first use. Or pass a
        loaded ``catalog``.
    device: the profile to plan for; by default IRIS_MODELS_DEVICE_PROFILE, else this
        device, probed on first use.
    """

    def __init__(
        self,
        home: str | os.PathLike[str] | None = None,
        *,
        store: Store | None = None,
        device: DeviceProfile | None = None,
        policy: CachePolicy | None = None,
        catalogs: Sequence[str | os.PathLike[str]] = (),
        catalog: Catalog | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        client: httpx.Client | None = None,
    ):
        self._home = home
        self._policy = policy
        self._store = store
        if store is not None and policy is not None:
            store.set_policy(policy)
        self._repository: ModelRepository | None = None
        self._device = device
        self._catalog_sources = tuple(catalogs)
        self._catalog = catalog
        self._cache_dir = cache_dir
        self._client = client
        self._downloader: Downloader | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            from .store import Store  # on first use: opening a Registry for the catalog is cheap

            self._store = Store(self._home, policy=self._policy)
        return self._store

    @property
    def repository(self) -> ModelRepository:
        if self._repository is None:
            from .store import ModelRepository

            self._repository = ModelRepository(self.store)
        return self._repository

    # -- the catalog ----------------------------------------------------------------------

    @property
    def catalog(self) -> Catalog:
        """The merged catalog, loaded on first use."""
        if self._catalog is None:
            from .catalog import load_catalog

            self._catalog = load_catalog(
                self._catalog_sources, cache_dir=self._cache_dir, client=self._client
            )
        return self._catalog

    def refresh_catalog(self) -> Catalog:
        """Loads the catalogs again, revalidating remote ones now (a failed fetch keeps the
        cached copy); see ``catalog.sources`` for what each source gave."""
        from .catalog import load_catalog

        self._catalog = load_catalog(
            self._catalog_sources, cache_dir=self._cache_dir, client=self._client, refresh=True
        )
        return self._catalog

    def models(
        self,
        type: ModelType | str | None = None,
        *,
        capability: str | None = None,
        query: str | None = None,
    ) -> list[ModelDescriptor]:
        """Catalog models, filtered by type (llm, embedding, safety), a capability, and the
        words of a query."""
        return self.catalog.models(type, capability=capability, query=query)

    def get(self, model_id: str) -> ModelDescriptor:
        """The catalog's entry for `model_id` (UnknownModelError if no catalog has it)."""
        return self.catalog.get(model_id)

    # -- recommendations ------------------------------------------------------------------

    def model_shape(
        self, model: ModelDescriptor, *, fetch: bool = False
    ) -> tuple[ModelShape, str] | None:
        """What is known of `model`'s GGUF header, and from where: the installed file,
        then a cached remote header, then (``fetch=True``) the remote header itself, then
        the catalog's own ``gguf`` block."""
        from .recommend import cached_shape, fetch_shape

        installed = self._installed_shape(model.id)
        if installed is not None:
            return installed, "installed"
        cache = cache_root(self._cache_dir)
        cached = cached_shape(model, cache)
        if cached is not None:
            return cached, "header-cache"
        if fetch:
            return fetch_shape(model, cache, client=self._client), "remote-header"
        if model.shape is not None:
            return model.shape, "catalog"
        return None

    def _installed_shape(self, model_id: str) -> ModelShape | None:
        from . import gguf
        from .errors import GGUFError, StoreError
        from .shape import ModelShape

        try:
            path = self.store.path(model_id)
        except StoreError:
            return None
        try:
            with gguf.open(path) as model:
                return ModelShape.from_gguf(model)
        except (GGUFError, OSError, ValueError):
            return None

    def recommend(
        self,
        *,
        context_length: int = 4096,
        type: ModelType | str | None = None,
        include_incompatible: bool = False,
        fetch_headers: bool = False,
        device: DeviceProfile | None = None,
    ) -> list[Recommendation]:
        """Catalog models ranked for this device at `context_length` tokens, best first,
        each with its category, fit, memory and speed estimates and reasons.

        fetch_headers: read the GGUF header of each model whose shape is not yet known
            (HTTP range requests; a few MB each, cached), so its memory need is computed,
            not taken from the catalog's RAM figures. Failures leave that model as it was.
        """
        from .errors import GGUFError, NetworkError
        from .recommend import recommend

        models = self.models(type)
        shapes: dict[str, tuple[ModelShape, str]] = {}
        for model in models:
            try:
                known = self.model_shape(model, fetch=fetch_headers)
            except (NetworkError, GGUFError, ValueError):
                known = self.model_shape(model)
            if known is not None:
                shapes[model.id] = known
        return recommend(
            models,
            device if device is not None else self.device,
            context_length=context_length,
            shapes=shapes,
            include_incompatible=include_incompatible,
        )

    def validate(self, model_id: str, *, check_url: bool = True) -> ValidationResult:
        """The specification's pre-download check: the device can run the model, the store
        has room for it plus 500 MB, and (when online and `check_url`) its URL answers."""
        from . import _http
        from .recommend import assess

        model = self.get(model_id)
        issues: list[ValidationIssue] = []
        problems: list[str] = []
        notes: list[str] = []
        known = self.model_shape(model)
        shape, source = known if known is not None else (None, None)
        assessment = assess(model, self.device, shape=shape, shape_source=source)
        if not assessment.compatible:
            issues.append(ValidationIssue.DEVICE_INCOMPATIBLE)
            problems.append("not compatible with this device: " + "; ".join(assessment.reasons))
        size = model.total_size_bytes
        free = _free_bytes(self._store.root if self._store is not None else store_root(self._home))
        if size is None:
            notes.append("storage not checked: the catalog gives no size")
        elif free < size + STORAGE_BUFFER_BYTES:
            issues.append(ValidationIssue.INSUFFICIENT_STORAGE)
            problems.append(
                f"insufficient storage space: need {_mb(size)} plus a {_mb(STORAGE_BUFFER_BYTES)}"
                f" buffer, {_mb(free)} available"
            )
        else:
            notes.append(f"storage: {_mb(free)} free for {_mb(size)}")
        if not check_url:
            notes.append("URL not checked (check_url=False)")
        elif _http.is_offline():
            notes.append("URL not checked: offline mode")
        else:
            problem = self._url_problem(model)
            if problem:
                issues.append(ValidationIssue.URL_INACCESSIBLE)
                problems.append(problem)
            else:
                notes.append("URL answers")
        if problems:
            return ValidationResult(
                model.id, False, "; ".join(problems), tuple(issues), tuple(notes)
            )
        reason = "model is compatible and ready for download"
        return ValidationResult(model.id, True, reason, (), tuple(notes))

    def _url_problem(self, model: ModelDescriptor) -> str | None:
        import httpx

        from . import _http
        from .errors import NetworkError

        client = self._client if self._client is not None else _http.make_client(timeout_s=10)
        try:
            for spec in model.files:
                url = _http.resolve_url(spec.url)
                if url.startswith("file://"):
                    continue
                try:
                    response = client.head(url, headers=_http.request_headers(url))
                    _http.check_response(response, url)
                except httpx.HTTPError as error:
                    return f"download URL not accessible: {_http.network_error(error, url)}"
                except NetworkError as error:
                    return f"download URL not accessible: {error}"
        finally:
            if self._client is None:
                client.close()
        return None

    # -- the store ------------------------------------------------------------------------

    @property
    def device(self) -> DeviceProfile:
        """This device's profile (IRIS_MODELS_DEVICE_PROFILE, or probed once and cached)."""
        if self._device is None:
            from . import device

            self._device = device.current()
        return self._device

    # -- downloads --------------------------------------------------------------------------

    @property
    def downloader(self) -> Downloader:
        """The download engine for this registry's store (created on first use); set its
        limits (``max_concurrent``, ``options``, a ``policy``) before pulling."""
        if self._downloader is None:
            from .download import Downloader

            self._downloader = Downloader(self.store)
        return self._downloader

    async def pull(
        self,
        model_id: str,
        *,
        connections: int | None = None,
        mirrors: Sequence[str] = (),
        allow_unverified: bool = False,
        on_event: Callable[[DownloadEvent], Any] | None = None,
        strategy: DownloadStrategy | None = None,
    ) -> InstalledModel:
        """Downloads a catalog model into the store, verified as it lands; returns it READY.

        Resumes what an earlier run left; joins a download of the same model already under
        way. `mirrors` are tried before the catalog's URLs; `strategy` fetches this model's
        files instead of the one registered for their URL scheme. Raises UnknownModelError for an
        id the catalog lacks, DownloadPaused when paused or cancelled, IntegrityError when no
        digest vouches for the file (unless `allow_unverified`), NetworkError and
        DownloadError for failed transfers (the part files stay to resume from).
        """
        model = self.get(model_id)
        return await self.downloader.pull(
            model,
            connections=connections,
            mirrors=mirrors,
            allow_unverified=allow_unverified,
            on_event=on_event,
            strategy=strategy,
        )

    def pending_downloads(self) -> list[PendingDownload]:
        """The store's unfinished downloads: queued, under way, paused, or failed with bytes
        kept (see iris_models.download.PendingDownload)."""
        from .download import pending_downloads

        return pending_downloads(self.store)

    async def resume_downloads(
        self, *, on_event: Callable[[DownloadEvent], Any] | None = None
    ) -> dict[str, InstalledModel | BaseException]:
        """Pulls every resumable pending download (a later process picking up the queue),
        at most ``downloader.max_concurrent`` at once; model id -> the READY model, or what
        stopped it. Models no catalog knows any more are reported as UnknownModelError."""
        import asyncio

        ids = [pending.model_id for pending in self.pending_downloads() if pending.resumable]
        outcomes = await asyncio.gather(
            *(self.pull(model_id, on_event=on_event) for model_id in ids), return_exceptions=True
        )
        return dict(zip(ids, outcomes, strict=True))

    def pull_sync(
        self,
        model_id: str,
        *,
        connections: int | None = None,
        mirrors: Sequence[str] = (),
        allow_unverified: bool = False,
        on_event: Callable[[DownloadEvent], Any] | None = None,
        strategy: DownloadStrategy | None = None,
    ) -> InstalledModel:
        """:meth:`pull` for code without an event loop (it runs one)."""
        import asyncio

        return asyncio.run(
            self.pull(
                model_id,
                connections=connections,
                mirrors=mirrors,
                allow_unverified=allow_unverified,
                on_event=on_event,
                strategy=strategy,
            )
        )

    def installed(self) -> list[InstalledModel]:
        """Models that are installed and verified."""
        return self.store.list_models(installed_only=True)

    def installed_model(self, model_id: str) -> InstalledModel:
        """The store's record of an installed (or known) model."""
        return self.store.get(model_id)

    def path(self, model_id: str) -> Path:
        return self.store.path(model_id)

    @contextlib.contextmanager
    def use(self, model_id: str) -> Iterator[Path]:
        """``with reg.use(id) as path:`` protected from removal and eviction meanwhile."""
        with self.store.use(model_id) as path:
            yield path

    def remove(self, model_id: str) -> int:
        return self.store.remove(model_id)

    def gc(self, *, dry_run: bool = False, aggressive: bool | None = None) -> GcOutcome:
        return self.store.gc(dry_run=dry_run, aggressive=aggressive)

    def import_path(
        self,
        path: str | os.PathLike[str],
        *,
        placement: Placement | str = "reference",
        model_id: str | None = None,
    ) -> ImportReport:
        return self.store.import_path(path, placement=placement, model_id=model_id)

    def verify(self, model_id: str) -> list[VerifyResult]:
        """Hashes every file of an installed model again and compares it with the digest
        taken at install; one result per file (``ok`` False on a mismatch)."""
        from .verify import verify

        with self.store.use(model_id):  # installed, and kept from removal while it is read
            model = self.store.get(model_id)
            return [verify(f.path, f.sha256) for f in model.files if f.sha256 is not None]

    def fsck(self, *, repair: bool = False, deep: bool = False) -> FsckReport:
        return self.store.fsck(repair=repair, deep=deep)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _free_bytes(root: Path) -> int:
    """Free bytes where the store lives (or would: its nearest existing parent)."""
    path = root
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def _mb(size: int) -> str:
    return f"{size / 1e6:,.0f} MB"
