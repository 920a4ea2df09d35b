"""Cleanup: eviction plans and their execution, the size and free-disk limits an install
must respect, automatic cleanup, and the pressure hook. Store's methods of the same names
call these."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from ..errors import (
    InsufficientSpaceError,
    LifecycleError,
    ModelInUseError,
    ModelNotFoundError,
    StoreError,
)
from ._eviction import (
    Eviction,
    EvictionPlan,
    Leftover,
    SpaceNeed,
    candidate_order_sql,
    select_evictions,
    space_needs,
)
from ._files import DOWNLOADS_DIR, STAGING_DIR, TRASH_DIR, dir_size, owner_of, remove_tree
from ._lifecycle import INSTALLED_STATES
from ._locks import PROBE_GRACE_S, exclusive_if_free, locked_model_ids
from ._policy import CachePolicy

if TYPE_CHECKING:
    from ._store import Store

__all__ = [
    "EvictionResult",
    "GcOutcome",
    "PressureReport",
    "ensure_space",
    "execute_plan",
    "find_leftovers",
    "gc",
    "maybe_cleanup",
    "owned_bytes",
    "plan_eviction",
    "relieve_pressure",
]

EVENT_RETENTION_S = 90 * 86400
# Memory levels as the reference SDK's MemoryMonitor has them: warn under 500 MB available.
MEMORY_WARNING_BYTES = 500_000_000
MEMORY_CRITICAL_BYTES = 200_000_000


@dataclass(frozen=True)
class EvictionResult:
    """What executing a plan did."""

    evicted: tuple[Eviction, ...]
    leftovers_removed: tuple[Leftover, ...]
    skipped: tuple[tuple[str, str], ...]
    """(model id, why) for planned evictions that did not happen."""

    @property
    def bytes_freed(self) -> int:
        return sum(item.size_bytes for item in self.evicted) + sum(
            item.size_bytes for item in self.leftovers_removed
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "evicted": [
                {"model_id": item.model_id, "size_bytes": item.size_bytes, "reason": item.reason}
                for item in self.evicted
            ],
            "leftovers_removed": [str(item.path) for item in self.leftovers_removed],
            "skipped": [{"model_id": mid, "reason": why} for mid, why in self.skipped],
            "bytes_freed": self.bytes_freed,
        }


@dataclass(frozen=True)
class PressureReport:
    """What a pressure check found and what it freed."""

    memory_available_bytes: int
    memory_level: str
    """``ok``, ``warning`` (under 500 MB available) or ``critical`` (under 200 MB)."""
    disk_free_bytes: int
    ram_backed: bool
    """The store's files live in memory (tmpfs), so evicting them frees memory too."""
    plan: EvictionPlan
    result: EvictionResult | None


@dataclass(frozen=True)
class GcOutcome:
    """A cleanup's plan and, unless it was a dry run, what executing it did."""

    plan: EvictionPlan
    result: EvictionResult | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.result is None,
            "plan": self.plan.to_dict(),
            "result": None if self.result is None else self.result.to_dict(),
        }


def plan_eviction(
    store: Store,
    *,
    incoming_bytes: int = 0,
    incoming_owned_bytes: int | None = None,
    free_bytes: int = 0,
    aggressive: bool | None = None,
    policy: CachePolicy | None = None,
) -> EvictionPlan:
    """The work behind Store.plan_eviction (documented there)."""
    chosen_policy = policy or store.policy
    if aggressive is not None:
        chosen_policy = replace(chosen_policy, aggressive=aggressive)
    held = locked_model_ids(store.root)
    leftovers = tuple(find_leftovers(store, held))
    disk_free = psutil.disk_usage(str(store.root)).free
    with store.db.read() as sql:
        owned = owned_bytes(sql)
        needs = list(
            space_needs(
                chosen_policy,
                owned_bytes=owned,
                disk_free_bytes=disk_free,
                incoming_bytes=incoming_bytes,
                incoming_owned_bytes=incoming_owned_bytes,
            )
        )
        if free_bytes > 0:
            needs.append(SpaceNeed(f"asked to free {free_bytes} bytes", free_bytes, "asked"))
        evictions: list[Eviction] = []
        protected: dict[str, int] = {}
        if needs:
            leftover_bytes = sum(item.size_bytes for item in leftovers)
            to_free = max(
                need.bytes - (leftover_bytes if need.kind == "disk_floor" else 0) for need in needs
            )
            if to_free > 0:
                placeholders = ", ".join("?" * len(INSTALLED_STATES))
                rows = sql.execute(
                    "SELECT id, size_bytes, storage, priority, pinned, installed_at, "
                    f"last_used_at, use_count FROM models WHERE state IN ({placeholders}) "
                    f"ORDER BY {candidate_order_sql(chosen_policy.eviction)}",
                    INSTALLED_STATES,
                )
                evictions, protected = select_evictions(
                    rows,
                    policy=chosen_policy,
                    bytes_to_free=to_free,
                    in_use=held,
                )
    return EvictionPlan(
        policy=chosen_policy.eviction,
        aggressive=chosen_policy.aggressive,
        needs=tuple(needs),
        evictions=tuple(evictions),
        leftovers=leftovers,
        protected=protected,
    )


