"""Invariants a review of the store asked for: a finished install is never undone, the
store's own files are never installed again, fsck keeps registered records and says only
what it did, an orphan folder is never deleted unadopted, no lifecycle state is a dead end,
connections do not pile up per thread, and listing never evicts."""

from __future__ import annotations

import dataclasses
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import iris_models
from iris_models.cli import main
from iris_models.errors import ImportModelError
from iris_models.store import CachePolicy, LifecycleState, StateChange, Store

SAMPLE = Path(iris_models.__file__).parent / "data" / "sample.gguf"
S = LifecycleState


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "store") as opened:
        yield opened


def sample(tmp_path: Path, name: str) -> Path:
    path = tmp_path / "downloads" / f"{name}.gguf"
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SAMPLE, path)
    return path


def test_an_interrupt_in_an_observer_after_ready_does_not_undo_the_install(
    store: Store, tmp_path: Path
) -> None:
    def interrupt_at_ready(change: StateChange) -> None:
        if change.to_state is S.READY:
            raise KeyboardInterrupt

    store.add_observer(interrupt_at_ready)
    with pytest.raises(KeyboardInterrupt):
        store.install("m", [sample(tmp_path, "m")])
    model = store.get("m")
    assert model.state is S.READY
    assert model.path is not None
    assert model.path.read_bytes() == SAMPLE.read_bytes()
    store.remove_observer(interrupt_at_ready)
    assert store.fsck().ok


def test_a_file_of_the_store_cannot_be_installed_again(store: Store, tmp_path: Path) -> None:
    owner = store.install("owner", [sample(tmp_path, "owner")])
    assert owner.path is not None
    with pytest.raises(ImportModelError, match="inside the store"):
        store.install("thief", [owner.path], placement="move")
    assert store.get("owner").state is S.READY
    assert owner.path.read_bytes() == SAMPLE.read_bytes()
    assert store.find("thief") is None


def test_importing_a_folder_that_holds_the_store_skips_the_stores_files(tmp_path: Path) -> None:
    with Store(tmp_path / "models" / "store") as store:
        store.install("inside", [sample(tmp_path, "inside")])
        shutil.copyfile(SAMPLE, tmp_path / "models" / "outside.gguf")
        report = store.import_path(tmp_path / "models")
        assert [model.id for model in report.imported] == ["outside"]
        assert report.skipped == ()


def test_fsck_repair_keeps_a_registered_model_that_waits_for_its_files(store: Store) -> None:
    store.register("planned", source="https://example.invalid/p.gguf", priority="high")
    report = store.fsck(repair=True)
    assert report.issues == ()
    assert store.get("planned").state is S.DISCOVERED


def test_fsck_marks_an_executing_model_with_a_missing_file_failed(
    store: Store, tmp_path: Path
) -> None:
    model = store.install("busy", [sample(tmp_path, "busy")])
    store.transition("busy", S.EXECUTING)
    assert model.path is not None
    model.path.unlink()
    report = store.fsck(repair=True)
    assert [(issue.kind, issue.action is not None) for issue in report.issues] == [
        ("missing_file", True)
    ]
    assert store.get("busy").state is S.ERROR


def test_a_model_an_engine_initialized_can_still_be_removed(store: Store, tmp_path: Path) -> None:
    store.install("engine", [sample(tmp_path, "engine")])
    for state in (S.INITIALIZING, S.INITIALIZED):
        store.transition("engine", state)
    store.remove("engine")
    assert store.find("engine") is None


def test_an_orphan_folder_that_cannot_be_adopted_is_kept_and_reported(
    tmp_path: Path,
) -> None:
    root = tmp_path / "store"
    orphan = root / "models" / "lost"
    orphan.mkdir(parents=True)
    shutil.copyfile(SAMPLE, orphan / "lost.gguf")
    with Store(root, policy=CachePolicy(max_size_bytes=1000, min_free_bytes=0)) as store:
        report = store.fsck(repair=True)
        (issue,) = report.issues
        assert issue.kind == "orphan_folder"
        assert issue.action is None
        assert "could not adopt it" in issue.detail
        assert not report.ok
        assert (orphan / "lost.gguf").read_bytes() == SAMPLE.read_bytes()
        store.gc()  # cleanup never takes an orphan's files
        assert (orphan / "lost.gguf").exists()
        store.set_policy(CachePolicy(min_free_bytes=0))
        adopted = store.fsck(repair=True)
        assert adopted.ok
        assert store.get("lost").state is S.READY


def test_connections_of_finished_threads_are_closed(store: Store) -> None:
    for _ in range(50):
        thread = threading.Thread(target=store.list_models)
        thread.start()
        thread.join()
    assert len(store.db._all_holders) <= 2


def test_listing_and_paths_from_the_command_line_never_evict(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store.install("a", [sample(tmp_path, "a")])
    store.set_policy(CachePolicy(max_size_bytes=1, min_free_bytes=0, cleanup_interval_s=0))
    for command in (["ls", "--json"], ["path", "a"], ["stats"]):
        assert main([*command, "--store", str(store.root)]) == 0
    capsys.readouterr()
    assert store.get("a").state is S.READY
    assert main(["gc", "--store", str(store.root)]) == 0
    assert store.find("a") is None


def test_listed_models_are_complete_dataclass_values(store: Store, tmp_path: Path) -> None:
    store.install("a", [sample(tmp_path, "a")], metadata={"k": "v"}, priority="high")
    (listed,) = store.list_models()
    # Built without __init__ for speed: every field is there, and equal to a normal build.
    assert set(vars(listed)) == {field.name for field in dataclasses.fields(listed)}
    assert dataclasses.replace(listed) == listed == store.get("a")
    assert hash(listed) == hash(dataclasses.replace(listed))
    with pytest.raises(dataclasses.FrozenInstanceError):
        listed.name = "changed"  # type: ignore[misc]


def test_an_install_never_deletes_a_folder_the_database_does_not_know(
    store: Store, tmp_path: Path
) -> None:
    unknown = store.models_dir / "m"
    unknown.mkdir(parents=True)
    (unknown / "only-copy.gguf").write_bytes(SAMPLE.read_bytes())
    store.install("m", [sample(tmp_path, "m")])
    kept = list((store.root / ".orphans").glob("m.*/only-copy.gguf"))
    assert [path.read_bytes() == SAMPLE.read_bytes() for path in kept] == [True]
    store.gc()
    assert all(path.exists() for path in kept)
    issues = store.fsck().issues
    assert [issue.kind for issue in issues] == ["orphan_folder"]
