"""The store under abuse: processes SIGKILLed at random points of install, remove, eviction
and a schema migration; several processes and threads on one store at once; damaged, foreign,
newer, read-only and full stores; and model ids that try to leave the store's folder."""

from __future__ import annotations

import contextlib
import errno
import importlib
import json
import multiprocessing
import os
import random
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest
from tests.gguf_py_files import VT, write_gguf
from tests.services import require_service

from iris_models.cli import main
from iris_models.errors import (
    InsufficientSpaceError,
    InvalidModelIdError,
    StoreCorruptError,
    StoreVersionError,
)
from iris_models.store import CachePolicy, InstalledModel, LifecycleState, StateChange, Store
from iris_models.store._database import Database
from iris_models.store._schema import MIGRATIONS
from iris_models.verify import file_digest

S = LifecycleState
MIB = 1 << 20
# No free-disk floor: the machine's own free space must not decide what these tests see.
NO_FLOOR = CachePolicy(min_free_bytes=0)

# Kill trials: each kill lands at a random moment (seeded) from the start of the operation to a
# quarter beyond the shortest time it took uninterrupted.
INSTALL_TRIALS = 12  # per placement, three placements
REMOVE_TRIALS = 20
EVICTION_TRIALS = 15
MIGRATION_TRIALS = 15
MIGRATION_ROWS = 100_000


# -- helpers ----------------------------------------------------------------------------------


def make_gguf(path: Path, name: str, size_bytes: int) -> Path:
    """A real GGUF file of about ``size_bytes`` (one float32 tensor); a different ``name``
    gives different bytes and digest."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tensor = np.arange(size_bytes // 4, dtype=np.float32)
    kvs = [("general.name", name, VT.STRING, None)]
    return write_gguf(path, kvs, [("weights", tensor, None)])


def digest_of(path: Path) -> str:
    return str(file_digest(path, "sha256"))


def leftovers(root: Path) -> list[Path]:
    """Entries of the staging and trash folders."""
    found: list[Path] = []
    for name in (".staging", ".trash"):
        with contextlib.suppress(FileNotFoundError):
            found.extend(sorted((root / name).iterdir()))
    return found


FileDigests = dict[Path, str | None]


def files_of(model: InstalledModel) -> FileDigests:
    return {model_file.path: model_file.sha256 for model_file in model.files}


def ready_models(root: Path) -> dict[str, FileDigests]:
    """Every READY model with the digest recorded for each of its files."""
    with Store(root) as store:
        return {model.id: files_of(model) for model in store.list_models(state=S.READY)}


def recover_and_check(
    root: Path, must_stay_ready: Mapping[str, FileDigests]
) -> dict[str, InstalledModel]:
    """What every crash must allow: the store opens, fsck --repair leaves nothing unrepaired,
    a second fsck finds nothing, no staging or trash entry is left, every model in
    ``must_stay_ready`` is READY with the same files, and every model left is READY with
    files whose bytes hash to the recorded digest. Returns the models left, by id."""
    store = Store(root)
    try:
        repaired = store.fsck(repair=True)
        assert repaired.ok, repaired.to_dict()
        report = store.fsck()
        assert report.ok, report.to_dict()
        assert report.issues == ()
        assert leftovers(root) == []
        models = {model.id: model for model in store.list_models()}
    finally:
        store.close()
    for model_id, files in must_stay_ready.items():
        assert model_id in models, f"{model_id} was READY before the crash and is gone"
        assert files_of(models[model_id]) == files
    for model in models.values():
        assert model.state is S.READY, model
        for path, recorded in files_of(model).items():
            assert digest_of(path) == recorded, path
    return models


def _fork() -> int:
    # The test process runs no thread of its own when it forks (file_digest's worker threads
    # have been joined), but Python 3.12+ may still count one that is exiting.
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", r".*use of fork\(\) may lead to deadlocks", DeprecationWarning
        )
        return os.fork()


def _read_to_end(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def run_and_kill(
    prepare: Callable[[], Callable[[], object]], kill_after_s: float | None
) -> float | None:
    """Forks a child that calls ``prepare()`` (opening the store), then the operation it
    returns; ``kill_after_s`` after the operation started the child gets SIGKILL (None: it
    runs to the end). Returns the seconds the operation took if it finished before the
    kill, None if the kill interrupted it.

    The caller must hold no open Store: SQLite connections must not cross a fork."""
    read_fd, write_fd = os.pipe()
    pid = _fork()
    if pid == 0:  # the child
        status = 1
        try:
            os.close(read_fd)
            operation = prepare()
            os.write(write_fd, b"s")
            begun = time.monotonic()
            operation()
            os.write(write_fd, f"f{time.monotonic() - begun!r}".encode())
            status = 0
        except BaseException:  # noqa: BLE001 - reported to the parent
            traceback.print_exc()
            sys.stderr.flush()
        finally:
            os._exit(status)
    os.close(write_fd)
    try:
        started = os.read(read_fd, 1)
        if started == b"s" and kill_after_s is not None:
            time.sleep(kill_after_s)
            os.kill(pid, signal.SIGKILL)
        _, wait_status = os.waitpid(pid, 0)
        rest = _read_to_end(read_fd)
    finally:
        os.close(read_fd)
    killed = os.WIFSIGNALED(wait_status) and os.WTERMSIG(wait_status) == signal.SIGKILL
    if started != b"s" or not (killed or os.WEXITSTATUS(wait_status) == 0):
        pytest.fail("the child process failed on its own (its traceback is in the stderr)")
    return float(rest[1:]) if rest.startswith(b"f") else None


class KillSchedule:
    """Seeded random kill delays, scaled to the operation's own duration: the shortest one
    seen so far, starting with the first trial, which is not killed."""

    def __init__(self, seed: str, trials: int):
        self.rng = random.Random(seed)
        self.trials = trials
        self.duration_s: float | None = None
        self.interrupted = 0

    def __iter__(self) -> Iterator[float | None]:
        yield None
        for _ in range(self.trials):
            assert self.duration_s is not None
            yield self.rng.uniform(0.0, 1.25 * self.duration_s)

    def record(self, delay_s: float | None, duration_s: float | None) -> None:
        if duration_s is None:
            assert delay_s is not None
            self.interrupted += 1
        elif self.duration_s is None or duration_s < self.duration_s:
            self.duration_s = duration_s

    def assert_kills_landed(self) -> None:
        """Most delays fall inside the operation: if the kills all came after it, the trials
        proved nothing."""
        assert self.interrupted >= self.trials // 3, (self.interrupted, self.duration_s)


def install_bystanders(root: Path, tmp_path: Path) -> dict[str, FileDigests]:
    """Two READY models that no crash may touch: one pinned, one of high priority."""
    with Store(root, policy=NO_FLOOR) as store:
        store.install("keep-a", [make_gguf(tmp_path / "keep-a.gguf", "keep-a", MIB)], pinned=True)
        store.install(
            "keep-b", [make_gguf(tmp_path / "keep-b.gguf", "keep-b", MIB)], priority="high"
        )
    return ready_models(root)


@pytest.fixture
def other_file_system_dir() -> Iterator[Path]:
    """A folder on another file system than tmp_path (/dev/shm), so that a move copies."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == Path(tempfile.gettempdir()).stat().st_dev:
        pytest.skip("no /dev/shm on another file system than the temporary folder")
    folder = Path(tempfile.mkdtemp(prefix="iris-models-crash-", dir=shm))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- crash safety: install --------------------------------------------------------------------


