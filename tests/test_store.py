"""The Store API on real SQLite and real files: lifecycle transitions and observers, install
with every placement, model ids, use() leases across threads and processes, statistics, the
ModelRepository view, and the pressure hook. Eviction and policies: test_store_policy.py."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from importlib.resources import as_file, files
from pathlib import Path

import numpy as np
import psutil
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from tests.gguf_py_files import VT, make_gguf, write_gguf
from tests.services import require_service

from iris_models.errors import (
    ImportModelError,
    InvalidModelIdError,
    LifecycleError,
    ModelExistsError,
    ModelInUseError,
    ModelNotFoundError,
    ModelNotReadyError,
    StoreError,
)
from iris_models.store import (
    TRANSITIONS,
    CachePolicy,
    FileSpec,
    LifecycleState,
    ModelRepository,
    Placement,
    PressureReport,
    Priority,
    StateChange,
    Store,
    check_transition,
    derive_model_id,
    validate_model_id,
)

S = LifecycleState


def sha256_of(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def staging_entries(store: Store) -> list[Path]:
    staging = store.root / ".staging"
    return sorted(staging.iterdir()) if staging.exists() else []


def lock_files(store: Store) -> list[Path]:
    locks = store.root / ".locks"
    return sorted(locks.iterdir()) if locks.exists() else []


def assert_nothing_left(store: Store, model_id: str) -> None:
    """The store is as if ``model_id`` had never been installed."""
    assert store.find(model_id) is None
    assert not (store.models_dir / model_id.lower()).exists()
    assert staging_entries(store) == []
    assert lock_files(store) == []


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "store") as opened:
        yield opened


@pytest.fixture
def sample_copy(tmp_path: Path) -> Path:
    """The bundled sample model (llama, Q4_K_M), copied so a move cannot take the original."""
    target = tmp_path / "downloads" / "sample.gguf"
    target.parent.mkdir(parents=True, exist_ok=True)
    with as_file(files("iris_models") / "data" / "sample.gguf") as sample:
        shutil.copyfile(sample, target)
    return target


# -- lifecycle ----------------------------------------------------------------------------


def test_check_transition_allows_exactly_the_pairs_in_the_table() -> None:
    refused = 0
    for from_state in S:
        for to_state in S:
            if to_state in TRANSITIONS[from_state]:
                check_transition("m", from_state, to_state)
                continue
            with pytest.raises(LifecycleError) as raised:
                check_transition("m", from_state, to_state)
            refused += 1
            error = raised.value
            assert (error.from_state, error.to_state) == (from_state.value, to_state.value)
            assert error.model_id == "m"
            assert f"from {from_state.value} to {to_state.value}" in str(error)
            for allowed in TRANSITIONS[from_state]:
                assert allowed.value in str(error).split("it can go to:")[1]
    allowed_count = sum(len(targets) for targets in TRANSITIONS.values())
    assert refused + allowed_count == len(S) ** 2


def test_every_state_is_reachable_and_can_be_cleaned_up() -> None:
    """No dead ends: from UNINITIALIZED every state can be reached, and from every state a
    model can get back to UNINITIALIZED (be removed)."""
    assert set(TRANSITIONS) == set(S)
    reachable = {S.UNINITIALIZED}
    frontier = deque([S.UNINITIALIZED])
    while frontier:
        for target in TRANSITIONS[frontier.popleft()]:
            if target not in reachable:
                reachable.add(target)
                frontier.append(target)
    assert reachable == set(S)
    for state in S:
        seen = {state}
        frontier = deque([state])
        while frontier:
            for target in TRANSITIONS[frontier.popleft()]:
                if target not in seen:
                    seen.add(target)
                    frontier.append(target)
        assert S.UNINITIALIZED in seen, state


def test_transition_persists_the_state_and_logs_an_event(store: Store) -> None:
    store.register("dl-model")
    change = store.transition("dl-model", "queued", reason="waiting for wifi")
    assert (change.from_state, change.to_state, change.reason) == (
        S.DISCOVERED,
        S.QUEUED,
        "waiting for wifi",
    )
    with Store(store.root, auto_cleanup=False) as reopened:
        model = reopened.get("dl-model")
        assert model.state is S.QUEUED
        assert model.state_reason == "waiting for wifi"
        last = reopened.events(model_id="dl-model", kind="state")[-1]
    assert (last.from_state, last.to_state, last.detail) == (
        "discovered",
        "queued",
        "waiting for wifi",
    )


def test_transition_refused_by_the_table_changes_nothing(store: Store) -> None:
    store.register("m")
    seen: list[StateChange] = []
    store.add_observer(seen.append)
    events_before = store.events()
    with pytest.raises(LifecycleError, match="from discovered to ready"):
        store.transition("m", S.READY)
    assert store.get("m").state is S.DISCOVERED
    assert store.events() == events_before
    assert seen == []


def test_transition_of_a_missing_model_raises_model_not_found(store: Store) -> None:
    with pytest.raises(ModelNotFoundError, match="no model 'ghost'"):
        store.transition("ghost", S.DISCOVERED)


def test_transition_if_moves_only_from_the_states_it_names(store: Store) -> None:
    store.register("m")
    seen: list[StateChange] = []
    store.add_observer(seen.append)

    assert store.transition_if("m", [S.PAUSED, S.ERROR], S.QUEUED) is None
    assert store.get("m").state is S.DISCOVERED
    assert seen == []

    change = store.transition_if("m", ["discovered", S.PAUSED], "queued", reason="go")
    assert change is not None
    assert (change.from_state, change.to_state, change.reason) == (S.DISCOVERED, S.QUEUED, "go")
    assert store.get("m").state is S.QUEUED
    assert seen == [change]


def test_transition_if_still_keeps_to_the_table(store: Store) -> None:
    store.register("m")
    with pytest.raises(LifecycleError, match="from discovered to ready"):
        store.transition_if("m", [S.DISCOVERED], S.READY)
    with pytest.raises(ModelNotFoundError, match="no model 'ghost'"):
        store.transition_if("ghost", [S.DISCOVERED], S.QUEUED)
    assert store.get("m").state is S.DISCOVERED


def test_transition_if_racing_on_one_record_moves_it_once(tmp_path: Path) -> None:
    """Eight stores on one root (eight SQLite connections, as eight processes would have)
    race to queue the same record: one moves it, the others see it moved, none fails."""
    root = tmp_path / "store"
    with Store(root) as first:
        first.register("m")
    start = threading.Barrier(8)

    def queue_it(_: int) -> StateChange | None:
        with Store(root, auto_cleanup=False) as mine:
            start.wait()
            return mine.transition_if("m", [S.DISCOVERED, S.PAUSED], S.QUEUED)

    with ThreadPoolExecutor(8) as pool:
        changes = list(pool.map(queue_it, range(8)))

    assert sum(change is not None for change in changes) == 1
    with Store(root, auto_cleanup=False) as reopened:
        assert reopened.get("m").state is S.QUEUED
        moves = [(e.from_state, e.to_state) for e in reopened.events(model_id="m", kind="state")]
    assert moves == [("uninitialized", "discovered"), ("discovered", "queued")]


def test_error_state_can_go_back_to_discovered_and_retry(store: Store) -> None:
    store.register("retry")
    for target in (S.QUEUED, S.DOWNLOADING, S.ERROR, S.DISCOVERED, S.QUEUED):
        store.transition("retry", target)
    assert store.get("retry").state is S.QUEUED
    path = [(e.from_state, e.to_state) for e in store.events(model_id="retry", kind="state")]
    assert path == [
        ("uninitialized", "discovered"),
        ("discovered", "queued"),
        ("queued", "downloading"),
        ("downloading", "error"),
        ("error", "discovered"),
        ("discovered", "queued"),
    ]


@pytest.mark.parametrize("state", [S.DISCOVERED, S.ERROR])
def test_install_continues_a_registered_model_and_keeps_what_it_was_given(
    store: Store, tmp_path: Path, state: LifecycleState
) -> None:
    store.register(
        "planned", name="Planned", source="https://example.invalid/p.gguf", priority="high",
        metadata={"from": "catalog"},
    )  # fmt: skip
    if state is S.ERROR:
        for step in (S.QUEUED, S.ERROR):
            store.transition("planned", step)
    model = store.install("planned", [make_gguf(tmp_path / "planned.gguf", "planned")])
    assert model.state is S.READY
    assert model.files[0].rel_path == "planned.gguf"
    assert (model.name, model.source, model.priority) == (
        "Planned", "https://example.invalid/p.gguf", Priority.HIGH,
    )  # fmt: skip
    assert model.metadata == {"from": "catalog"}
    assert store.events(model_id="planned", kind="discarded") == []
    assert lock_files(store) == []


def test_a_failed_install_of_a_registered_model_keeps_the_record_for_a_retry(
    store: Store, tmp_path: Path
) -> None:
    store.register("planned", source="https://example.invalid/p.gguf")
    not_gguf = tmp_path / "planned.gguf"
    not_gguf.write_bytes(b"not a gguf file at all")
    with pytest.raises(ImportModelError):
        store.install("planned", [not_gguf])
    model = store.get("planned")
    assert (model.state, model.source, model.files) == (
        S.DISCOVERED, "https://example.invalid/p.gguf", (),
    )  # fmt: skip
    states = [(e.from_state, e.to_state) for e in store.events(model_id="planned", kind="state")]
    assert states[-2:] == [("validating", "error"), ("error", "discovered")]


def test_observers_see_every_change_of_install_and_removal(store: Store, tmp_path: Path) -> None:
    seen: list[StateChange] = []
    store.add_observer(seen.append)
    store.install("obs", [make_gguf(tmp_path / "obs.gguf", "obs")], placement="copy")
    store.remove("obs")
    assert [(c.model_id, c.from_state, c.to_state) for c in seen] == [
        ("obs", S.UNINITIALIZED, S.DISCOVERED),
        ("obs", S.DISCOVERED, S.VALIDATING),
        ("obs", S.VALIDATING, S.VALIDATED),
        ("obs", S.VALIDATED, S.READY),
        ("obs", S.READY, S.CLEANUP),
        ("obs", S.CLEANUP, S.UNINITIALIZED),
    ]
    assert [c.at for c in seen] == sorted(c.at for c in seen)
    store.remove_observer(seen.append)
    store.register("quiet")
    assert len(seen) == 6


def test_failing_observer_is_logged_and_does_not_break_the_store(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(change: StateChange) -> None:
        raise RuntimeError("observer bug")

    seen: list[StateChange] = []
    store.add_observer(broken)
    store.add_observer(seen.append)
    with caplog.at_level(logging.ERROR, logger="iris_models.store"):
        model = store.install("m", [make_gguf(tmp_path / "m.gguf", "m")])
    assert model.state is S.READY
    assert len(seen) == 4  # the observer after the broken one still got every change
    failures = [r for r in caplog.records if "lifecycle observer" in r.getMessage()]
    assert len(failures) == 4
    assert all(r.exc_info and "observer bug" in str(r.exc_info[1]) for r in failures)


# -- install: placements ------------------------------------------------------------------


def test_move_places_the_file_and_deletes_the_source_after_success(
    store: Store, tmp_path: Path
) -> None:
    source = make_gguf(tmp_path / "dl" / "model.gguf", "moved")
    content = source.read_bytes()
    model = store.install("moved", [source])  # move is the default
    assert not source.exists()
    assert model.storage == "managed"
    assert model.path == store.models_dir / "moved" / "model.gguf"
    assert model.path.read_bytes() == content
    assert model.path.stat().st_nlink == 1
    assert model.files[0].sha256 == "sha256:" + hashlib.sha256(content).hexdigest()
    assert model.size_bytes == len(content)


def test_move_keeps_the_source_when_the_expected_digest_does_not_match(
    store: Store, tmp_path: Path
) -> None:
    source = make_gguf(tmp_path / "dl" / "model.gguf", "real")
    other = make_gguf(tmp_path / "other.gguf", "other")
    seen: list[StateChange] = []
    store.add_observer(seen.append)
    with pytest.raises(ImportModelError, match="not the expected") as raised:
        store.install("m", [FileSpec(source, sha256=sha256_of(other))], placement="move")
    assert sha256_of(other) in str(raised.value)
    assert source.exists()
    assert source.stat().st_nlink == 1  # the staging link is gone too
    assert_nothing_left(store, "m")
    assert [(c.from_state, c.to_state) for c in seen][-3:] == [
        (S.VALIDATING, S.ERROR),
        (S.ERROR, S.CLEANUP),
        (S.CLEANUP, S.UNINITIALIZED),
    ]


def test_copy_leaves_the_source_and_owns_an_independent_copy(store: Store, tmp_path: Path) -> None:
    source = make_gguf(tmp_path / "model.gguf", "copied")
    content = source.read_bytes()
    model = store.install("copied", [source], placement=Placement.COPY)
    assert source.read_bytes() == content
    assert model.path is not None
    assert model.path.stat().st_ino != source.stat().st_ino
    source.write_bytes(b"overwritten by the user")
    assert model.path.read_bytes() == content
    assert model.storage == "managed"


def test_hardlink_shares_the_inode_and_removal_keeps_the_original(
    store: Store, tmp_path: Path
) -> None:
    source = make_gguf(tmp_path / "model.gguf", "linked")
    model = store.install("linked", [source], placement="hardlink")
    assert model.path is not None
    assert model.storage == "hardlink"
    assert model.path.stat().st_ino == source.stat().st_ino
    assert source.stat().st_nlink == 2
    assert store.remove("linked") == 0  # the original name keeps the bytes
    assert source.stat().st_nlink == 1
    assert source.is_file()


def test_removing_a_hard_link_whose_original_is_gone_frees_its_bytes(
    store: Store, tmp_path: Path
) -> None:
    source = make_gguf(tmp_path / "model.gguf", "linked")
    model = store.install("linked", [source], placement="hardlink")
    source.unlink()  # the user deleted the download: the store's name is the last one
    assert store.remove("linked") == model.size_bytes


def test_reference_records_the_path_and_remove_leaves_the_file(
    store: Store, tmp_path: Path
) -> None:
    source = make_gguf(tmp_path / "elsewhere" / "model.gguf", "ref")
    content = source.read_bytes()
    model = store.install("ref", [source], placement="reference")
    assert model.storage == "reference"
    assert model.files[0].external
    assert model.path == source.resolve()
    assert not (store.models_dir / "ref").exists()
    with store.use("ref") as path:
        assert path == source.resolve()
    assert store.remove("ref") == 0
    assert source.read_bytes() == content
    assert store.find("ref") is None


@pytest.mark.parametrize("placement", list(Placement))
def test_expected_digest_that_matches_is_recorded(
    store: Store, tmp_path: Path, placement: Placement
) -> None:
    source = make_gguf(tmp_path / "model.gguf", "digest")
    expected = sha256_of(source)
    bare_upper_hex = expected.removeprefix("sha256:").upper()  # normalized on the way in
    model = store.install("d", [FileSpec(source, sha256=bare_upper_hex)], placement=placement)
    assert model.files[0].sha256 == expected
    assert model.state is S.READY


@pytest.mark.parametrize("placement", list(Placement))
def test_digest_mismatch_leaves_nothing_in_the_store(
    store: Store, tmp_path: Path, placement: Placement
) -> None:
    source = make_gguf(tmp_path / "model.gguf", "mismatch")
    content = source.read_bytes()
    wrong = "sha256:" + "0" * 64
    with pytest.raises(ImportModelError, match="nothing was installed"):
        store.install("mm", [FileSpec(source, sha256=wrong)], placement=placement)
    assert_nothing_left(store, "mm")
    assert source.read_bytes() == content
    assert store.list_models() == []


def test_non_gguf_file_is_refused_and_leaves_nothing(store: Store, tmp_path: Path) -> None:
    source = tmp_path / "notes.gguf"
    source.write_text("<html>404 not found</html>\n" * 20)
    with pytest.raises(ImportModelError, match="not a usable GGUF file"):
        store.install("junk", [source])
    assert source.exists()
    assert_nothing_left(store, "junk")


def test_install_records_the_gguf_facts_of_the_model(store: Store, sample_copy: Path) -> None:
    model = store.install(
        "sample",
        [sample_copy],
        placement="copy",
        name="Sample",
        category="chat",
        source="https://example.invalid/sample.gguf",
        priority="high",
        metadata={"license": "mit"},
    )
    assert (model.architecture, model.quantization) == ("llama", "Q4_K_M")
    assert model.parameter_count == 475_904
    assert model.context_length == 2048
    assert model.size_bytes == 345_280
    assert (model.name, model.category, model.priority) == ("Sample", "chat", Priority.HIGH)
    assert model.metadata == {"license": "mit"}
    assert model.installed_at is not None
    assert model.use_count == 0
    assert model.last_used_at is None
    assert model.to_dict()["path"] == str(store.models_dir / "sample" / "sample.gguf")


def test_progress_reports_grow_to_the_total_of_all_files(store: Store, tmp_path: Path) -> None:
    first = make_gguf(tmp_path / "a.gguf", "a", rows=64)
    second = make_gguf(tmp_path / "b.gguf", "b", rows=32)
    total = first.stat().st_size + second.stat().st_size
    reports: list[tuple[int, int]] = []
    store.install(
        "p",
        [first, FileSpec(second, role="extra")],
        placement="copy",
        on_progress=lambda done, whole: reports.append((done, whole)),
    )
    assert reports[-1] == (total, total)
    assert {whole for _, whole in reports} == {total}
    assert [done for done, _ in reports] == sorted(done for done, _ in reports)


def write_split(folder: Path, per_shard: int = 2, n_tensors: int = 5) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    tensors = [(f"t{i}", np.full((i + 1, 8), i, dtype=np.float32), None) for i in range(n_tensors)]
    kvs = [("general.name", "split", VT.STRING, None)]
    write_gguf(folder / "model.gguf", kvs, tensors, split_max_tensors=per_shard)
    total = -(-n_tensors // per_shard)
    return [folder / f"model-{i:05d}-of-{total:05d}.gguf" for i in range(1, total + 1)]


def test_split_model_installs_every_shard_and_a_projector(store: Store, tmp_path: Path) -> None:
    shards = write_split(tmp_path / "dl")
    assert all(shard.is_file() for shard in shards)
    projector = write_gguf(tmp_path / "dl" / "mmproj.gguf", arch="clip")
    specs = [FileSpec(shard, role="shard") for shard in reversed(shards)]
    specs.append(FileSpec(projector, role="projector"))
    model = store.install("split", specs, placement="copy")
    folder = store.models_dir / "split"
    assert model.path == folder / shards[0].name
    with store.use("split") as path:
        assert path == folder / shards[0].name
    assert sorted(f.rel_path for f in model.files) == sorted(p.name for p in [*shards, projector])
    assert {f.rel_path: f.role for f in model.files}["mmproj.gguf"] == "projector"
    sizes = [p.stat().st_size for p in [*shards, projector]]
    assert model.size_bytes == sum(sizes)
    assert model.parameter_count == sum((i + 1) * 8 for i in range(5))
    for model_file in model.files:
        assert model_file.sha256 == sha256_of(model_file.path)


def test_split_model_with_a_missing_shard_is_refused(store: Store, tmp_path: Path) -> None:
    shards = write_split(tmp_path / "dl")
    specs = [FileSpec(shard, role="shard") for shard in shards[:-1]]
    with pytest.raises(ImportModelError, match=shards[-1].name):
        store.install("split", specs, placement="copy")
    assert_nothing_left(store, "split")


@pytest.mark.parametrize(
    "rel_path", ["../escape.gguf", "/abs/model.gguf", ".hidden.gguf", "sub/../x.gguf", "a\\b.gguf"]
)
def test_file_name_outside_the_model_folder_is_refused(
    store: Store, tmp_path: Path, rel_path: str
) -> None:
    source = make_gguf(tmp_path / "model.gguf", "bad-name")
    with pytest.raises(ImportModelError, match="must stay inside its folder"):
        store.install("bad", [FileSpec(source, rel_path=rel_path)], placement="copy")
    assert_nothing_left(store, "bad")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.gguf", "store"]


def test_nested_file_name_inside_the_folder_is_accepted(store: Store, tmp_path: Path) -> None:
    source = make_gguf(tmp_path / "model.gguf", "nested")
    model = store.install("n", [FileSpec(source, rel_path="q4/model.gguf")], placement="copy")
    assert model.path == store.models_dir / "n" / "q4" / "model.gguf"
    assert model.path.is_file()


def test_same_file_name_twice_is_refused(store: Store, tmp_path: Path) -> None:
    first = make_gguf(tmp_path / "one" / "Model.gguf", "one")
    second = make_gguf(tmp_path / "two" / "model.gguf", "two")
    with pytest.raises(ImportModelError, match="given twice"):
        store.install("dup", [first, FileSpec(second, role="extra")], placement="copy")
    assert_nothing_left(store, "dup")


def test_missing_file_or_unknown_role_is_refused(store: Store, tmp_path: Path) -> None:
    with pytest.raises(ImportModelError, match="does not exist"):
        store.install("missing", [tmp_path / "nowhere.gguf"])
    with pytest.raises(ImportModelError, match="is not a regular file"):
        store.install("missing", [tmp_path])
    source = make_gguf(tmp_path / "model.gguf", "role")
    with pytest.raises(ImportModelError, match="unknown file role 'weights'"):
        store.install("missing", [FileSpec(source, role="weights")])
    with pytest.raises(ImportModelError, match="no files"):
        store.install("missing", [])
    assert_nothing_left(store, "missing")
    assert source.exists()


def test_installed_id_is_taken_and_the_second_source_stays(store: Store, tmp_path: Path) -> None:
    store.install("taken", [make_gguf(tmp_path / "a.gguf", "a")])
    second = make_gguf(tmp_path / "b.gguf", "b")
    with pytest.raises(ModelExistsError, match="already installed") as raised:
        store.install("taken", [second])
    assert raised.value.model_id == "taken"
    assert second.exists()
    assert store.get("taken").files[0].rel_path == "a.gguf"
    assert staging_entries(store) == []


# -- model ids ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model_id", ["", "a/b", "..", "a..b", ".x", "a\\b", "x" * 129, "-lead", "sp ace", "é"]
)
def test_validate_model_id_rejects_what_cannot_name_one_folder(model_id: str) -> None:
    with pytest.raises(InvalidModelIdError) as raised:
        validate_model_id(model_id)
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize("model_id", [None, 5, b"model", Path("model")])
def test_validate_model_id_rejects_non_strings(model_id: object) -> None:
    with pytest.raises(InvalidModelIdError, match="must be a string"):
        validate_model_id(model_id)


@pytest.mark.parametrize(
    "model_id",
    ["llama-3.2-1b-instruct", "Qwen2.5-0.5B+Q4_K_M", "phi3", "7b", "gemma.3_270m", "x" * 128],
)
def test_validate_model_id_accepts_typical_ids(model_id: str) -> None:
    assert validate_model_id(model_id) == model_id


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Llama-3.2-1B-Instruct-Q4_K_M.gguf", "llama-3.2-1b-instruct-q4_k_m"),
        ("qwen2.5:7b", "qwen2.5-7b"),
        ("hf.co/Org/Model Name", "hf.co-org-model-name"),
        ("  ..weird..name..  ", "weird.name"),
        ("MODEL.GGUF", "model"),
    ],
)
def test_derive_model_id_examples(name: str, expected: str) -> None:
    assert derive_model_id(name) == expected


@pytest.mark.parametrize("name", ["", ".gguf", "ÄÖÜ", "::// ..."])
def test_derive_model_id_without_usable_characters_asks_for_an_id(name: str) -> None:
    with pytest.raises(InvalidModelIdError, match="give one explicitly"):
        derive_model_id(name)


ASCII_ALNUM = st.sampled_from("abcxyzABCXYZ0189")


@given(st.text(max_size=150), ASCII_ALNUM, st.text(max_size=150))
def test_derive_model_id_gives_a_valid_lower_case_id(prefix: str, alnum: str, suffix: str) -> None:
    name = prefix + alnum + suffix
    assume(not name.lower().endswith(".gguf"))
    model_id = derive_model_id(name)
    assert validate_model_id(model_id) == model_id
    assert model_id == model_id.lower()


def test_store_entry_points_refuse_path_like_ids(store: Store, tmp_path: Path) -> None:
    source = make_gguf(tmp_path / "m.gguf", "m")
    calls = [
        lambda: store.install("../escape", [source]),
        lambda: store.find("a/b"),
        lambda: store.remove(".."),
        lambda: store.register(".hidden"),
        lambda: store.pin("a\\b"),
    ]
    for call in calls:
        with pytest.raises(InvalidModelIdError):
            call()
    with pytest.raises(InvalidModelIdError), store.use("../x"):
        pass
    assert source.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.gguf", "store"]


def test_ids_ignore_case(store: Store, tmp_path: Path) -> None:
    store.install("Model-A", [make_gguf(tmp_path / "a.gguf", "a")])
    with pytest.raises(ModelExistsError):
        store.install("model-a", [make_gguf(tmp_path / "b.gguf", "b")])
    with pytest.raises(ModelExistsError):
        store.register("MODEL-A")
    assert store.get("MODEL-A").id == "Model-A"
    assert (store.models_dir / "model-a").is_dir()
    assert store.path("model-A") == store.models_dir / "model-a" / "a.gguf"
    assert [m.id for m in store.list_models()] == ["Model-A"]
    store.pin("MODEL-a")
    assert store.get("Model-A").pinned
    assert store.remove("model-a") > 0
    assert store.list_models() == []


def test_use_accepts_the_id_in_any_case(store: Store, tmp_path: Path) -> None:
    store.install("Model-A", [make_gguf(tmp_path / "a.gguf", "a")])
    with store.use("mOdEl-A") as path:
        assert path == store.models_dir / "model-a" / "a.gguf"
    assert store.get("Model-A").use_count == 1


# -- use() --------------------------------------------------------------------------------


@pytest.fixture
def installed(store: Store, tmp_path: Path) -> str:
    store.install("used", [make_gguf(tmp_path / "used.gguf", "used")])
    return "used"


def test_use_counts_each_use_and_stamps_the_time(store: Store, installed: str) -> None:
    before = time.time()
    with store.use(installed) as path:
        assert path.read_bytes()[:4] == b"GGUF"
    with store.use(installed):
        pass
    after = time.time()
    model = store.get(installed)
    assert model.use_count == 2
    assert model.last_used_at is not None
    assert before <= model.last_used_at <= after
    assert lock_files(store) == []


def test_model_in_use_cannot_be_removed_or_evicted(
    store: Store, installed: str, tmp_path: Path
) -> None:
    store.install("idle", [make_gguf(tmp_path / "idle.gguf", "idle")])
    everything = 10 * store.stats().owned_bytes
    with store.use(installed):
        with pytest.raises(ModelInUseError, match="in use") as raised:
            store.remove(installed, wait_s=0)
        assert raised.value.model_id == installed
        plan = store.plan_eviction(free_bytes=everything)
        assert [item.model_id for item in plan.evictions] == ["idle"]
        assert plan.protected == {"in_use": 1}
        store.set_policy(CachePolicy(min_free_bytes=0, max_size_bytes=0))
        outcome = store.gc()
        assert outcome.result is not None
        assert [item.model_id for item in outcome.result.evicted] == ["idle"]
        assert outcome.plan.protected == {"in_use": 1}
    assert [m.id for m in store.list_models()] == [installed]
    assert store.remove(installed) > 0


def test_lease_ends_when_the_block_raises(store: Store, installed: str) -> None:
    with pytest.raises(KeyError), store.use(installed):
        raise KeyError("the app failed while using the model")
    assert store.remove(installed) > 0
    assert lock_files(store) == []


def test_use_of_a_missing_model_raises_not_found(store: Store) -> None:
    with pytest.raises(ModelNotFoundError, match="no model 'absent'"), store.use("absent"):
        pass
    assert lock_files(store) == []


@pytest.mark.parametrize("state", [S.DISCOVERED, S.QUEUED, S.DOWNLOADING, S.ERROR])
def test_use_of_a_model_that_is_not_ready_raises_not_ready(
    store: Store, state: LifecycleState
) -> None:
    store.register("pending")
    route = {
        S.DISCOVERED: [],
        S.QUEUED: [S.QUEUED],
        S.DOWNLOADING: [S.DOWNLOADING],
        S.ERROR: [S.QUEUED, S.ERROR],
    }[state]
    for step in route:
        store.transition("pending", step)
    with (
        pytest.raises(ModelNotReadyError, match=f"it is {state.value}") as raised,
        store.use("pending"),
    ):
        pass
    assert raised.value.state == state.value
    assert store.get("pending").use_count == 0


def test_transition_cannot_make_a_model_without_files_installed(store: Store) -> None:
    store.register("bare")
    with pytest.raises(LifecycleError, match="no verified files"):
        store.transition("bare", S.VALIDATED)
    assert store.get("bare").state is S.DISCOVERED


def test_use_of_a_ready_model_whose_file_records_are_gone_raises_a_store_error(
    store: Store, installed: str
) -> None:
    with store.db.write() as sql:  # what a hand-edited database could hold
        sql.execute("DELETE FROM files WHERE model_id = ?", (installed,))
    with pytest.raises(StoreError, match="no files recorded"), store.use(installed):
        pass
    assert store.get(installed).use_count == 0


def test_concurrent_uses_from_many_threads_are_all_counted(store: Store, installed: str) -> None:
    threads, uses_each = 8, 25
    start = threading.Barrier(threads, timeout=30)

    def worker() -> int:
        start.wait()
        for _ in range(uses_each):
            with store.use(installed) as path:
                assert path.is_file()
        return uses_each

    with ThreadPoolExecutor(threads) as pool:
        done = [future.result() for future in [pool.submit(worker) for _ in range(threads)]]
    assert sum(done) == threads * uses_each
    assert store.get(installed).use_count == threads * uses_each
    assert lock_files(store) == []


CHILD_LEASE = textwrap.dedent(
    """
    import sys
    from iris_models.store import Store

    store = Store(sys.argv[1], auto_cleanup=False)
    with store.use(sys.argv[2]) as path:
        print(path, flush=True)
        sys.stdin.readline()
    print("released", flush=True)
    """
)


@contextlib.contextmanager
def child_using(store: Store, model_id: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Another process inside ``with store.use(model_id)``, until it reads a line."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD_LEASE, str(store.root), model_id],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        first = child.stdout.readline()
        if not first:
            child.wait(timeout=30)
            pytest.fail(f"the child process failed: {child.stderr.read() if child.stderr else ''}")
        yield child, first.strip()
    finally:
        if child.poll() is None:
            child.kill()
        child.communicate(timeout=30)


def test_lease_of_another_process_protects_until_that_process_is_killed(
    store: Store, installed: str, tmp_path: Path
) -> None:
    store.install("idle", [make_gguf(tmp_path / "idle.gguf", "idle")])
    everything = 10 * store.stats().owned_bytes
    with child_using(store, installed) as (child, child_path):
        assert child_path == str(store.path(installed))
        with pytest.raises(ModelInUseError):
            store.remove(installed, wait_s=0.05)
        plan = store.plan_eviction(free_bytes=everything)
        assert [item.model_id for item in plan.evictions] == ["idle"]
        assert plan.protected == {"in_use": 1}
        store.set_policy(CachePolicy(min_free_bytes=0, max_size_bytes=0))
        outcome = store.gc()
        assert outcome.result is not None
        assert [item.model_id for item in outcome.result.evicted] == ["idle"]
        assert [m.id for m in store.list_models()] == [installed]

        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    # The crashed process left its lock file behind, but the kernel dropped its lock.
    assert [p.name for p in lock_files(store)] == [f"{installed}.lock"]
    assert store.plan_eviction(free_bytes=everything).protected == {}
    assert store.remove(installed, wait_s=0) > 0
    assert store.find(installed) is None


def test_use_in_another_process_is_counted_and_its_lease_ends_with_the_block(
    store: Store, installed: str
) -> None:
    with child_using(store, installed) as (child, _path):
        assert store.get(installed).use_count == 1
        assert child.stdin is not None
        child.stdin.write("done\n")
        child.stdin.flush()
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "released"
        assert child.wait(timeout=30) == 0
    assert lock_files(store) == []
    assert store.remove(installed, wait_s=0) > 0


# -- statistics ---------------------------------------------------------------------------


def test_stats_split_bytes_by_category_state_and_ownership(store: Store, tmp_path: Path) -> None:
    chat = store.install("chat", [make_gguf(tmp_path / "c.gguf", "c", rows=40)], placement="copy")
    vision = store.install(
        "vision", [make_gguf(tmp_path / "v.gguf", "v", rows=20)], category="vision"
    )
    ref = store.install(
        "ref", [make_gguf(tmp_path / "r.gguf", "r", rows=10)], placement="reference"
    )
    link = store.install(
        "link", [make_gguf(tmp_path / "l.gguf", "l", rows=5)], placement="hardlink"
    )
    store.register("coming", category="vision")
    for model_id in ("chat", "chat", "vision"):
        with store.use(model_id):
            pass
    stats = store.stats()
    assert stats.model_count == 5
    assert stats.owned_bytes == chat.size_bytes + vision.size_bytes
    assert stats.referenced_bytes == ref.size_bytes + link.size_bytes
    assert stats.bytes_by_category == {
        "llm": chat.size_bytes + ref.size_bytes + link.size_bytes,
        "vision": vision.size_bytes,
    }
    assert stats.bytes_by_state == {
        "ready": chat.size_bytes + vision.size_bytes + ref.size_bytes + link.size_bytes,
        "discovered": 0,
    }
    assert stats.total_uses == 3
    assert [m.id for m in stats.models] == ["chat", "vision", "ref", "link", "coming"]
    assert {m.id: m.use_count for m in stats.models}["chat"] == 2
    assert stats.disk_total_bytes >= stats.disk_free_bytes > 0
    assert stats.evicted_count == 0
    assert stats.recent_evictions == ()
    assert stats.to_dict()["models"][0]["id"] == "chat"


# -- ModelRepository ----------------------------------------------------------------------


def test_repository_lists_finds_and_filters_by_category(store: Store, tmp_path: Path) -> None:
    store.install("b-chat", [make_gguf(tmp_path / "b.gguf", "b")])
    store.install("a-vision", [make_gguf(tmp_path / "a.gguf", "a")], category="vision")
    store.install("c-chat", [make_gguf(tmp_path / "c.gguf", "c")])
    repository = ModelRepository(store)
    assert [m.id for m in repository.all()] == ["a-vision", "b-chat", "c-chat"]
    assert [m.id for m in repository.by_category("llm")] == ["b-chat", "c-chat"]
    assert repository.by_category("audio") == []
    found = repository.by_id("B-CHAT")
    assert found is not None
    assert found.id == "b-chat"
    assert repository.by_id("nothing") is None


def test_repository_save_registers_a_new_model_as_discovered(store: Store, tmp_path: Path) -> None:
    template = store.install("template", [make_gguf(tmp_path / "t.gguf", "t")])
    repository = ModelRepository(store)
    new = dataclasses.replace(
        template,
        id="planned",
        name="Planned model",
        category="embedding",
        priority=Priority.LOW,
        pinned=True,
        source="https://example.invalid/planned.gguf",
        metadata={"dims": 384},
    )
    saved = repository.save(new)
    assert saved.state is S.DISCOVERED
    assert saved.files == ()
    assert (saved.name, saved.category, saved.priority, saved.pinned) == (
        "Planned model",
        "embedding",
        Priority.LOW,
        True,
    )
    assert saved.metadata == {"dims": 384}
    assert saved.use_count == 0


def test_repository_save_updates_fields_and_keeps_the_state(store: Store, tmp_path: Path) -> None:
    model = store.install("kept", [make_gguf(tmp_path / "k.gguf", "k")])
    with store.use("kept"):
        pass
    repository = ModelRepository(store)
    changed = dataclasses.replace(
        store.get("kept"),
        name="Renamed",
        category="code",
        priority=Priority.CRITICAL,
        pinned=True,
        state=S.ERROR,  # not the repository's to change
        use_count=99,
        metadata={"note": "x"},
    )
    saved = repository.save(changed)
    assert saved.state is S.READY
    assert saved.use_count == 1
    assert saved.files == model.files
    assert (saved.name, saved.category, saved.priority, saved.pinned) == (
        "Renamed",
        "code",
        Priority.CRITICAL,
        True,
    )
    assert saved.metadata == {"note": "x"}
    with pytest.raises(InvalidModelIdError):
        repository.save(dataclasses.replace(changed, id="../x"))


def test_repository_update_usage_counts_a_use(store: Store, installed: str) -> None:
    repository = ModelRepository(store)
    repository.update_usage(installed)
    repository.update_usage(installed)
    model = store.get(installed)
    assert model.use_count == 2
    assert model.last_used_at is not None
    with pytest.raises(ModelNotFoundError):
        repository.update_usage("ghost")
    store.register("pending")
    with pytest.raises(ModelNotReadyError):
        repository.update_usage("pending")


# -- pressure -----------------------------------------------------------------------------


def filesystem_type(path: Path) -> str:
    return subprocess.run(
        ["stat", "-f", "-c", "%T", str(path)], check=True, capture_output=True, text=True
    ).stdout.strip()


def test_relieve_pressure_dry_run_reports_and_changes_nothing(store: Store, installed: str) -> None:
    store.set_policy(CachePolicy(min_free_bytes=0, max_size_bytes=0))
    report = store.relieve_pressure(dry_run=True)
    assert isinstance(report, PressureReport)
    assert report.memory_level in ("ok", "warning", "critical")
    available = report.memory_available_bytes
    expected_level = (
        "critical" if available < 200_000_000 else "warning" if available < 500_000_000 else "ok"
    )
    assert report.memory_level == expected_level
    assert report.ram_backed == (filesystem_type(store.root) in ("tmpfs", "ramfs"))
    assert report.disk_free_bytes > 0
    assert report.result is None
    assert [item.model_id for item in report.plan.evictions] == [installed]
    assert store.get(installed).state is S.READY

    applied = store.relieve_pressure()
    assert applied.result is not None
    assert [item.model_id for item in applied.result.evicted] == [installed]
    assert store.find(installed) is None


def test_relieve_pressure_without_disk_ignores_the_size_limit(store: Store, installed: str) -> None:
    if (
        filesystem_type(store.root) in ("tmpfs", "ramfs")
        and psutil.virtual_memory().available < 600_000_000
    ):
        pytest.skip("the store is in memory and memory is short: memory pressure applies")
    store.set_policy(CachePolicy(min_free_bytes=0, max_size_bytes=0))
    report = store.relieve_pressure(disk=False)
    assert report.plan.needs == ()
    assert report.result is None
    assert store.get(installed).state is S.READY


def test_store_in_shared_memory_is_ram_backed() -> None:
    shm = Path("/dev/shm")
    require_service(
        shm.is_dir() and filesystem_type(shm) == "tmpfs", "/dev/shm is not a tmpfs here"
    )
    root = shm / f"iris-models-test-{os.getpid()}-{time.monotonic_ns()}"
    try:
        with Store(root) as in_memory:
            report = in_memory.relieve_pressure(dry_run=True)
        assert report.ram_backed is True
    finally:
        shutil.rmtree(root, ignore_errors=True)