def owned_bytes(sql: sqlite3.Connection) -> int:
    """Bytes of the store's own files, in every state (as stats() counts them)."""
    row = sql.execute(
        "SELECT coalesce(sum(size_bytes), 0) FROM models WHERE storage = 'managed'"
    ).fetchone()
    return int(row[0])


def find_leftovers(store: Store, held: set[str] | None = None) -> Iterator[Leftover]:
    """Staging and trash entries whose model no live process holds (``held``: the ids
    locked_model_ids gave, if the caller has them already). A snapshot: act on an entry only
    under exclusive_if_free."""
    if held is None:
        held = locked_model_ids(store.root)
    for folder, why in ((STAGING_DIR, "abandoned install"), (TRASH_DIR, "unfinished removal")):
        try:
            entries = sorted((store.root / folder).iterdir())
        except FileNotFoundError:
            continue
        for entry in entries:
            if owner_of(entry) not in held:
                yield Leftover(entry, dir_size(entry), why)
    # A download's part files outlive it only when its process died between READY and the
    # clean-up, or its record went: a download still waiting (queued, paused, failed) keeps
    # them to resume from.
    try:
        downloads = sorted((store.root / DOWNLOADS_DIR).iterdir())
    except FileNotFoundError:
        downloads = []
    for entry in downloads:
        if entry.name in held:
            continue
        try:
            model = store.find(entry.name)
        except StoreError:  # not a model id at all: nothing a download would have made
            model = None
        if model is None or model.state.is_installed:
            yield Leftover(entry, dir_size(entry), "part files of a finished or forgotten download")


def execute_plan(store: Store, plan: EvictionPlan) -> EvictionResult:
    """The work behind Store.execute_plan (documented there)."""
    removed_leftovers = []
    for leftover in plan.leftovers:
        with exclusive_if_free(store.root, owner_of(leftover.path)) as free:
            if free and leftover.path.exists():
                remove_tree(leftover.path)
                removed_leftovers.append(leftover)
    evicted = []
    skipped = []
    for item in plan.evictions:
        try:
            # A short wait: another process's in-use probe holds a lock for microseconds.
            freed = store._remove(
                item.model_id, kind="evicted", reason=item.reason, wait_s=PROBE_GRACE_S,
                expect_pinned=False,
            )  # fmt: skip
        except (ModelInUseError, ModelNotFoundError, LifecycleError) as error:
            # Came into use, was pinned, removed or moved on since the plan: skip it.
            skipped.append((item.model_id, str(error)))
            continue
        evicted.append(replace(item, size_bytes=freed))
    return EvictionResult(tuple(evicted), tuple(removed_leftovers), tuple(skipped))


def gc(store: Store, *, dry_run: bool = False, aggressive: bool | None = None) -> GcOutcome:
    """The work behind Store.gc (documented there)."""
    plan = plan_eviction(store, aggressive=aggressive)
    if dry_run:
        return GcOutcome(plan, None)
    from ._store import _log

    result = execute_plan(store, plan)
    now = time.time()
    store._set_setting("last_cleanup_at", now)
    with store.db.write() as sql:
        sql.execute(
            "DELETE FROM events WHERE at < ? AND kind NOT IN ('evicted', 'removed')",
            (now - EVENT_RETENTION_S,),
        )
        _log(sql, None, "cleanup", bytes_=result.bytes_freed)
    return GcOutcome(plan, result)