@pytest.mark.parametrize("placement", ["move", "move_across_file_systems", "copy"])
def test_install_killed_at_any_point_leaves_the_bytes_in_the_source_or_a_ready_model(
    tmp_path: Path, placement: str, request: pytest.FixtureRequest
) -> None:
    root = tmp_path / "store"
    bystanders = install_bystanders(root, tmp_path)
    template = make_gguf(tmp_path / "template.gguf", "crash-install", 4 * MIB)
    template_digest = digest_of(template)
    if placement == "move_across_file_systems":
        sources = request.getfixturevalue("other_file_system_dir")
        mode = "move"
    else:
        sources = tmp_path / "downloads"
        sources.mkdir()
        mode = placement
    schedule = KillSchedule(f"install-{placement}", INSTALL_TRIALS)
    for trial, delay_s in enumerate(schedule):
        model_id = f"new-{trial}"
        source = sources / f"{model_id}.gguf"
        shutil.copyfile(template, source)

        def prepare(model_id: str = model_id, source: Path = source) -> Callable[[], object]:
            store = Store(root)
            return lambda: store.install(model_id, [source], placement=mode)

        duration_s = run_and_kill(prepare, delay_s)
        schedule.record(delay_s, duration_s)
        finished = duration_s is not None

        models = recover_and_check(root, bystanders)
        assert set(models) <= {*bystanders, model_id}
        installed = models.get(model_id)
        if installed is not None:
            assert [f.sha256 for f in installed.files] == [template_digest]
        if source.exists():
            assert digest_of(source) == template_digest
        if finished:
            assert installed is not None
        if mode == "copy":
            assert source.exists()
        else:  # nothing lost: the bytes are in the source, the model, or both
            assert source.exists() or installed is not None
            if finished:
                assert not source.exists()
        if installed is not None:
            with Store(root) as store:
                store.remove(model_id)
        source.unlink(missing_ok=True)
    schedule.assert_kills_landed()


# -- crash safety: remove and evict -----------------------------------------------------------


def test_remove_killed_at_any_point_leaves_the_model_gone_or_ready_and_intact(
    tmp_path: Path,
) -> None:
    root = tmp_path / "store"
    bystanders = install_bystanders(root, tmp_path)
    template = make_gguf(tmp_path / "template.gguf", "crash-remove", 2 * MIB)
    schedule = KillSchedule("remove", REMOVE_TRIALS)
    for trial, delay_s in enumerate(schedule):
        victim = f"victim-{trial}"
        with Store(root) as store:
            before = files_of(store.install(victim, [template], placement="copy"))

        def prepare(victim: str = victim) -> Callable[[], object]:
            store = Store(root)
            return lambda: store.remove(victim)

        duration_s = run_and_kill(prepare, delay_s)
        schedule.record(delay_s, duration_s)
        finished = duration_s is not None

        models = recover_and_check(root, bystanders)
        assert set(models) <= {*bystanders, victim}
        if finished:
            assert victim not in models
        if victim in models:
            assert files_of(models[victim]) == before
            with Store(root) as store:
                store.remove(victim)
    schedule.assert_kills_landed()


