"""Eviction as a plan first: which models would go, in what order, how many bytes that frees
and why space is needed at all. Executing a plan is the store's job; making one touches
nothing."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._policy import CachePolicy, EvictionPolicy, Priority

__all__ = [
    "Eviction",
    "EvictionPlan",
    "Leftover",
    "SpaceNeed",
    "candidate_order_sql",
    "format_ago",
    "select_evictions",
    "space_needs",
]


@dataclass(frozen=True)
class SpaceNeed:
    """One reason to free space, and how many bytes it asks for."""

    reason: str
    bytes: int
    kind: str = "asked"
    """``size_limit`` (the store is over its maximum size), ``disk_floor`` (free disk is under
    the minimum) or ``asked`` (a caller wants that much freed)."""


@dataclass(frozen=True)
class Eviction:
    """A model the plan removes, and why it was chosen before the others."""

    model_id: str
    size_bytes: int
    priority: Priority
    reason: str


@dataclass(frozen=True)
class Leftover:
    """Debris of interrupted work (an abandoned install, a half-removed model) that cleanup
    deletes before it evicts anything."""

    path: Path
    size_bytes: int
    reason: str


@dataclass(frozen=True)
class EvictionPlan:
    """What enforcing the policy would do. ``Store.execute_plan`` carries it out."""

    policy: EvictionPolicy
    aggressive: bool
    needs: tuple[SpaceNeed, ...]
    evictions: tuple[Eviction, ...]
    leftovers: tuple[Leftover, ...]
    protected: Mapping[str, int] = field(default_factory=dict)
    """Models passed over, by why: pinned, in_use, critical, not_owned."""
    created_at: float = field(default_factory=time.time)

    @property
    def bytes_to_free(self) -> int:
        return max((need.bytes for need in self.needs), default=0)

    @property
    def bytes_freed(self) -> int:
        return sum(item.size_bytes for item in self.evictions) + sum(
            item.size_bytes for item in self.leftovers
        )

    @property
    def shortfall_bytes(self) -> int:
        """Bytes the plan cannot free without touching protected models."""
        evicted = sum(item.size_bytes for item in self.evictions)
        leftovers = sum(item.size_bytes for item in self.leftovers)
        missing = 0
        for need in self.needs:
            freed = evicted + (leftovers if need.kind == "disk_floor" else 0)
            missing = max(missing, need.bytes - freed)
        return missing

    @property
    def satisfied(self) -> bool:
        return self.shortfall_bytes == 0

    @property
    def empty(self) -> bool:
        return not self.evictions and not self.leftovers

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy.value,
            "aggressive": self.aggressive,
            "needs": [
                {"kind": need.kind, "reason": need.reason, "bytes": need.bytes}
                for need in self.needs
            ],
            "bytes_to_free": self.bytes_to_free,
            "bytes_freed": self.bytes_freed,
            "shortfall_bytes": self.shortfall_bytes,
            "satisfied": self.satisfied,
            "evictions": [
                {
                    "model_id": item.model_id,
                    "size_bytes": item.size_bytes,
                    "priority": item.priority.name.lower(),
                    "reason": item.reason,
                }
                for item in self.evictions
            ],
            "leftovers": [
                {"path": str(item.path), "size_bytes": item.size_bytes, "reason": item.reason}
                for item in self.leftovers
            ],
            "protected": dict(self.protected),
        }


def space_needs(
    policy: CachePolicy,
    *,
    owned_bytes: int,
    disk_free_bytes: int,
    incoming_bytes: int = 0,
    incoming_owned_bytes: int | None = None,
) -> tuple[SpaceNeed, ...]:
    """Why space must be freed now, given the store's size, the free disk, the bytes about
    to be written to the disk (``incoming_bytes``) and how much the store's own size grows
    (``incoming_owned_bytes``: by default the same; a file moved in from the same disk
    grows the store without taking disk space)."""
    growth = incoming_bytes if incoming_owned_bytes is None else incoming_owned_bytes
    needs = []
    if policy.max_size_bytes is not None:
        excess = owned_bytes + growth - policy.max_size_bytes
        if excess > 0:
            incoming = f" with {growth} bytes more" if growth else ""
            reason = (
                f"store size {owned_bytes} bytes{incoming} is over the "
                f"{policy.max_size_bytes}-byte limit"
            )
            needs.append(SpaceNeed(reason, excess, "size_limit"))
    deficit = policy.min_free_bytes + incoming_bytes - disk_free_bytes
    if deficit > 0:
        incoming = f" after {incoming_bytes} bytes more" if incoming_bytes else ""
        reason = (
            f"free disk {disk_free_bytes} bytes{incoming} would be under the "
            f"{policy.min_free_bytes}-byte floor"
        )
        needs.append(SpaceNeed(reason, deficit, "disk_floor"))
    return tuple(needs)


_RECENCY = "coalesce(last_used_at, installed_at, created_at)"
_ORDER = {
    EvictionPolicy.LRU: f"priority, {_RECENCY}, id",
    EvictionPolicy.LFU: f"priority, use_count, {_RECENCY}, id",
    EvictionPolicy.FIFO: "priority, coalesce(installed_at, created_at), id",
    EvictionPolicy.LARGEST_FIRST: "priority, size_bytes DESC, id",
}


def candidate_order_sql(policy: EvictionPolicy) -> str:
    """The ORDER BY that lists models in eviction order: lower priority tiers first, then the
    policy's own order, then the id so that plans are reproducible."""
    return _ORDER[policy]