def maybe_cleanup(store: Store) -> GcOutcome | None:
    """The work behind Store.maybe_cleanup (documented there)."""
    policy = store.policy
    if not policy.auto_cleanup:
        return None
    last = store._setting("last_cleanup_at")
    if last is not None and time.time() - float(last) < policy.cleanup_interval_s:
        return None
    return gc(store)


def ensure_space(
    store: Store,
    incoming_bytes: int,
    *,
    incoming_owned_bytes: int | None = None,
    model_id: str | None = None,
) -> EvictionResult:
    """The work behind Store.ensure_space (documented there)."""
    policy = store.policy
    if incoming_bytes == 0:  # nothing is written: the free-disk floor is not this call's
        policy = replace(policy, min_free_bytes=0)
    plan = plan_eviction(
        store,
        incoming_bytes=incoming_bytes,
        incoming_owned_bytes=incoming_owned_bytes,
        policy=policy,
    )
    if not plan.needs:
        return EvictionResult((), (), ())
    if not plan.satisfied:
        free = psutil.disk_usage(str(store.root)).free
        available = free
        if all(need.kind == "size_limit" for need in plan.needs):
            # Refused by the size limit alone: what is left under it is what is available.
            with store.db.read() as sql:
                owned = owned_bytes(sql)
            available = max(0, (policy.max_size_bytes or 0) - owned)
        protected = ", ".join(f"{count} {why}" for why, count in plan.protected.items())
        message = (
            f"not enough space{f' for {model_id!r}' if model_id else ''}: "
            f"{'; '.join(need.reason for need in plan.needs)}; eviction could free "
            f"{plan.bytes_freed} bytes of the {plan.bytes_to_free} needed"
            f"{f' (models passed over: {protected})' if protected else ''}. Free disk "
            "space, remove models, or change the policy (`iris-models policy set`)"
        )
        raise InsufficientSpaceError(
            message,
            model_id=model_id,
            bytes_needed=plan.bytes_to_free,
            bytes_available=available,
        )
    return execute_plan(store, plan)


def relieve_pressure(
    store: Store, *, memory: bool = True, disk: bool = True, dry_run: bool = False,
    aggressive: bool | None = None,
) -> PressureReport:  # fmt: skip
    """The hook an app calls when the system warns of low memory or disk.

    Disk: evicts until the free-disk floor holds again. Memory: evicting frees memory only
    when the store lives in memory (tmpfs); then it evicts until 500 MB are available.
    """
    available = psutil.virtual_memory().available
    level = "ok"
    if available < MEMORY_CRITICAL_BYTES:
        level = "critical"
    elif available < MEMORY_WARNING_BYTES:
        level = "warning"
    ram_backed = _is_ram_backed(store.root)
    free_bytes = 0
    if memory and ram_backed and available < MEMORY_WARNING_BYTES:
        free_bytes = MEMORY_WARNING_BYTES - available
    if disk:
        plan = plan_eviction(store, free_bytes=free_bytes, aggressive=aggressive)
    else:
        plan = plan_eviction(
            store,
            free_bytes=free_bytes,
            aggressive=aggressive,
            policy=replace(store.policy, min_free_bytes=0, max_size_bytes=None),
        )
    result = None if dry_run or plan.empty else execute_plan(store, plan)
    disk_free = psutil.disk_usage(str(store.root)).free
    return PressureReport(available, level, disk_free, ram_backed, plan, result)


def _is_ram_backed(path: Path) -> bool:
    """The work behind Store.relieve_pressure (documented there)."""
    resolved = str(path.resolve())
    best = ""
    fstype = ""
    for partition in psutil.disk_partitions(all=True):
        mount = partition.mountpoint
        inside = resolved == mount or resolved.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) > len(best):
            best, fstype = mount, partition.fstype
    return fstype in ("tmpfs", "ramfs")