def test_eviction_killed_at_any_point_removes_only_planned_models_and_leaves_no_debris(
    tmp_path: Path,
) -> None:
    root = tmp_path / "store"
    bystanders = install_bystanders(root, tmp_path)
    model_size = MIB
    templates = [
        make_gguf(tmp_path / f"template-{k}.gguf", f"crash-evict-{k}", model_size) for k in range(4)
    ]
    unlimited = CachePolicy(min_free_bytes=0, auto_cleanup=False)
    schedule = KillSchedule("evict", EVICTION_TRIALS)
    for trial, delay_s in enumerate(schedule):
        candidates = [f"old-{trial}-{k}" for k in range(4)]
        with Store(root) as store:
            store.set_policy(unlimited)
            for model_id, template in zip(candidates, templates, strict=True):
                store.install(model_id, [template], placement="copy")
            owned = store.stats().owned_bytes
            # Room for all but two and a half of the candidates: the three installed
            # earliest must go (keep-a is pinned, keep-b is of a higher priority).
            limit = owned - (5 * model_size) // 2
            store.set_policy(
                CachePolicy(max_size_bytes=limit, min_free_bytes=0, auto_cleanup=False)
            )
            planned = {item.model_id for item in store.plan_eviction().evictions}
            assert planned == set(candidates[:3])
            before = {model_id: files_of(store.get(model_id)) for model_id in candidates}

        def prepare() -> Callable[[], object]:
            store = Store(root)
            return store.gc

        duration_s = run_and_kill(prepare, delay_s)
        schedule.record(delay_s, duration_s)
        finished = duration_s is not None

        kept = candidates[3]
        models = recover_and_check(root, {**bystanders, kept: before[kept]})
        assert set(models) <= {*bystanders, *candidates}
        for model_id in planned:
            if finished:
                assert model_id not in models
            if model_id in models:
                assert files_of(models[model_id]) == before[model_id]
        with Store(root) as store:
            for model_id in candidates:
                if model_id in models:
                    store.remove(model_id)
    schedule.assert_kills_landed()


# -- crash safety: schema migration -----------------------------------------------------------


def _big_migration(connection: sqlite3.Connection) -> None:
    """A version 2 that writes many rows and rewrites existing ones."""
    connection.execute("CREATE TABLE bulk (n INTEGER PRIMARY KEY, label TEXT NOT NULL)")
    connection.executemany(
        "INSERT INTO bulk (n, label) VALUES (?, ?)",
        ((n, f"row {n}") for n in range(MIGRATION_ROWS)),
    )
    connection.execute("UPDATE models SET name = name || ' (migrated)'")


Rows = list[tuple[Any, ...]]


def _database_contents(path: Path) -> tuple[int, int | None, Rows, Rows]:
    """user_version, rows in the bulk table (None: no such table), every models row and
    every files row."""
    connection = sqlite3.connect(path)
    try:
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        has_bulk = connection.execute(
            "SELECT count(*) FROM sqlite_master WHERE name = 'bulk'"
        ).fetchone()[0]
        bulk = connection.execute("SELECT count(*) FROM bulk").fetchone()[0] if has_bulk else None
        models = connection.execute("SELECT * FROM models ORDER BY id").fetchall()
        files = connection.execute("SELECT * FROM files ORDER BY model_id, rel_path").fetchall()
    finally:
        connection.close()
    return version, bulk, models, files