CandidateRow = tuple[str, int, str, int, int, float | None, float | None, int]
"""id, size_bytes, storage, priority, pinned, installed_at, last_used_at, use_count"""


def select_evictions(
    rows: Iterable[CandidateRow],
    *,
    policy: CachePolicy,
    bytes_to_free: int,
    in_use: set[str],
) -> tuple[list[Eviction], dict[str, int]]:
    """Walks models in eviction order until ``bytes_to_free`` is met; returns the chosen ones
    and how many were passed over, by why."""
    chosen: list[Eviction] = []
    protected = {"pinned": 0, "in_use": 0, "critical": 0, "not_owned": 0}
    freed = 0
    for model_id, size, storage, priority, pinned, installed_at, last_used, uses in rows:
        if freed >= bytes_to_free:
            break
        if pinned:
            protected["pinned"] += 1
        elif model_id.lower() in in_use:
            protected["in_use"] += 1
        elif priority >= Priority.CRITICAL and not policy.aggressive:
            protected["critical"] += 1
        elif storage != "managed" or size <= 0:
            protected["not_owned"] += 1
        else:
            tier = Priority(priority)
            reason = _reason(policy.eviction, tier, size, installed_at, last_used, uses)
            chosen.append(Eviction(model_id, size, tier, reason))
            freed += size
    return chosen, {key: count for key, count in protected.items() if count}


def _reason(
    policy: EvictionPolicy,
    priority: Priority,
    size: int,
    installed_at: float | None,
    last_used_at: float | None,
    use_count: int,
) -> str:
    tier = f"{priority.name.lower()} priority"
    used = f"last used {format_ago(last_used_at)}" if last_used_at is not None else "never used"
    if policy is EvictionPolicy.LRU:
        return f"{tier}; least recently used ({used})"
    if policy is EvictionPolicy.LFU:
        return f"{tier}; least often used ({use_count} uses, {used})"
    if policy is EvictionPolicy.FIFO:
        installed = format_ago(installed_at) if installed_at is not None else "at an unknown time"
        return f"{tier}; installed earliest ({installed})"
    return f"{tier}; largest first ({size} bytes)"


def format_ago(timestamp: float) -> str:
    """``3 d ago``, ``5 h ago``, ``12 min ago``, ``40 s ago``."""
    seconds = max(0.0, time.time() - timestamp)
    for unit, length in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= length:
            return f"{seconds / length:.0f} {unit} ago"
    return f"{seconds:.0f} s ago"
