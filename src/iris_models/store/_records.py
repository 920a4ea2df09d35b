"""What the store hands out: installed models and their files, events from the log, and
storage statistics. All frozen values, safe to keep after the store changes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._lifecycle import LifecycleState
from ._policy import CachePolicy, Priority

__all__ = [
    "InstalledModel",
    "ModelFile",
    "ModelStats",
    "StoreEvent",
    "StoreStats",
]


@dataclass(frozen=True)
class ModelFile:
    """One file of a model: the GGUF itself, a split shard, a projector, or another file."""

    rel_path: str
    """Where it sits under the model's folder (its name, for a file adopted by reference)."""
    role: str
    size_bytes: int
    sha256: str | None
    """``sha256:<hex>``, checked before the model became READY."""
    seal: str | None
    location: str
    """Where the bytes are: under the store, or the original file for a reference."""
    external: bool
    """True for a file adopted by reference: the store does not own it."""
    mtime_ns: int | None = None
    """The file's modification time when its digest was taken."""

    @property
    def path(self) -> Path:
        # Made on demand: building 10,000 Path objects would double the cost of a listing.
        return Path(self.location)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rel_path": self.rel_path,
            "role": self.role,
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "seal": self.seal,
            "path": self.location,
            "external": self.external,
        }


@dataclass(frozen=True)
class InstalledModel:
    """A model the store knows, whatever its lifecycle state (see ``state``)."""

    id: str
    name: str
    category: str
    state: LifecycleState
    state_reason: str | None
    storage: str
    """``managed`` (the store owns the files), ``hardlink`` or ``reference``."""
    source: str | None
    architecture: str | None
    quantization: str | None
    parameter_count: int | None
    context_length: int | None
    size_bytes: int
    priority: Priority
    pinned: bool
    created_at: float
    installed_at: float | None
    updated_at: float
    last_used_at: float | None
    use_count: int
    metadata: Mapping[str, Any] = field(default_factory=dict, hash=False)
    files: tuple[ModelFile, ...] = ()

    @property
    def path(self) -> Path | None:
        """The file to load: the model file, or the first shard of a split model."""
        for role in ("model", "shard"):
            for model_file in self.files:
                if model_file.role == role:
                    return model_file.path
        return self.files[0].path if self.files else None

    @property
    def is_ready(self) -> bool:
        return self.state.is_installed

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "category": self.category,
            "state": self.state.value,
            "state_reason": self.state_reason,
            "storage": self.storage,
            "source": self.source,
            "architecture": self.architecture,
            "quantization": self.quantization,
            "parameter_count": self.parameter_count,
            "context_length": self.context_length,
            "size_bytes": self.size_bytes,
            "priority": self.priority.name.lower(),
            "pinned": self.pinned,
            "created_at": self.created_at,
            "installed_at": self.installed_at,
            "updated_at": self.updated_at,
            "last_used_at": self.last_used_at,
            "use_count": self.use_count,
            "path": str(self.path) if self.path else None,
            "metadata": dict(self.metadata),
            "files": [model_file.to_dict() for model_file in self.files],
        }


@dataclass(frozen=True)
class StoreEvent:
    """One entry of the store's event log (state changes, removals, evictions, repairs)."""

    id: int
    at: float
    model_id: str | None
    kind: str
    from_state: str | None
    to_state: str | None
    bytes: int | None
    detail: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at,
            "model_id": self.model_id,
            "kind": self.kind,
            "from_state": self.from_state,
            "to_state": self.to_state,
            "bytes": self.bytes,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class ModelStats:
    """One model's line in StoreStats."""

    id: str
    category: str
    state: str
    storage: str
    size_bytes: int
    use_count: int
    last_used_at: float | None
    pinned: bool
    priority: str


@dataclass(frozen=True)
class StoreStats:
    """Where the store's bytes are, how models are used, and what eviction freed."""

    root: Path
    model_count: int
    owned_bytes: int
    """Bytes the store's own files take (what eviction can free)."""
    referenced_bytes: int
    """Bytes of files adopted by reference or hard link (not freed by removing them)."""
    bytes_by_category: Mapping[str, int]
    bytes_by_state: Mapping[str, int]
    total_uses: int
    models: tuple[ModelStats, ...]
    """Largest first."""
    disk_total_bytes: int
    disk_free_bytes: int
    policy: CachePolicy
    evicted_count: int
    evicted_bytes: int
    recent_evictions: tuple[StoreEvent, ...]
    last_cleanup_at: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "model_count": self.model_count,
            "owned_bytes": self.owned_bytes,
            "referenced_bytes": self.referenced_bytes,
            "bytes_by_category": dict(self.bytes_by_category),
            "bytes_by_state": dict(self.bytes_by_state),
            "total_uses": self.total_uses,
            "models": [vars(model) for model in self.models],
            "disk_total_bytes": self.disk_total_bytes,
            "disk_free_bytes": self.disk_free_bytes,
            "policy": self.policy.to_dict(),
            "evicted_count": self.evicted_count,
            "evicted_bytes": self.evicted_bytes,
            "recent_evictions": [event.to_dict() for event in self.recent_evictions],
            "last_cleanup_at": self.last_cleanup_at,
        }