def test_migration_killed_at_any_point_leaves_the_old_version_intact_or_the_new_one_complete(
    tmp_path: Path,
) -> None:
    root = tmp_path / "store"
    bystanders = install_bystanders(root, tmp_path)
    database = root / "store.db"
    assert not Path(f"{database}-wal").exists()  # closed: everything is in the main file
    pristine = database.read_bytes()
    version, bulk, models_before, files_before = _database_contents(database)
    assert (version, bulk) == (1, None)
    migrated_before = [(row[0], f"{row[1]} (migrated)", *row[2:]) for row in models_before]
    migrations = (*MIGRATIONS, _big_migration)
    schedule = KillSchedule("migrate", MIGRATION_TRIALS)
    versions_seen = set()
    for delay_s in schedule:
        for suffix in ("-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)
        database.write_bytes(pristine)

        def prepare() -> Callable[[], object]:
            return lambda: Database(database, migrations=migrations).close()

        duration_s = run_and_kill(prepare, delay_s)
        schedule.record(delay_s, duration_s)
        finished = duration_s is not None

        version, bulk, models, files = _database_contents(database)
        versions_seen.add(version)
        assert files == files_before
        if version == 1:
            assert not finished
            assert bulk is None
            assert models == models_before
            recover_and_check(root, bystanders)
        else:
            assert version == 2
            assert bulk == MIGRATION_ROWS
            assert models == migrated_before
            # This iris-models knows only version 1: it must refuse, not misread, the store.
            with pytest.raises(StoreVersionError):
                Store(root)
            # A refused Store closes its connection, so the next fork inherits none.
            Database(database, migrations=migrations).close()
    assert versions_seen == {1, 2}
    schedule.assert_kills_landed()


# -- concurrency ------------------------------------------------------------------------------

PROCESSES = 4
USER_THREADS = 2
USES_PER_THREAD = 30
SHARED = ("shared-0", "shared-1")


def _worker(root: Path, index: int, sources: list[Path], results: Any) -> None:
    """One process: an installer thread (its own models, then a scratch model installed,
    used and removed twice), user threads leasing the shared models, and a maintenance
    thread running gc, eviction plans, listings, pins and statistics until the others end."""
    errors: list[str] = []
    installed: list[str] = []
    try:
        store = Store(root)
    except BaseException:  # noqa: BLE001 - reported to the parent
        results.put((index, installed, [traceback.format_exc()]))
        return
    others_done = threading.Event()

    def guarded(name: str, work: Callable[[], None]) -> threading.Thread:
        def run() -> None:
            try:
                work()
            except BaseException:  # noqa: BLE001 - reported to the parent
                errors.append(f"process {index}, thread {name}: {traceback.format_exc()}")

        return threading.Thread(target=run, name=name)

    def install() -> None:
        for k, source in enumerate(sources):
            model_id = f"p{index}-m{k}"
            store.install(model_id, [source], placement="copy")
            installed.append(model_id)
        scratch = f"p{index}-scratch"
        for _ in range(2):
            store.install(scratch, [sources[0]], placement="copy")
            with store.use(scratch) as path:
                assert path.read_bytes()[:4] == b"GGUF"
            store.remove(scratch)

    def use(thread: int) -> None:
        for n in range(USES_PER_THREAD):
            with store.use(SHARED[(n + thread) % 2]) as path, path.open("rb") as file:
                assert file.read(4) == b"GGUF"

    def maintain() -> None:
        while not others_done.is_set():
            store.gc()
            store.plan_eviction(free_bytes=1 << 40)
            store.list_models()
            store.pin(SHARED[0])
            store.unpin(SHARED[0])
            store.set_priority(SHARED[1], "high")
            store.stats()
            store.events(limit=5)
            store.relieve_pressure(dry_run=True)

    workers = [guarded("install", install)]
    workers += [guarded(f"use-{t}", lambda t=t: use(t)) for t in range(USER_THREADS)]
    maintainer = guarded("maintain", maintain)
    for thread in [*workers, maintainer]:
        thread.start()
    for thread in workers:
        thread.join()
    others_done.set()
    maintainer.join()
    store.close()
    results.put((index, installed, errors))


def _start_processes(target: Callable[..., None], args: list[tuple[Any, ...]]) -> list[Any]:
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=target, args=arguments) for arguments in args]
    with warnings.catch_warnings():  # see _fork
        warnings.filterwarnings(
            "ignore", r".*use of fork\(\) may lead to deadlocks", DeprecationWarning
        )
        for process in processes:
            process.start()
    return processes


