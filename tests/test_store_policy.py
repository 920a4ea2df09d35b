"""Cache policies and eviction on real stores: policy parsing and persistence, eviction
order for each EvictionPolicy, priorities, pins and what is never evicted, plans as dry runs,
executing plans, ensure_space, gc with leftovers, and when automatic cleanup runs."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.gguf_py_files import make_gguf

from iris_models.errors import InsufficientSpaceError, ModelNotFoundError, StorePolicyError
from iris_models.store import (
    CachePolicy,
    EvictionPlan,
    EvictionPolicy,
    Priority,
    Store,
    parse_size,
)

# No free-disk floor: on a test machine the disk's free space must not decide what is evicted.
NO_FLOOR = CachePolicy(min_free_bytes=0)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "store", policy=NO_FLOOR) as opened:
        yield opened


def add(store: Store, model_id: str, rows: int = 4, **options: Any) -> int:
    """Installs a distinct model by copy; returns its size in bytes."""
    source = make_gguf(store.root.parent / "sources" / f"{model_id}.gguf", model_id, rows)
    options.setdefault("placement", "copy")
    return store.install(model_id, [source], **options).size_bytes


def set_usage(
    store: Store,
    model_id: str,
    *,
    installed_at: float,
    last_used_at: float | None,
    use_count: int,
) -> None:
    """Usage history without waiting for the clock (times in seconds since the epoch)."""
    with store.db.write() as sql:
        sql.execute(
            "UPDATE models SET installed_at = ?, last_used_at = ?, use_count = ? WHERE id = ?",
            (installed_at, last_used_at, use_count, model_id),
        )


def order(plan: EvictionPlan) -> list[str]:
    return [item.model_id for item in plan.evictions]


def ids(store: Store) -> list[str]:
    return [model.id for model in store.list_models()]


# -- CachePolicy --------------------------------------------------------------------------


def test_default_policy() -> None:
    policy = CachePolicy()
    assert policy.min_free_bytes == 500_000_000
    assert policy.cleanup_interval_s == 86400
    assert policy.eviction is EvictionPolicy.LRU
    assert policy.max_size_bytes is None
    assert policy.auto_cleanup is True
    assert policy.aggressive is False


def test_a_new_store_uses_the_default_policy(tmp_path: Path) -> None:
    with Store(tmp_path / "fresh") as fresh:
        assert fresh.policy == CachePolicy()


@pytest.mark.parametrize(
    ("key", "text", "field", "expected"),
    [
        ("max-size", "20GB", "max_size_bytes", 20_000_000_000),
        ("max_size", "1.5GiB", "max_size_bytes", 1_610_612_736),
        ("max-size", "none", "max_size_bytes", None),
        ("max-size", "Unlimited", "max_size_bytes", None),
        ("min-free", "500MB", "min_free_bytes", 500_000_000),
        ("min_free_bytes", "0", "min_free_bytes", 0),
        ("interval", "12h", "cleanup_interval_s", 43_200),
        ("cleanup-interval", "7d", "cleanup_interval_s", 604_800),
        ("interval", "90", "cleanup_interval_s", 90),
        ("interval", "30m", "cleanup_interval_s", 1800),
        ("eviction", "LFU", "eviction", EvictionPolicy.LFU),
        ("eviction", "largest-first", "eviction", EvictionPolicy.LARGEST_FIRST),
        ("auto-cleanup", "false", "auto_cleanup", False),
        ("auto_cleanup", "yes", "auto_cleanup", True),
        ("aggressive", "true", "aggressive", True),
        ("aggressive", "0", "aggressive", False),
    ],
)
def test_with_setting_parses_text(key: str, text: str, field: str, expected: object) -> None:
    base = CachePolicy(max_size_bytes=123)
    if isinstance(expected, bool):  # start from the other value, so the change shows
        base = dataclasses.replace(base, **{field: not expected})
    changed = base.with_setting(key, text)
    assert getattr(changed, field) == expected
    untouched = {name: value for name, value in vars(base).items() if name != field}
    assert {name: getattr(changed, name) for name in untouched} == untouched


@pytest.mark.parametrize(
    ("key", "text", "match"),
    [
        ("max-size", "lots", "not a size"),
        ("max-size", "12 parsecs", "not a size"),
        ("max-size", "-5GB", "not a size"),
        ("min-free", "none", "not a size"),
        ("interval", "soon", "not a duration"),
        ("interval", "3w", "not a duration"),
        ("interval", "-1h", "not a duration"),
        ("eviction", "random", "unknown eviction policy"),
        ("aggressive", "maybe", "not a yes/no value"),
        ("colour", "blue", "unknown policy setting 'colour'"),
    ],
)
def test_with_setting_refuses_junk(key: str, text: str, match: str) -> None:
    with pytest.raises(StorePolicyError, match=match) as raised:
        CachePolicy().with_setting(key, text)
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize(
    "fields",
    [
        {"max_size_bytes": -1},
        {"min_free_bytes": -1},
        {"cleanup_interval_s": -1.0},
        {"cleanup_interval_s": float("nan")},
        {"eviction": "mru"},
    ],
)
def test_policy_refuses_impossible_values(fields: dict[str, Any]) -> None:
    with pytest.raises(StorePolicyError):
        CachePolicy(**fields)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1000000", 1_000_000),
        ("500MB", 500_000_000),
        ("500mb", 500_000_000),
        ("1.5 GiB", 1_610_612_736),
        ("20G", 20_000_000_000),
        ("2TiB", 2 * 2**40),
        ("4 kib", 4096),
        (" 7 B ", 7),
    ],
)
def test_parse_size_examples(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "GB", "1,5GB", "1e9", "0x10", "10 XB", "1.2.3MB"])
def test_parse_size_refuses_what_is_not_a_size(text: str) -> None:
    with pytest.raises(StorePolicyError, match="not a size"):
        parse_size(text)


UNITS = {"": 1, "k": 10**3, "MB": 10**6, "G": 10**9, "TB": 10**12, "KiB": 2**10, "GiB": 2**30}


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(sorted(UNITS)))
def test_parse_size_of_a_whole_number_multiplies_by_its_unit(count: int, unit: str) -> None:
    assert parse_size(f"{count}{unit}") == count * UNITS[unit]
    assert parse_size(f" {count} {unit.lower()} ") == count * UNITS[unit]


def test_policy_round_trips_through_a_dict_and_ignores_unknown_keys() -> None:
    policy = CachePolicy(
        max_size_bytes=10**9,
        min_free_bytes=0,
        eviction=EvictionPolicy.FIFO,
        cleanup_interval_s=60.0,
        auto_cleanup=False,
        aggressive=True,
    )
    data = policy.to_dict()
    assert data["eviction"] == "fifo"
    assert CachePolicy.from_dict(json.loads(json.dumps(data))) == policy
    assert CachePolicy.from_dict({**data, "added_by_a_newer_version": 1}) == policy


def test_policy_persists_across_store_instances(tmp_path: Path) -> None:
    policy = CachePolicy(
        max_size_bytes=2 * 10**9, min_free_bytes=10**6, eviction="lfu", cleanup_interval_s=3600
    )
    with Store(tmp_path / "store", policy=policy) as first:
        assert first.policy == policy
    with Store(tmp_path / "store") as second:
        assert second.policy == policy
        assert second.policy.eviction is EvictionPolicy.LFU
        second.set_policy(second.policy.with_setting("max-size", "none"))
    with Store(tmp_path / "store") as third:
        assert third.policy.max_size_bytes is None
        assert third.policy.min_free_bytes == 10**6
        logged = [json.loads(e.detail or "{}") for e in third.events(kind="policy")]
    assert [entry["max_size_bytes"] for entry in logged] == [2 * 10**9, None]


def test_priority_parses_names_and_numbers() -> None:
    assert Priority.parse("LOW") is Priority.LOW
    assert Priority.parse("critical") is Priority.CRITICAL
    assert Priority.parse(2) is Priority.HIGH
    for junk in ("urgent", 7, -1):
        with pytest.raises(StorePolicyError, match="unknown priority"):
            Priority.parse(junk)


# -- eviction order -----------------------------------------------------------------------


@pytest.fixture
def four_models(store: Store) -> dict[str, int]:
    """a..d with sizes, install times, last uses and use counts chosen so that each policy
    gives a different order."""
    history = {
        # id: (rows, installed_at, last_used_at, use_count)
        "a": (4, 1000.0, 4000.0, 1),
        "b": (16, 2000.0, 1500.0, 3),
        "c": (8, 3000.0, None, 2),
        "d": (12, 3500.0, 3800.0, 1),
    }
    sizes = {}
    for model_id, (rows, installed_at, last_used_at, use_count) in history.items():
        sizes[model_id] = add(store, model_id, rows=rows)
        set_usage(
            store,
            model_id,
            installed_at=installed_at,
            last_used_at=last_used_at,
            use_count=use_count,
        )
    assert len(set(sizes.values())) == 4
    return sizes


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (EvictionPolicy.LRU, ["b", "c", "d", "a"]),  # recency: b 1500, c 3000 (never used)...
        (EvictionPolicy.LFU, ["d", "a", "c", "b"]),  # 1 use (d older than a), 2, 3
        (EvictionPolicy.FIFO, ["a", "b", "c", "d"]),
        (EvictionPolicy.LARGEST_FIRST, ["b", "d", "c", "a"]),
    ],
)
def test_each_policy_orders_evictions(
    store: Store, four_models: dict[str, int], policy: EvictionPolicy, expected: list[str]
) -> None:
    store.set_policy(CachePolicy(min_free_bytes=0, eviction=policy))
    everything = sum(four_models.values())
    plan = store.plan_eviction(free_bytes=everything)
    assert order(plan) == expected
    assert plan.policy is policy
    assert plan.bytes_freed == everything
    assert plan.satisfied
    # Asking for a byte more than the first model frees takes exactly the first two.
    first = four_models[expected[0]]
    assert order(store.plan_eviction(free_bytes=first)) == expected[:1]
    assert order(store.plan_eviction(free_bytes=first + 1)) == expected[:2]


def test_lfu_breaks_ties_by_least_recent_use(store: Store) -> None:
    for model_id, last_used in (("x", 300.0), ("y", 100.0), ("z", 200.0)):
        add(store, model_id)
        set_usage(store, model_id, installed_at=50.0, last_used_at=last_used, use_count=4)
    plan = store.plan_eviction(
        free_bytes=10**9, policy=CachePolicy(min_free_bytes=0, eviction="lfu")
    )
    assert order(plan) == ["y", "z", "x"]
    assert "4 uses" in plan.evictions[0].reason


def test_use_in_sequence_sets_the_lru_order(store: Store) -> None:
    for model_id in ("first", "second", "third"):
        add(store, model_id)
    for model_id in ("third", "first", "second"):
        with store.use(model_id):
            pass
        time.sleep(0.002)  # distinct timestamps on coarse clocks; no timing is asserted
    assert order(store.plan_eviction(free_bytes=10**9)) == ["third", "first", "second"]


def test_lower_priority_tiers_go_first_whatever_the_recency(store: Store) -> None:
    add(store, "high-old", priority="high")
    add(store, "normal-mid")
    add(store, "low-new", priority=Priority.LOW)
    set_usage(store, "high-old", installed_at=1.0, last_used_at=10.0, use_count=1)
    set_usage(store, "normal-mid", installed_at=1.0, last_used_at=20.0, use_count=1)
    set_usage(store, "low-new", installed_at=1.0, last_used_at=30.0, use_count=1)
    plan = store.plan_eviction(free_bytes=10**9)
    assert order(plan) == ["low-new", "normal-mid", "high-old"]
    assert [item.priority for item in plan.evictions] == [
        Priority.LOW,
        Priority.NORMAL,
        Priority.HIGH,
    ]
    assert plan.evictions[0].reason.startswith("low priority")
    store.set_priority("low-new", "high")
    assert order(store.plan_eviction(free_bytes=10**9)) == ["normal-mid", "high-old", "low-new"]


def test_critical_models_are_evicted_only_when_aggressive(store: Store) -> None:
    add(store, "critical", priority="critical")
    add(store, "normal")
    plan = store.plan_eviction(free_bytes=10**9)
    assert order(plan) == ["normal"]
    assert plan.protected == {"critical": 1}
    assert not plan.satisfied
    aggressive = store.plan_eviction(free_bytes=10**9, aggressive=True)
    assert order(aggressive) == ["normal", "critical"]
    assert aggressive.aggressive
    store.set_policy(CachePolicy(min_free_bytes=0, aggressive=True))
    assert order(store.plan_eviction(free_bytes=10**9)) == ["normal", "critical"]


def test_pinned_models_are_never_chosen(store: Store) -> None:
    add(store, "pinned-low", priority="low", pinned=True)
    add(store, "pinned-later")
    add(store, "free")
    store.pin("pinned-later")
    plan = store.plan_eviction(free_bytes=10**9, aggressive=True)
    assert order(plan) == ["free"]
    assert plan.protected == {"pinned": 2}
    store.unpin("pinned-later")
    assert order(store.plan_eviction(free_bytes=10**9)) == ["pinned-later", "free"]


def test_models_the_store_does_not_own_are_never_chosen(store: Store, tmp_path: Path) -> None:
    add(store, "referenced", placement="reference")
    add(store, "linked", placement="hardlink")
    add(store, "owned")
    plan = store.plan_eviction(free_bytes=10**9, aggressive=True)
    assert order(plan) == ["owned"]
    assert plan.protected == {"not_owned": 2}


def test_plan_is_a_dry_run(store: Store, four_models: dict[str, int]) -> None:
    before = store.list_models()
    events_before = store.events()
    plan = store.plan_eviction(free_bytes=10**9)
    assert len(plan.evictions) == 4
    assert store.list_models() == before
    assert store.events() == events_before
    assert all(model.path is not None and model.path.is_file() for model in before)
    assert plan.to_dict()["evictions"][0]["model_id"] == plan.evictions[0].model_id


def test_no_need_gives_an_empty_plan(store: Store, four_models: dict[str, int]) -> None:
    plan = store.plan_eviction()
    assert plan.needs == ()
    assert plan.empty
    assert plan.satisfied


# -- executing plans ----------------------------------------------------------------------


def test_execute_plan_removes_exactly_the_planned_models(
    store: Store, four_models: dict[str, int]
) -> None:
    plan = store.plan_eviction(free_bytes=four_models["b"] + four_models["c"])
    assert order(plan) == ["b", "c"]
    result = store.execute_plan(plan)
    assert [item.model_id for item in result.evicted] == ["b", "c"]
    assert result.bytes_freed == four_models["b"] + four_models["c"]
    assert result.skipped == ()
    assert ids(store) == ["a", "d"]
    assert not (store.models_dir / "b").exists()
    evicted = store.events(kind="evicted")
    assert [(e.model_id, e.bytes) for e in evicted] == [
        ("b", four_models["b"]),
        ("c", four_models["c"]),
    ]
    assert evicted[0].detail == plan.evictions[0].reason
    stats = store.stats()
    assert stats.evicted_count == 2
    assert stats.evicted_bytes == result.bytes_freed
    assert [e.model_id for e in stats.recent_evictions] == ["c", "b"]  # newest first

    store.execute_plan(store.plan_eviction(free_bytes=1))
    assert store.stats().evicted_bytes == result.bytes_freed + four_models["d"]


def test_model_pinned_after_planning_is_skipped(store: Store, four_models: dict[str, int]) -> None:
    plan = store.plan_eviction(free_bytes=10**9)
    store.pin("c")
    result = store.execute_plan(plan)
    assert [item.model_id for item in result.evicted] == ["b", "d", "a"]
    assert [model_id for model_id, _why in result.skipped] == ["c"]
    assert "pinned or raised in priority after the eviction plan" in result.skipped[0][1]
    assert ids(store) == ["c"]


def test_model_used_or_removed_after_planning_is_skipped(
    store: Store, four_models: dict[str, int]
) -> None:
    plan = store.plan_eviction(free_bytes=10**9)
    store.remove("d")
    with store.use("a"):
        result = store.execute_plan(plan)
    assert [item.model_id for item in result.evicted] == ["b", "c"]
    assert dict(result.skipped).keys() == {"d", "a"}
    assert ids(store) == ["a"]


# -- ensure_space -------------------------------------------------------------------------


def test_ensure_space_evicts_within_the_size_limit(
    store: Store, four_models: dict[str, int]
) -> None:
    total = sum(four_models.values())
    store.set_policy(CachePolicy(min_free_bytes=0, max_size_bytes=total))
    result = store.ensure_space(four_models["b"])  # LRU: b goes first
    assert [item.model_id for item in result.evicted] == ["b"]
    assert ids(store) == ["a", "c", "d"]
    assert store.ensure_space(four_models["b"]).evicted == ()  # the room is there now


def test_ensure_space_that_protected_models_prevent_removes_nothing(
    store: Store, four_models: dict[str, int]
) -> None:
    total = sum(four_models.values())
    store.set_policy(CachePolicy(min_free_bytes=0, max_size_bytes=total))
    for model_id in ("a", "b", "c"):
        store.pin(model_id)
    leftover = store.root / ".staging" / "gone.0123456789ab"
    leftover.mkdir(parents=True)
    incoming = four_models["d"] + 1
    with pytest.raises(InsufficientSpaceError, match="not enough space") as raised:
        store.ensure_space(incoming, model_id="new-model")
    error = raised.value
    assert error.bytes_needed == incoming
    assert isinstance(error, OSError)
    assert "'new-model'" in str(error)
    assert "3 pinned" in str(error)
    assert ids(store) == ["a", "b", "c", "d"]
    assert leftover.exists()


def test_install_by_copy_evicts_to_stay_under_the_size_limit(store: Store) -> None:
    size = add(store, "old")
    add(store, "newer")
    set_usage(store, "old", installed_at=1.0, last_used_at=None, use_count=0)
    store.set_policy(CachePolicy(min_free_bytes=0, max_size_bytes=2 * size + size // 2))
    add(store, "newest")
    assert ids(store) == ["newer", "newest"]
    assert [e.model_id for e in store.events(kind="evicted")] == ["old"]


def test_install_by_move_stays_under_the_size_limit(store: Store) -> None:
    size = add(store, "old")
    add(store, "newer")
    set_usage(store, "old", installed_at=1.0, last_used_at=None, use_count=0)
    store.set_policy(CachePolicy(min_free_bytes=0, max_size_bytes=2 * size + size // 2))
    add(store, "newest", placement="move")
    assert store.stats().owned_bytes <= 2 * size + size // 2


# -- gc and automatic cleanup ---------------------------------------------------------------


def make_leftovers(store: Store) -> list[Path]:
    staged = store.root / ".staging" / "crashed-install.a1b2c3d4e5f6"
    staged.mkdir(parents=True)
    (staged / "model.gguf").write_bytes(b"\0" * 1000)
    trashed = store.root / ".trash" / "half-removed.0f0f0f0f0f0f"
    trashed.mkdir(parents=True)
    (trashed / "model.gguf").write_bytes(b"\0" * 500)
    return [staged, trashed]


def test_gc_dry_run_changes_nothing(store: Store, four_models: dict[str, int]) -> None:
    leftovers = make_leftovers(store)
    store.set_policy(CachePolicy(min_free_bytes=0, max_size_bytes=0))
    last_cleanup = store.stats().last_cleanup_at
    events_before = store.events()
    outcome = store.gc(dry_run=True)
    assert outcome.result is None
    assert len(outcome.plan.evictions) == 4
    assert sorted(item.path for item in outcome.plan.leftovers) == sorted(leftovers)
    assert all(path.exists() for path in leftovers)
    assert ids(store) == ["a", "b", "c", "d"]
    assert store.stats().last_cleanup_at == last_cleanup
    assert store.events() == events_before
    assert outcome.to_dict()["dry_run"] is True


def test_gc_deletes_leftovers_enforces_the_policy_and_logs(
    store: Store, four_models: dict[str, int]
) -> None:
    leftovers = make_leftovers(store)
    keep = four_models["a"] + four_models["d"]
    store.set_policy(CachePolicy(min_free_bytes=0, max_size_bytes=keep))
    before = time.time()
    outcome = store.gc()
    assert outcome.result is not None
    assert not any(path.exists() for path in leftovers)
    assert ids(store) == ["a", "d"]  # LRU: b and c were used least recently
    assert outcome.result.bytes_freed == four_models["b"] + four_models["c"] + 1500
    cleanup = store.events(kind="cleanup")[-1]
    assert cleanup.bytes == outcome.result.bytes_freed
    last_cleanup_at = store.stats().last_cleanup_at
    assert last_cleanup_at is not None
    assert last_cleanup_at >= before


def test_gc_keeps_the_staging_entry_of_a_model_someone_holds(store: Store) -> None:
    add(store, "busy")
    staged = store.root / ".staging" / "busy.a1b2c3d4e5f6"
    staged.mkdir(parents=True)
    with store.use("busy"):
        outcome = store.gc()
        assert outcome.plan.leftovers == ()
        assert staged.exists()
    store.gc()
    assert not staged.exists()


def test_gc_forgets_old_events_but_keeps_removals_and_evictions(store: Store) -> None:
    long_ago = time.time() - 100 * 86400
    with store.db.write() as sql:
        for kind in ("state", "evicted", "removed", "pinned"):
            sql.execute(
                "INSERT INTO events (at, model_id, kind) VALUES (?, 'old-model', ?)",
                (long_ago, kind),
            )
    store.gc()
    kinds = sorted(e.kind for e in store.events(model_id="old-model"))
    assert kinds == ["evicted", "removed"]


def set_last_cleanup(store: Store, at: float) -> None:
    with store.db.write() as sql:
        sql.execute(
            "UPDATE settings SET value = ? WHERE key = 'last_cleanup_at'", (json.dumps(at),)
        )


def test_opening_a_store_runs_the_first_cleanup(tmp_path: Path) -> None:
    with Store(tmp_path / "store", auto_cleanup=False) as unopened:
        assert unopened.stats().last_cleanup_at is None
    with Store(tmp_path / "store") as opened:
        assert opened.stats().last_cleanup_at is not None
        assert len(opened.events(kind="cleanup")) == 1


def test_maybe_cleanup_runs_only_when_the_interval_has_passed(store: Store) -> None:
    store.set_policy(CachePolicy(min_free_bytes=0, cleanup_interval_s=3600))
    set_last_cleanup(store, time.time() - 1800)
    assert store.maybe_cleanup() is None
    set_last_cleanup(store, time.time() - 7200)
    leftovers = make_leftovers(store)
    outcome = store.maybe_cleanup()
    assert outcome is not None
    assert outcome.result is not None
    assert not any(path.exists() for path in leftovers)
    last = store.stats().last_cleanup_at
    assert last is not None
    assert time.time() - last < 1800  # stamped now, so the next call waits again
    assert store.maybe_cleanup() is None


def test_maybe_cleanup_never_runs_when_automatic_cleanup_is_off(store: Store) -> None:
    store.set_policy(CachePolicy(min_free_bytes=0, cleanup_interval_s=0, auto_cleanup=False))
    set_last_cleanup(store, 0.0)
    leftovers = make_leftovers(store)
    assert store.maybe_cleanup() is None
    assert all(path.exists() for path in leftovers)


def test_opening_a_store_cleans_up_when_due(tmp_path: Path) -> None:
    root = tmp_path / "store"
    with Store(root, policy=CachePolicy(min_free_bytes=0, cleanup_interval_s=3600)) as first:
        leftovers = make_leftovers(first)
        set_last_cleanup(first, time.time() - 7200)
    with Store(root, auto_cleanup=False):
        assert all(path.exists() for path in leftovers)
    with Store(root):
        assert not any(path.exists() for path in leftovers)


def test_removing_a_missing_model_raises_not_found(store: Store) -> None:
    with pytest.raises(ModelNotFoundError):
        store.remove("never-installed")
