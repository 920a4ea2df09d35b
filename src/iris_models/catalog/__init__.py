"""The model catalog: which models exist, where to get their files, what they need.

>>> from iris_models import catalog
>>> models = catalog.load_catalog()              # bundled + IRIS_MODELS_CATALOG
>>> [m.id for m in models.models(type="llm")]    # doctest: +SKIP

Catalogs are JSON in the original specification's schema (``models.schema.json`` ships
beside the bundled ``models.json``); :func:`read_catalog` validates one file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import CatalogConflictError, CatalogError, UnknownModelError
from ._catalog import (
    BUNDLED,
    DEFAULT_MAX_AGE_S,
    ENV_ALLOW_HTTP,
    ENV_CATALOG,
    Catalog,
    SourceReport,
    catalog_sources_from_environment,
    load_catalog,
    read_catalog,
)
from ._model import (
    Category,
    DeviceRequirements,
    ModelDescriptor,
    ModelFileSpec,
    ModelType,
    Performance,
    parse_parameter_count,
)
from ._schema import load_schema

if TYPE_CHECKING:
    from ._remote import RemoteStatus


def __getattr__(name: str) -> Any:
    # RemoteStatus lives with the HTTP code, imported only when a remote catalog is used.
    if name == "RemoteStatus":
        from ._remote import RemoteStatus

        return RemoteStatus
    message = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(message)


__all__ = [
    "BUNDLED",
    "DEFAULT_MAX_AGE_S",
    "ENV_ALLOW_HTTP",
    "ENV_CATALOG",
    "Catalog",
    "CatalogConflictError",
    "CatalogError",
    "Category",
    "DeviceRequirements",
    "ModelDescriptor",
    "ModelFileSpec",
    "ModelType",
    "Performance",
    "RemoteStatus",
    "SourceReport",
    "UnknownModelError",
    "catalog_sources_from_environment",
    "load_catalog",
    "load_schema",
    "parse_parameter_count",
    "read_catalog",
]