def test_processes_and_threads_at_once_lose_no_use_and_no_install(tmp_path: Path) -> None:
    root = tmp_path / "store"
    with Store(root, policy=NO_FLOOR) as store:
        for model_id in SHARED:
            store.install(model_id, [make_gguf(tmp_path / f"{model_id}.gguf", model_id, MIB // 4)])
    results = multiprocessing.get_context("fork").Queue()
    sources = [
        [make_gguf(tmp_path / f"p{i}-m{k}.gguf", f"p{i}-m{k}", MIB // 2) for k in range(2)]
        for i in range(PROCESSES)
    ]
    processes = _start_processes(
        _worker, [(root, i, sources[i], results) for i in range(PROCESSES)]
    )
    reports = [results.get(timeout=240) for _ in processes]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    errors = [error for _index, _installed, found in reports for error in found]
    assert errors == []
    installed = sorted(model_id for _index, ids, _errors in reports for model_id in ids)
    assert installed == sorted(f"p{i}-m{k}" for i in range(PROCESSES) for k in range(2))

    expected_uses = PROCESSES * USER_THREADS * USES_PER_THREAD // len(SHARED)
    with Store(root) as store:
        assert [store.get(model_id).use_count for model_id in SHARED] == [expected_uses] * 2
        models = {model.id: model for model in store.list_models()}
        assert sorted(models) == sorted([*SHARED, *installed])
        for model_id in installed:
            assert models[model_id].state is S.READY
            (model_file,) = models[model_id].files
            assert digest_of(model_file.path) == model_file.sha256
        report = store.fsck()
    assert report.ok, report.to_dict()
    assert leftovers(root) == []


def test_store_waits_for_another_process_that_is_creating_the_same_new_store(
    tmp_path: Path,
) -> None:
    root = tmp_path / "store"
    root.mkdir()
    database = root / "store.db"
    read_fd, write_fd = os.pipe()
    pid = _fork()
    if pid == 0:  # the child: what a process creating the store holds while it sets WAL up
        try:
            os.close(read_fd)
            connection = sqlite3.connect(database, isolation_level=None)
            connection.execute("BEGIN IMMEDIATE")
            os.write(write_fd, b"w")
            time.sleep(0.5)
            connection.execute("COMMIT")
            connection.close()
        finally:
            os._exit(0)
    os.close(write_fd)
    try:
        assert os.read(read_fd, 1) == b"w"
        with Store(root, policy=NO_FLOOR, busy_timeout_s=30) as store:
            assert store.list_models() == []
    finally:
        os.close(read_fd)
        os.waitpid(pid, 0)


def test_fsck_repair_leaves_an_install_that_started_during_it_alone(tmp_path: Path) -> None:
    root = tmp_path / "store"
    with Store(root, policy=NO_FLOOR) as store:
        store.install("old", [make_gguf(tmp_path / "old.gguf", "old", MIB)])
        late_source = make_gguf(tmp_path / "late.gguf", "late", MIB)
        in_staging = threading.Event()
        resume = threading.Event()
        outcome: dict[str, Any] = {}

        def hold_in_staging(_done: int, _total: int) -> None:
            in_staging.set()  # the file is in .staging and hashed; the rename is next
            resume.wait(30)

        def install_late() -> None:
            try:
                outcome["model"] = store.install(
                    "late", [late_source], placement="copy", on_progress=hold_in_staging
                )
            except BaseException as error:  # noqa: BLE001 - reported to the parent
                outcome["error"] = error

        installer = threading.Thread(target=install_late)

        def start_install_once(_model: str, _done: int, _total: int) -> None:
            # fsck has listed the locked models and is hashing "old": the install starts now.
            if installer.ident is None:
                installer.start()
                assert in_staging.wait(30)

        try:
            report = store.fsck(repair=True, deep=True, on_progress=start_install_once)
        finally:
            resume.set()
            if installer.ident is not None:
                installer.join(30)
        assert "error" not in outcome, outcome
        assert report.issues == ()
        assert store.get("late").state is S.READY


# -- bad input: damaged, newer and foreign databases ------------------------------------------


def _store_with_models(root: Path, tmp_path: Path, count: int = 2) -> dict[str, FileDigests]:
    with Store(root, policy=NO_FLOOR) as store:
        for k in range(count):
            model_id = f"model-{k}"
            source = make_gguf(tmp_path / f"{model_id}.gguf", model_id, 256 << 10)
            # Long metadata spreads the rows over pages that a truncation cuts off.
            store.install(model_id, [source], metadata={"notes": "x" * 2000})
    return ready_models(root)


def _overwrite_with_random_bytes(database: Path) -> None:
    database.write_bytes(random.Random(7).randbytes(database.stat().st_size))


def _truncate_mid_page(database: Path) -> None:
    size = database.stat().st_size
    page = 4096
    assert size >= 4 * page
    with database.open("r+b") as file:
        file.truncate((size // page // 2) * page + page // 2)


@pytest.mark.parametrize(
    "damage", [_overwrite_with_random_bytes, _truncate_mid_page], ids=["random", "truncated"]
)
def test_damaged_database_is_refused_unchanged_and_fsck_repair_rebuilds_from_the_folders(
    tmp_path: Path, damage: Callable[[Path], None], capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "store"
    before = _store_with_models(root, tmp_path)
    database = root / "store.db"
    damage(database)
    damaged_bytes = database.read_bytes()

    with pytest.raises(StoreCorruptError) as refused:
        Store(root)
    assert "fsck --repair" in str(refused.value)
    assert str(database) in str(refused.value)
    assert database.read_bytes() == damaged_bytes

    assert main(["fsck", "--repair", "--store", str(root)]) == 0
    assert "moved to" in capsys.readouterr().out
    (moved,) = root.glob("store.db.damaged-*")
    assert moved.read_bytes() == damaged_bytes
    with Store(root) as store:
        models = {model.id: model for model in store.list_models()}
        assert sorted(models) == sorted(before)
        for model_id, files in before.items():
            assert models[model_id].state is S.READY
            assert files_of(models[model_id]) == files  # hashed again: same digests
        report = store.fsck(deep=True)
    assert report.ok, report.to_dict()
    assert leftovers(root) == []


def test_every_rebuild_keeps_its_own_copy_of_the_damaged_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "store"
    Store(root, policy=NO_FLOOR).close()
    copies = []
    # Five rebuilds take well under three seconds, so at least two share a second.
    for n in range(5):
        database = root / "store.db"
        database.write_bytes(f"damaged database number {n}".encode() * 200)
        copies.append(database.read_bytes())
        assert main(["fsck", "--repair", "--store", str(root)]) == 0
    capsys.readouterr()
    kept = sorted(path.read_bytes() for path in root.glob("store.db.damaged-*"))
    assert kept == sorted(copies)


def _set_user_version(database: Path, version: int) -> None:
    connection = sqlite3.connect(database)
    try:
        connection.execute(f"PRAGMA user_version = {version}")
    finally:
        connection.close()


def test_database_of_a_newer_schema_is_refused_unchanged_even_by_fsck_repair(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "store"
    _store_with_models(root, tmp_path, count=1)
    database = root / "store.db"
    _set_user_version(database, 99)
    newer = database.read_bytes()

    with pytest.raises(StoreVersionError) as refused:
        Store(root)
    assert "schema version 99" in str(refused.value)
    assert "upgrade iris-models" in str(refused.value)
    assert database.read_bytes() == newer

    # A newer store is not damaged: repair must not move it aside.
    assert main(["fsck", "--repair", "--store", str(root)]) == 1
    assert "upgrade iris-models" in capsys.readouterr().err
    assert database.read_bytes() == newer
    assert list(root.glob("store.db.damaged-*")) == []


def test_refused_store_keeps_no_connection_to_the_database_open(tmp_path: Path) -> None:
    root = tmp_path / "store"
    Store(root, policy=NO_FLOOR).close()
    database = root / "store.db"
    _set_user_version(database, 99)
    with pytest.raises(StoreVersionError) as refused:
        Store(root)
    open_files = {Path(item.path) for item in psutil.Process().open_files()}
    assert database not in open_files, refused.value


def _foreign_with_application_id(database: Path) -> None:
    connection = sqlite3.connect(database)
    try:
        connection.execute("PRAGMA application_id = 1234")
        connection.execute("CREATE TABLE notes (body TEXT)")
        connection.execute("INSERT INTO notes VALUES ('not a model store')")
        connection.commit()
    finally:
        connection.close()


def _foreign_plain(database: Path) -> None:
    connection = sqlite3.connect(database)
    try:
        connection.execute("CREATE TABLE notes (body TEXT)")
        connection.execute("INSERT INTO notes VALUES ('not a model store')")
        connection.commit()
    finally:
        connection.close()


FOREIGN = pytest.mark.parametrize(
    "make_foreign",
    [_foreign_with_application_id, _foreign_plain],
    ids=["application_id", "plain_tables"],
)


@FOREIGN
def test_sqlite_file_of_another_program_is_refused_as_not_a_store(
    tmp_path: Path, make_foreign: Callable[[Path], None]
) -> None:
    root = tmp_path / "store"
    root.mkdir()
    make_foreign(root / "store.db")
    with pytest.raises(StoreCorruptError, match="another program"):
        Store(root)
    connection = sqlite3.connect(root / "store.db")
    try:
        assert connection.execute("SELECT body FROM notes").fetchall() == [("not a model store",)]
    finally:
        connection.close()


@FOREIGN
def test_sqlite_file_of_another_program_is_left_byte_for_byte_unchanged(
    tmp_path: Path, make_foreign: Callable[[Path], None]
) -> None:
    root = tmp_path / "store"
    root.mkdir()
    database = root / "store.db"
    make_foreign(database)
    foreign = database.read_bytes()
    with pytest.raises(StoreCorruptError):
        Store(root)
    assert database.read_bytes() == foreign


# -- bad input: a store this process cannot write ---------------------------------------------

NOBODY = 65534


@pytest.fixture
def readable_by_nobody(tmp_path: Path) -> Iterator[Path]:
    """tmp_path, with it and its parents opened to other users (r-x) for the test."""
    if os.geteuid() != 0:
        pytest.skip("dropping privileges to the 'nobody' user needs root")
    changed = []
    top = Path(tempfile.gettempdir())
    for folder in [tmp_path, *tmp_path.parents]:
        if folder in (top, Path(folder.anchor)):
            break
        mode = stat.S_IMODE(folder.stat().st_mode)
        changed.append((folder, mode))
        folder.chmod(mode | 0o055)
    try:
        yield tmp_path
    finally:
        for folder, mode in changed:
            folder.chmod(mode)


def run_as_nobody(work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Runs ``work`` in a forked child that has become 'nobody', and returns what it returned.

    No exec: the interpreter may live where 'nobody' cannot read it (/root), so everything
    the child runs is imported first."""
    for module in ("_install", "_fsck", "_import", "_eviction"):
        importlib.import_module(f"iris_models.store.{module}")
    importlib.import_module("iris_models.gguf")
    read_fd, write_fd = os.pipe()
    pid = _fork()
    if pid == 0:  # the child
        try:
            os.close(read_fd)
            try:
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
                result = work()
            except BaseException:  # noqa: BLE001 - reported to the parent
                result = {"crash": traceback.format_exc()}
            os.write(write_fd, json.dumps(result).encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    try:
        text = _read_to_end(read_fd)
    finally:
        os.close(read_fd)
    os.waitpid(pid, 0)
    result: dict[str, Any] = json.loads(text)
    assert "crash" not in result, result["crash"]
    return result


def _attempt(action: Callable[[], object]) -> list[str]:
    try:
        value = action()
    except Exception as error:  # noqa: BLE001 - reported to the parent
        return [type(error).__name__, str(error)]
    return ["ok", repr(value)]


def _try_everything(root: Path, source: Path) -> Callable[[], dict[str, Any]]:
    def work() -> dict[str, Any]:
        try:
            store = Store(root)
        except Exception as error:  # noqa: BLE001 - reported to the parent
            return {"open": [type(error).__name__, str(error)]}
        found = {"open": ["ok", repr(store.read_only)]}
        found["list"] = _attempt(lambda: [model.id for model in store.list_models()])
        found["path"] = _attempt(lambda: str(store.path("kept")))
        found["install"] = _attempt(lambda: store.install("new", [source], placement="copy"))
        found["remove"] = _attempt(lambda: store.remove("kept"))
        found["pin"] = _attempt(lambda: store.pin("kept"))
        found["gc"] = _attempt(store.gc)
        return found

    return work


@contextlib.contextmanager
def held_open_by_root(root: Path) -> Iterator[None]:
    """Another (root) process with the store open, as a running app would have it: its WAL
    and shared-memory files exist while it runs."""
    read_fd, write_fd = os.pipe()
    ready_fd, signal_fd = os.pipe()
    pid = _fork()
    if pid == 0:  # the child
        try:
            os.close(write_fd)
            os.close(ready_fd)
            with Store(root) as store:
                store.list_models()
                os.write(signal_fd, b"r")
                os.read(read_fd, 1)  # until the parent closes its end
        finally:
            os._exit(0)
    os.close(read_fd)
    os.close(signal_fd)
    try:
        assert os.read(ready_fd, 1) == b"r"
        yield
    finally:
        os.close(write_fd)
        os.close(ready_fd)
        os.waitpid(pid, 0)


Snapshot = tuple[list[tuple[str, int]], int, str]


def _root_store_for_nobody(tmp_path: Path) -> tuple[Path, Path, Snapshot]:
    """A store made by root holding the model "kept", a GGUF file anyone may read, and what
    must not change: the files under the store, the event count and the model's digest."""
    root = tmp_path / "store"
    with Store(root, policy=NO_FLOOR) as store:
        kept = store.install("kept", [make_gguf(tmp_path / "kept.gguf", "kept", 256 << 10)])
        events = len(store.events())
    source = make_gguf(tmp_path / "source.gguf", "new", 256 << 10)
    assert kept.path is not None
    return root, source, (_tree(root), events, digest_of(kept.path))


def _tree(root: Path) -> list[tuple[str, int]]:
    """Every file and folder under ``root`` with its size (the WAL and its shared-memory
    index aside: SQLite manages them, and readers write the index)."""
    return sorted(
        (str(path.relative_to(root)), path.stat().st_size if path.is_file() else -1)
        for path in root.rglob("*")
        if not path.name.endswith("-shm") and not path.name.endswith("-wal")
    )


def _assert_unchanged(root: Path, before: Snapshot) -> None:
    tree, events, kept_digest = before
    assert _tree(root) == tree
    with Store(root) as store:
        assert [model.id for model in store.list_models()] == ["kept"]
        kept = store.get("kept")
        assert kept.state is S.READY
        assert not kept.pinned
        assert len(store.events()) == events
        assert digest_of(store.path("kept")) == kept_digest


def test_store_of_another_user_that_is_running_can_be_listed_but_not_changed(
    readable_by_nobody: Path,
) -> None:
    root, source, before = _root_store_for_nobody(readable_by_nobody)
    with held_open_by_root(root):
        found = run_as_nobody(_try_everything(root, source))
    assert found["open"][0] == "ok"
    assert found["list"] == ["ok", repr(["kept"])]
    assert found["path"][0] == "ok"
    for action in ("pin", "gc"):
        assert found[action][0] == "StoreReadOnlyError", found[action]
        assert "\n" not in found[action][1]
    _assert_unchanged(root, before)


def test_install_and_remove_in_a_store_of_another_user_raise_store_read_only(
    readable_by_nobody: Path,
) -> None:
    root, source, before = _root_store_for_nobody(readable_by_nobody)
    with held_open_by_root(root):
        found = run_as_nobody(_try_everything(root, source))
    _assert_unchanged(root, before)
    for action in ("install", "remove"):
        assert found[action][0] == "StoreReadOnlyError", found[action]


def test_closed_store_of_another_user_lists_or_refuses_with_one_clear_line(
    readable_by_nobody: Path,
) -> None:
    root, source, before = _root_store_for_nobody(readable_by_nobody)
    found = run_as_nobody(_try_everything(root, source))
    if found["open"][0] == "ok":
        assert found["list"] == ["ok", repr(["kept"])]
        for action in ("install", "remove", "pin"):
            assert found[action][0] == "StoreReadOnlyError", found[action]
    else:
        kind, message = found["open"]
        assert kind == "StoreReadOnlyError"
        assert "\n" not in message
        assert str(root) in message
    _assert_unchanged(root, before)


def test_closed_store_of_another_user_can_be_listed_read_only(readable_by_nobody: Path) -> None:
    root, source, before = _root_store_for_nobody(readable_by_nobody)
    found = run_as_nobody(_try_everything(root, source))
    _assert_unchanged(root, before)
    assert found["open"] == ["ok", "True"]
    assert found["list"] == ["ok", repr(["kept"])]


# -- bad input: a full disk -------------------------------------------------------------------


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """An 8 MB tmpfs, mounted for the test."""
    mount_point = tmp_path / "tmpfs"
    mount_point.mkdir()
    mounted = False
    reason = "cannot mount a tmpfs: needs root and permission to mount"
    if os.geteuid() == 0 and shutil.which("mount"):
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount_point)],
            capture_output=True,
            text=True,
            check=False,
        )
        mounted = result.returncode == 0
        reason = f"{reason} ({result.stderr.strip()})"
    require_service(mounted, reason)
    try:
        yield mount_point
    finally:
        if subprocess.run(["umount", str(mount_point)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(mount_point)], check=True)


def _nothing_installed(root: Path, source: Path, source_digest: str) -> None:
    with Store(root) as store:
        assert store.list_models() == []
    assert leftovers(root) == []
    assert not (root / "models").exists() or list((root / "models").iterdir()) == []
    assert digest_of(source) == source_digest


def test_install_larger_than_the_free_space_is_refused_before_anything_is_written(
    small_tmpfs: Path, tmp_path: Path
) -> None:
    root = small_tmpfs / "store"
    source = make_gguf(tmp_path / "big.gguf", "big", 12 * MIB)
    source_digest = digest_of(source)
    with Store(root, policy=NO_FLOOR) as store:
        free_before = psutil.disk_usage(root).free
        with pytest.raises(InsufficientSpaceError) as refused:
            store.install("big", [source], placement="copy")
        assert psutil.disk_usage(root).free == free_before
    error = refused.value
    assert error.errno == errno.ENOSPC
    assert error.bytes_needed > 0
    assert "'big'" in str(error)
    assert "policy" in str(error)
    _nothing_installed(root, source, source_digest)


def test_default_free_disk_floor_refuses_an_install_that_would_fit_without_it(
    small_tmpfs: Path, tmp_path: Path
) -> None:
    root = small_tmpfs / "store"
    source = make_gguf(tmp_path / "small.gguf", "small", 2 * MIB)
    source_digest = digest_of(source)
    with Store(root) as store:  # the default policy: keep 500 MB free
        assert store.policy.min_free_bytes == 500_000_000
        with pytest.raises(InsufficientSpaceError, match="500000000-byte floor"):
            store.install("small", [source], placement="copy")
    _nothing_installed(root, source, source_digest)

    with Store(root, policy=NO_FLOOR) as store:
        model = store.install("small", [source], placement="copy")
        assert model.state is S.READY
        assert [f.sha256 for f in model.files] == [source_digest]


def _fill_the_disk_when_validation_starts(root: Path, filler: Path) -> Callable[..., None]:
    """An observer that plays another process filling the disk just after the space check."""

    def observer(change: StateChange) -> None:
        if change.to_state is S.VALIDATING:
            free = psutil.disk_usage(root).free
            filler.write_bytes(bytes(free - 512 * 1024))

    return observer


def test_disk_filling_up_during_the_copy_fails_cleanly_and_keeps_the_source(
    small_tmpfs: Path, tmp_path: Path
) -> None:
    root = small_tmpfs / "store"
    source = make_gguf(tmp_path / "model.gguf", "model", 3 * MIB)
    source_digest = digest_of(source)
    filler = small_tmpfs / "filler"
    with Store(root, policy=NO_FLOOR) as store:
        store.add_observer(_fill_the_disk_when_validation_starts(root, filler))
        with pytest.raises(OSError, match="No space left on device") as failed:
            store.install("model", [source], placement="copy")
    assert failed.value.errno == errno.ENOSPC
    _nothing_installed(root, source, source_digest)

    filler.unlink()
    with Store(root, policy=NO_FLOOR) as store:
        assert store.install("model", [source], placement="copy").state is S.READY
        report = store.fsck()
    assert report.ok, report.to_dict()


def test_disk_filling_up_during_the_copy_is_reported_as_insufficient_space_for_the_model(
    small_tmpfs: Path, tmp_path: Path
) -> None:
    root = small_tmpfs / "store"
    source = make_gguf(tmp_path / "model.gguf", "model", 3 * MIB)
    with Store(root, policy=NO_FLOOR) as store:
        store.add_observer(_fill_the_disk_when_validation_starts(root, small_tmpfs / "filler"))
        with pytest.raises(InsufficientSpaceError, match="'model'"):
            store.install("model", [source], placement="copy")


# -- bad input: model ids that are paths ------------------------------------------------------

PATH_LIKE_IDS = [
    "../escape",
    "a/../../escape",
    "..",
    "sub/model",
    "/tmp/absolute",
    "a\\..\\b",
    ".hidden",
    "..\\escape",
]


def _everything_under(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


@pytest.mark.parametrize("model_id", PATH_LIKE_IDS)
def test_path_like_ids_are_refused_by_every_entry_point_and_create_nothing(
    tmp_path: Path, model_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "deep" / "store"
    source = make_gguf(tmp_path / "model.gguf", "model", 64 << 10)
    with Store(root, policy=NO_FLOOR) as store:
        store.install("fine", [source], placement="copy")
        before = _everything_under(tmp_path)
        attempts: list[Callable[[], object]] = [
            lambda: store.install(model_id, [source], placement="copy"),
            lambda: store.install(model_id, [source], placement="move"),
            lambda: store.use(model_id).__enter__(),
            lambda: store.remove(model_id),
            lambda: store.path(model_id),
            lambda: store.pin(model_id),
            lambda: store.model_dir(model_id),
        ]
        for attempt in attempts:
            with pytest.raises(InvalidModelIdError):
                attempt()
        for command in (["rm", model_id], ["path", model_id]):
            assert main([*command, "--store", str(root)]) == 1
            err = capsys.readouterr().err
            assert err.startswith("iris-models: error: ")
            assert "Traceback" not in err
        assert _everything_under(tmp_path) == before
        assert [model.id for model in store.list_models()] == ["fine"]
        # Where the id would lead if joined naively, when that is outside tmp_path.
        for naive in (store.models_dir / model_id, store.root / ".locks" / f"{model_id}.lock"):
            if not naive.resolve().is_relative_to(tmp_path):
                assert not naive.exists()
    assert source.exists()
