"""Recommendations that know what a model needs on this device: memory at a context length
from the model's GGUF shape, decode speed from a bandwidth roofline, and the original
specification's compatibility score and categories, each with its reasons.

>>> from iris_models import catalog, device, recommend
>>> models = catalog.load_catalog().models()
>>> best = recommend.recommend(models, device.load_profile("raspberry-pi-5"))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .._gc import collector_paused
from ..catalog import ModelDescriptor
from ..device import DeviceProfile
from ..shape import ModelShape
from ._assess import (
    DEFAULT_CONTEXT,
    Basis,
    Category,
    DeviceFacts,
    Fit,
    RankKey,
    Recommendation,
    assess,
    assess_on,
    in_rank_order,
    memory_budget,
    rank,
)
from ._backends import available_backends, optimal_backend
from ._headers import RemoteHeader, cached_shape, fetch_header, fetch_shape
from ._memory import MemoryEstimate, estimate_memory, kv_cache_bytes
from ._speed import SpeedEstimate, estimate_speed

__all__ = [
    "DEFAULT_CONTEXT",
    "Basis",
    "Category",
    "DeviceFacts",
    "Fit",
    "MemoryEstimate",
    "ModelShape",
    "Recommendation",
    "RemoteHeader",
    "SpeedEstimate",
    "assess",
    "available_backends",
    "cached_shape",
    "estimate_memory",
    "estimate_speed",
    "fetch_header",
    "fetch_shape",
    "kv_cache_bytes",
    "memory_budget",
    "optimal_backend",
    "rank",
    "recommend",
]


_NO_SHAPE: tuple[None, None] = (None, None)


def recommend(
    models: Iterable[ModelDescriptor],
    device: DeviceProfile,
    *,
    context_length: int = DEFAULT_CONTEXT,
    shapes: Mapping[str, tuple[ModelShape, str]] | None = None,
    include_incompatible: bool = False,
) -> list[Recommendation]:
    """Every model assessed on `device`, best first (see :func:`rank`).

    shapes: model id -> (shape, where it came from) for models whose header is known
        beyond the catalog (installed files, fetched headers).
    include_incompatible: keep models that cannot run here (the specification drops them).
    """
    known = shapes or {}
    basis = Basis(DeviceFacts.of(device), context_length)
    assessed: list[Recommendation] = []
    keys: list[RankKey] = []
    with collector_paused():
        for model in models:
            # No lookup without a mapping: hashing every id reads 10,000 strings for nothing.
            shape, source = known.get(model.id, _NO_SHAPE) if known else _NO_SHAPE
            recommendation = assess_on(model, basis, shape, source, keys=keys)
            if recommendation.compatible or include_incompatible:
                assessed.append(recommendation)
            else:
                del keys[-1]  # the key assess_on took for it
        ranked = in_rank_order(assessed, keys)
        keys.clear()  # its tuples go now, before the collector's next pass has to walk them
    return ranked
