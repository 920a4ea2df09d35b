"""The local model store: a SQLite database and a folder per model, with a lifecycle, use
leases, usage statistics, cache policies with eviction plans, fsck and import.

    from iris_models.store import Store

    store = Store()                          # IRIS_MODELS_HOME or the user data folder
    store.install("my-model", ["~/Downloads/model.gguf"], placement="move")
    with store.use("my-model") as path:      # protected from removal and eviction
        ...
    print(store.plan_eviction().to_dict())   # what cleanup would do, and why
"""

from __future__ import annotations

from ._cleanup import EvictionResult, GcOutcome, PressureReport
from ._eviction import Eviction, EvictionPlan, Leftover, SpaceNeed
from ._fsck import FsckIssue, FsckReport
from ._ids import derive_model_id, validate_model_id
from ._import import ImportReport, ImportSkip
from ._lifecycle import (
    TRANSITIONS,
    LifecycleObserver,
    LifecycleState,
    StateChange,
    check_transition,
)
from ._policy import CachePolicy, EvictionPolicy, Priority, parse_size
from ._records import InstalledModel, ModelFile, ModelStats, StoreEvent, StoreStats
from ._repository import ModelRepository
from ._store import FileSpec, Placement, Store

__all__ = [
    "TRANSITIONS",
    "CachePolicy",
    "Eviction",
    "EvictionPlan",
    "EvictionPolicy",
    "EvictionResult",
    "FileSpec",
    "FsckIssue",
    "FsckReport",
    "GcOutcome",
    "ImportReport",
    "ImportSkip",
    "InstalledModel",
    "Leftover",
    "LifecycleObserver",
    "LifecycleState",
    "ModelFile",
    "ModelRepository",
    "ModelStats",
    "Placement",
    "PressureReport",
    "Priority",
    "SpaceNeed",
    "StateChange",
    "Store",
    "StoreEvent",
    "StoreStats",
    "check_transition",
    "derive_model_id",
    "parse_size",
    "validate_model_id",
]
