"""The merged catalog: the bundled models.json, then the catalogs IRIS_MODELS_CATALOG names,
then those passed in, each later source replacing an earlier one's entry with the same id.
A later source that gives the same file of the same id a different digest is an error."""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .._gc import collector_paused
from .._paths import cache_root
from ..errors import CatalogConflictError, CatalogError, UnknownModelError
from ._model import Category, ModelDescriptor, ModelType

if TYPE_CHECKING:
    import httpx

    from ._remote import RemoteStatus

# How long a fetched remote catalog is used before it is revalidated.
DEFAULT_MAX_AGE_S = 24 * 3600.0

__all__ = [
    "BUNDLED",
    "ENV_ALLOW_HTTP",
    "ENV_CATALOG",
    "Catalog",
    "SourceReport",
    "catalog_sources_from_environment",
    "load_catalog",
    "read_catalog",
]

ENV_CATALOG = "IRIS_MODELS_CATALOG"
ENV_ALLOW_HTTP = "IRIS_MODELS_ALLOW_HTTP"
BUNDLED = "bundled"


@dataclass(frozen=True)
class SourceReport:
    """One source of the merged catalog and what it gave."""

    source: str
    models: int
    remote: RemoteStatus | None = None


class Catalog:
    """Models on offer, by id, with the sources they came from.

    Build one with :func:`load_catalog`; ``warnings`` says which remote sources were
    served from a cache or left out, and why.
    """

    def __init__(
        self,
        models: Mapping[str, ModelDescriptor],
        categories: Mapping[ModelType, Category],
        sources: Sequence[SourceReport] = (),
    ):
        self._models = dict(models)
        self._by_key = {model_id.lower(): model for model_id, model in self._models.items()}
        self.categories = dict(categories)
        self.sources = tuple(sources)

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(
            f"catalog {report.source}: {report.remote.detail}"
            for report in self.sources
            if report.remote is not None and not report.remote.ok
        )

    def __len__(self) -> int:
        return len(self._models)

    def __iter__(self) -> Iterator[ModelDescriptor]:
        return iter(self._models.values())

    def __contains__(self, model_id: object) -> bool:
        return isinstance(model_id, str) and model_id.lower() in self._by_key

    def models(
        self,
        type: ModelType | str | None = None,
        *,
        capability: str | None = None,
        query: str | None = None,
    ) -> list[ModelDescriptor]:
        """Models in catalog order, filtered by type, capability and the words of `query`."""
        wanted = ModelType(type) if type is not None else None
        return [
            model
            for model in self._models.values()
            if (wanted is None or model.type is wanted)
            and (capability is None or capability in model.capabilities)
            and (query is None or model.matches(query))
        ]

    def get(self, model_id: str) -> ModelDescriptor:
        model = self._by_key.get(model_id.lower())
        if model is not None:
            return model
        import difflib  # here: only a miss needs it, and every start-up would pay for it

        close = difflib.get_close_matches(model_id, list(self._models), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        message = (
            f"no catalog describes model {model_id!r}{hint} (`iris-models list` shows the "
            "catalog; --catalog FILE adds one)"
        )
        raise UnknownModelError(message, model_id=model_id)


def _allow_http(allow_http: bool | None) -> bool:
    if allow_http is not None:
        return allow_http
    return os.environ.get(ENV_ALLOW_HTTP, "").strip().lower() in ("1", "true", "yes", "on")


def _is_url(source: str) -> bool:
    return source.startswith(("https://", "http://"))


def _is_bare_host_url(source: str) -> bool:
    """``http://host`` with nothing after the host yet: a following ``:8080/...`` is its port."""
    return _is_url(source) and "/" not in source.split("://", 1)[1]


def catalog_sources_from_environment() -> list[str]:
    """The paths and URLs IRIS_MODELS_CATALOG names, separated by the OS path separator
    (``:`` on POSIX; a URL's own ``://`` is kept whole)."""
    value = os.environ.get(ENV_CATALOG, "")
    if not value.strip():
        return []
    if os.pathsep != ":":
        return [part for part in value.split(os.pathsep) if part.strip()]
    sources: list[str] = []
    for part in value.split(":"):
        if sources and part.startswith("//") and sources[-1] in ("http", "https"):
            sources[-1] = f"{sources[-1]}:{part}"  # "https" + "//host/x.json"
        elif sources and _is_bare_host_url(sources[-1]) and part[:1].isdigit():
            sources[-1] = f"{sources[-1]}:{part}"  # a port: "http://host" + "8080/x.json"
        else:
            sources.append(part)
    return [source for source in sources if source.strip()]


def read_catalog(
    source: str | os.PathLike[str], *, allow_http: bool | None = None
) -> tuple[list[ModelDescriptor], dict[ModelType, Category]]:
    """The models and categories of one catalog file, validated (``catalog validate``)."""
    name = os.fspath(source)
    try:
        data = Path(name).read_bytes()
    except OSError as error:
        message = f"cannot read catalog {name!r}: {error.strerror or error}"
        raise CatalogError(message, source=name) from None
    # Here, not at the top: a process that reads only the bundled catalog never needs msgspec.
    from ._build import descriptors
    from ._validate import validated_catalog

    with collector_paused():
        catalog = validated_catalog(data, name, allow_http=_allow_http(allow_http))
        return descriptors(catalog, name)


def _bundled() -> tuple[list[ModelDescriptor], dict[ModelType, Category]]:
    """The bundled catalog: compiled (see _compile.py) while models.json is the file it was
    compiled from, else read and checked as any other catalog."""
    data = (Path(__file__).parent / "models.json").read_bytes()  # importlib.resources: +30 ms
    from . import _bundled as compiled

    if len(data) == compiled.SOURCE_SIZE and zlib.crc32(data) == compiled.SOURCE_CRC32:
        return list(compiled.MODELS), dict(compiled.CATEGORIES)
    from ._build import descriptors
    from ._validate import validated_catalog

    return descriptors(validated_catalog(data, BUNDLED), BUNDLED)


def _merge(merged: dict[str, ModelDescriptor], models: Sequence[ModelDescriptor]) -> None:
    by_key = {model_id.lower(): model_id for model_id in merged}
    for model in models:
        earlier_id = by_key.get(model.id.lower())
        if earlier_id is not None:
            _check_digests(merged.pop(earlier_id), model)
        merged[model.id] = model
        by_key[model.id.lower()] = model.id


def _check_digests(earlier: ModelDescriptor, later: ModelDescriptor) -> None:
    known = {spec.name: spec.sha256 for spec in earlier.files if spec.sha256}
    for spec in later.files:
        digest = known.get(spec.name)
        if digest and spec.sha256 and digest != spec.sha256:
            message = (
                f"catalogs disagree on model {later.id!r}: file {spec.name!r} has digest "
                f"{digest} in {earlier.source} but {spec.sha256} in {later.source}; fix or "
                "drop one of the two catalogs"
            )
            raise CatalogConflictError(message, source=later.source, rule="same-digest")


def load_catalog(
    sources: Sequence[str | os.PathLike[str]] = (),
    *,
    bundled: bool = True,
    environment: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
    max_age_s: float = DEFAULT_MAX_AGE_S,
    refresh: bool = False,
    allow_http: bool | None = None,
    client: httpx.Client | None = None,
) -> Catalog:
    """The merged catalog.

    Precedence, lowest first: the bundled catalog (``bundled=False`` leaves it out), the
    paths and URLs in IRIS_MODELS_CATALOG (``environment=False`` ignores it), then
    `sources` in order. A file that cannot be read or is invalid raises CatalogError; a
    remote URL that cannot be fetched falls back to its cached copy, or is left out with a
    warning (see :attr:`Catalog.warnings`). ``refresh=True`` revalidates remote catalogs
    even inside their validity window (``max_age_s``, 24 h by default).
    """
    permit_http = _allow_http(allow_http)
    every = [str(s) for s in (catalog_sources_from_environment() if environment else [])]
    every += [os.fspath(source) for source in sources]
    merged: dict[str, ModelDescriptor] = {}
    categories: dict[ModelType, Category] = {}
    reports: list[SourceReport] = []
    if bundled:
        models, found = _bundled()
        _merge(merged, models)
        categories.update(found)
        reports.append(SourceReport(BUNDLED, len(models)))
    for source in every:
        status: RemoteStatus | None = None
        if _is_url(source):
            if source.startswith("http://") and not permit_http:
                message = (
                    f"catalog URL {source!r} is not HTTPS; allow plain HTTP with "
                    f"{ENV_ALLOW_HTTP}=1 (or allow_http=True) for a local server"
                )
                raise CatalogError(message, source=source, rule="https-only")
            from ._remote import load_remote  # here: a local-only start-up never needs HTTP

            remote, status = load_remote(
                source,
                cache_dir=cache_root(cache_dir),
                max_age_s=max_age_s,
                force=refresh,
                allow_http=permit_http,
                client=client,
            )
            if remote is None:
                reports.append(SourceReport(source, 0, status))
                continue
            from ._build import descriptors

            with collector_paused():
                models, found = descriptors(remote, source)
        else:
            models, found = read_catalog(source, allow_http=permit_http)
        _merge(merged, models)
        categories.update(found)
        reports.append(SourceReport(source, len(models), status))
    return Catalog(merged, categories, reports)
