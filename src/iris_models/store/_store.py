"""The model store: one SQLite database and one folder per model under a root. It installs,
lists, uses, removes and evicts models, and keeps every change crash-safe: the database says
what is true, files are moved into place before the database says they are there, and
models leave the database only after their files have been moved aside."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from .._frozen import builder
from .._paths import store_root
from ..errors import (
    LifecycleError,
    ModelExistsError,
    ModelInUseError,
    ModelNotFoundError,
    ModelNotReadyError,
    StoreReadOnlyError,
)
from . import _cleanup, _downloads
from ._cleanup import EvictionResult, GcOutcome, PressureReport
from ._database import Database
from ._downloads import SavedDownload
from ._eviction import (
    EvictionPlan,
)
from ._files import (
    DOWNLOADS_DIR,
    TRASH_DIR,
    dir_size,
    fsync_dir,
    remove_tree,
    unique_name,
)
from ._ids import validate_model_id
from ._lifecycle import (
    INSTALLED_STATES,
    TRANSITIONS,
    LifecycleObserver,
    LifecycleState,
    StateChange,
    check_transition,
)
from ._locks import ModelLock
from ._policy import CachePolicy, Priority, parse_choice
from ._records import (
    InstalledModel,
    ModelFile,
    ModelStats,
    StoreEvent,
    StoreStats,
)

if TYPE_CHECKING:
    from typing_extensions import Self

    from ._fsck import FsckReport
    from ._import import ImportReport

__all__ = [
    "EvictionResult",
    "FileSpec",
    "Placement",
    "PressureReport",
    "Store",
]

logger = logging.getLogger("iris_models.store")

DATABASE_NAME = "store.db"
MODELS_DIR = "models"
FILE_ROLES = ("model", "shard", "projector", "extra")

_S = LifecycleState
_MODEL_COLUMNS = (
    "id, name, category, state, state_reason, storage, source, architecture, quantization, "
    "parameter_count, context_length, size_bytes, priority, pinned, created_at, "
    "installed_at, updated_at, last_used_at, use_count, metadata"
)
_STATE_BY_VALUE = {state.value: state for state in LifecycleState}
_PRIORITIES = tuple(Priority)
_FILE_COLUMNS = "model_id, rel_path, role, size_bytes, sha256, seal, external_path, mtime_ns"


class Placement(str, Enum):
    """How install() puts a file into the store."""

    MOVE = "move"
    """Hard link (or copy across file systems) into the store; the original is deleted once
    the model is READY, so a failure leaves it where it was."""
    COPY = "copy"
    """An independent copy; the original stays."""
    HARDLINK = "hardlink"
    """A second name for the same bytes: no copy, the original stays (same file system)."""
    REFERENCE = "reference"
    """Leave the file where it is and record its path; the store never deletes it."""


@dataclass(frozen=True)
class FileSpec:
    """A file to install: where it is now, its name in the model's folder, its role, and the
    digest it must have (``sha256:<hex>``; None to take whatever it hashes to)."""

    path: Path
    rel_path: str | None = None
    role: str = "model"
    sha256: str | None = None
    verified: bool = False
    """The caller hashed these very bytes already (a download does, as they land): the
    install takes `sha256` as the file's digest instead of reading it all again."""


class Store:
    """A model store at ``root`` (the argument, else IRIS_MODELS_HOME, else the platform's
    user data folder).

    Safe to share between threads; several processes may open the same root at once.
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        *,
        policy: CachePolicy | None = None,
        busy_timeout_s: float = 30.0,
        auto_cleanup: bool = True,
    ):
        self.root = store_root(root).absolute()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except PermissionError as error:
            message = f"{self.root}: cannot create the model store here ({error.strerror})"
            raise StoreReadOnlyError(message) from error
        self.db = Database(self.root / DATABASE_NAME, busy_timeout_s=busy_timeout_s)
        self._observers: list[LifecycleObserver] = []
        self._observers_lock = threading.Lock()
        try:
            if policy is not None:
                self.set_policy(policy)
            if auto_cleanup and not self.db.read_only:
                self.maybe_cleanup()
        except BaseException:
            self.db.close()
            raise

    # -- places --------------------------------------------------------------------------

    @property
    def models_dir(self) -> Path:
        return self.root / MODELS_DIR

    def model_dir(self, model_id: str) -> Path:
        """The folder that holds a model's files (lower case: ids ignore case)."""
        return self.models_dir / validate_model_id(model_id).lower()

    @property
    def read_only(self) -> bool:
        return self.db.read_only

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    # -- observers -----------------------------------------------------------------------

    def add_observer(self, observer: LifecycleObserver) -> None:
        """Calls ``observer(change)`` after each lifecycle change this Store object commits.
        Changes made by other processes are in the event log (``events()``)."""
        with self._observers_lock:
            self._observers.append(observer)

    def remove_observer(self, observer: LifecycleObserver) -> None:
        with self._observers_lock:
            self._observers.remove(observer)

    def _notify(self, changes: Sequence[StateChange]) -> None:
        with self._observers_lock:
            observers = list(self._observers)
        for change in changes:
            for observer in observers:
                try:
                    observer(change)
                except Exception:  # an observer's bug must not undo a committed change
                    logger.exception("lifecycle observer %r failed on %s", observer, change)

    # -- reading -------------------------------------------------------------------------

    def find(self, model_id: str) -> InstalledModel | None:
        """The model with this id (any state), or None."""
        validate_model_id(model_id)
        with self.db.read() as sql:
            row = sql.execute(
                f"SELECT {_MODEL_COLUMNS} FROM models WHERE id = ?", (model_id,)
            ).fetchone()
            if row is None:
                return None
            file_rows = sql.execute(
                f"SELECT {_FILE_COLUMNS} FROM files WHERE model_id = ? ORDER BY rel_path",
                (row[0],),
            )
            files = _files_by_model(file_rows, self._models_prefix()).get(row[0].lower(), [])
        return self._model(row, tuple(files))

    def get(self, model_id: str) -> InstalledModel:
        """The model with this id (any state); ModelNotFoundError if there is none."""
        model = self.find(model_id)
        if model is None:
            raise _not_found(model_id)
        return model

    def list_models(
        self,
        *,
        category: str | None = None,
        state: LifecycleState | str | None = None,
        installed_only: bool = False,
    ) -> list[InstalledModel]:
        """Models in the store, sorted by id."""
        clauses: list[str] = []
        params: list[Any] = []
        if category is not None:
            clauses.append("category = ?")
            params.append(category)
        if state is not None:
            clauses.append("state = ?")
            params.append(_parse_state(state).value)
        if installed_only:
            clauses.append(f"state IN ({', '.join('?' * len(INSTALLED_STATES))})")
            params.extend(INSTALLED_STATES)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self.db.read() as sql:
            rows = sql.execute(
                f"SELECT {_MODEL_COLUMNS} FROM models{where} ORDER BY id", params
            ).fetchall()
            # The primary key's order: an index walk, no sort.
            file_rows = sql.execute(
                f"SELECT {_FILE_COLUMNS} FROM files ORDER BY model_id, rel_path"
            )
            files_by_model = _files_by_model(file_rows, self._models_prefix())
        return [self._model(row, tuple(files_by_model.get(row[0].lower(), ()))) for row in rows]

    def _models_prefix(self) -> str:
        return f"{self.models_dir}{os.sep}"

    def path(self, model_id: str) -> Path:
        """The file to load for an installed model (the first shard of a split model)."""
        model = self.get(model_id)
        _require_installed(model)
        path = model.path
        if path is None:  # pragma: no cover - an installed model always has a file
            message = f"model {model_id!r} has no files; run `iris-models fsck --repair`"
            raise ModelNotReadyError(message, model_id=model_id, state=model.state.value)
        return path

    def events(
        self, *, since_id: int = 0, model_id: str | None = None, kind: str | None = None,
        limit: int | None = None,
    ) -> list[StoreEvent]:  # fmt: skip
        """The event log after ``since_id``, oldest first: what every process did."""
        clauses = ["id > ?"]
        params: list[Any] = [since_id]
        if model_id is not None:
            clauses.append("model_id = ? COLLATE NOCASE")
            params.append(model_id)
        if kind is not None:
            clauses.append("kind = ?")
            params.append(kind)
        query = (
            "SELECT id, at, model_id, kind, from_state, to_state, bytes, detail FROM events "
            f"WHERE {' AND '.join(clauses)} ORDER BY id"
        )
        if limit is not None:
            query += f" LIMIT {int(limit)}"
        with self.db.read() as sql:
            return [StoreEvent(*row) for row in sql.execute(query, params)]

    @staticmethod
    def _model(row: Sequence[Any], files: tuple[ModelFile, ...]) -> InstalledModel:
        """A models row and its files as an InstalledModel."""
        # The fields in order, as _MODEL_COLUMNS lists the columns.
        return _new_installed_model(
            row[0],  # id
            row[1],  # name
            row[2],  # category
            _STATE_BY_VALUE[row[3]],  # state
            row[4],  # state_reason
            row[5],  # storage
            row[6],  # source
            row[7],  # architecture
            row[8],  # quantization
            row[9],  # parameter_count
            row[10],  # context_length
            row[11],  # size_bytes
            _PRIORITIES[row[12]],  # priority
            bool(row[13]),  # pinned
            row[14],  # created_at
            row[15],  # installed_at
            row[16],  # updated_at
            row[17],  # last_used_at
            row[18],  # use_count
            json.loads(row[19]) if row[19] != "{}" else {},  # metadata
            files,  # files
        )

    # -- lifecycle -----------------------------------------------------------------------

    def transition(
        self, model_id: str, to_state: LifecycleState | str, *, reason: str | None = None
    ) -> StateChange:
        """Moves a model to another state, if the transition table allows it (LifecycleError
        otherwise); the change is logged and observers are told."""
        target = _parse_state(to_state)
        with self.db.write() as sql:
            change = self._transition(sql, model_id, self._state(sql, model_id), target, reason)
        self._notify([change])
        return change

    def transition_if(
        self,
        model_id: str,
        from_states: Collection[LifecycleState | str],
        to_state: LifecycleState | str,
        *,
        reason: str | None = None,
    ) -> StateChange | None:
        """Like transition(), but only from one of `from_states`: from any other state nothing
        changes and None is returned. The read and the change are one transaction, so when
        two processes race to move the same record, the second sees where the first put it
        instead of failing on a state it read before the first moved it."""
        target = _parse_state(to_state)
        sources = {_parse_state(state) for state in from_states}
        with self.db.write() as sql:
            current = self._state(sql, model_id)
            if current not in sources:
                return None
            change = self._transition(sql, model_id, current, target, reason)
        self._notify([change])
        return change

    def _transition(
        self,
        sql: sqlite3.Connection,
        model_id: str,
        current: LifecycleState,
        target: LifecycleState,
        reason: str | None,
    ) -> StateChange:
        if target in (_S.CLEANUP, _S.UNINITIALIZED):
            message = f"use remove({model_id!r}) to remove a model: it takes the model's lock"
            raise LifecycleError(message, model_id=model_id, from_state="?", to_state=target.value)
        check_transition(model_id, current, target)  # the table's answer comes first
        if target.is_installed and not current.is_installed:
            files = sql.execute(
                "SELECT count(*) FROM files WHERE model_id = ?", (model_id,)
            ).fetchone()[0]
            if not files:
                message = (
                    f"model {model_id!r} has no verified files, so it cannot become "
                    f"{target.value}; install() puts files in and verifies them"
                )
                raise LifecycleError(
                    message, model_id=model_id, from_state=current.value, to_state=target.value
                )
        return self._record_transition(sql, model_id, current, target, reason)

    def register(
        self,
        model_id: str,
        *,
        name: str | None = None,
        category: str = "llm",
        source: str | None = None,
        priority: Priority | str | int = Priority.NORMAL,
        metadata: Mapping[str, Any] | None = None,
    ) -> InstalledModel:
        """Records a model the store will receive (a download about to start): a new row in
        DISCOVERED. ModelExistsError if the id is taken."""
        validate_model_id(model_id)
        now = time.time()
        changes: list[StateChange] = []
        with self.db.write() as sql:
            if self._find_state(sql, model_id) is not None:
                message = f"model {model_id!r} is already in the store"
                raise ModelExistsError(message, model_id=model_id)
            sql.execute(
                "INSERT INTO models (id, name, category, state, source, priority, created_at, "
                "updated_at, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (model_id, name or model_id, category, _S.UNINITIALIZED.value, source,
                 int(Priority.parse(priority)), now, now, json.dumps(dict(metadata or {}))),
            )  # fmt: skip
            changes.append(
                self._record_transition(sql, model_id, _S.UNINITIALIZED, _S.DISCOVERED, None)
            )
        self._notify(changes)
        return self.get(model_id)

    def _state(self, sql: sqlite3.Connection, model_id: str) -> LifecycleState:
        state = self._find_state(sql, model_id)
        if state is None:
            raise _not_found(model_id)
        return state

    @staticmethod
    def _find_state(sql: sqlite3.Connection, model_id: str) -> LifecycleState | None:
        row = sql.execute("SELECT state FROM models WHERE id = ?", (model_id,)).fetchone()
        return None if row is None else LifecycleState(row[0])

    @staticmethod
    def _record_transition(
        sql: sqlite3.Connection,
        model_id: str,
        from_state: LifecycleState,
        to_state: LifecycleState,
        reason: str | None,
    ) -> StateChange:
        check_transition(model_id, from_state, to_state)
        now = time.time()
        cursor = sql.execute(
            "UPDATE models SET state = ?, state_reason = ?, updated_at = ? "
            "WHERE id = ? AND state = ?",
            (to_state.value, reason, now, model_id, from_state.value),
        )
        if cursor.rowcount != 1:  # the caller's idea of the state is out of date
            message = (
                f"model {model_id!r} is no longer {from_state.value} (another process changed "
                "it); nothing was changed"
            )
            raise LifecycleError(
                message, model_id=model_id, from_state=from_state.value, to_state=to_state.value
            )
        _log(sql, model_id, "state", from_state=from_state, to_state=to_state, detail=reason)
        return StateChange(model_id, from_state, to_state, now, reason)

    # -- install -------------------------------------------------------------------------

    def install(
        self,
        model_id: str,
        files: Sequence[FileSpec | str | os.PathLike[str]],
        *,
        placement: Placement | str = Placement.MOVE,
        name: str | None = None,
        category: str = "llm",
        source: str | None = None,
        priority: Priority | str | int = Priority.NORMAL,
        pinned: bool = False,
        metadata: Mapping[str, Any] | None = None,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> InstalledModel:
        """Adds a model made of ``files``: each is placed into the model's folder (see
        Placement), parsed if it is GGUF, hashed, checked against its expected digest, and
        only then is the model READY. On any failure the store is left as it was and the
        original files are untouched."""
        from ._install import install_model

        return install_model(
            self,
            validate_model_id(model_id),
            [spec if isinstance(spec, FileSpec) else FileSpec(Path(spec)) for spec in files],
            placement=Placement(placement),
            name=name,
            category=category,
            source=source,
            priority=Priority.parse(priority),
            pinned=pinned,
            metadata=dict(metadata or {}),
            on_progress=on_progress,
        )

    # -- downloads -----------------------------------------------------------------------

    def download_dir(self, model_id: str) -> Path:
        """Where a download keeps a model's part files until they are installed."""
        return self.root / DOWNLOADS_DIR / validate_model_id(model_id).lower()

    def save_download(
        self,
        model_id: str,
        rel_path: str,
        *,
        url: str,
        etag: str | None,
        total_bytes: int | None,
        bytes_done: int,
        state: Mapping[str, Any],
    ) -> None:
        """Records how far a file's download got, for a later process to resume."""
        _downloads.save(
            self, model_id, rel_path, url=url, etag=etag, total_bytes=total_bytes,
            bytes_done=bytes_done, state=state,
        )  # fmt: skip

    def saved_downloads(self, model_id: str | None = None) -> list[SavedDownload]:
        """The saved transfer state of one model's files, or of every download."""
        if model_id is None:
            return _downloads.saved_downloads(self)
        return list(_downloads.load(self, model_id).values())

    def clear_downloads(self, model_id: str) -> None:
        """Forgets a model's saved transfer state (its part files are the caller's)."""
        _downloads.clear(self, model_id)

    # -- use -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def use(self, model_id: str, *, wait_s: float = 5.0) -> Iterator[Path]:
        """``with store.use(id) as path:`` the model cannot be removed or evicted by any
        process until the block ends (or this process dies). Counts the use and stamps the
        time."""
        validate_model_id(model_id)
        lock = ModelLock(self.root, model_id)
        if not lock.acquire(exclusive=False, wait_s=wait_s):
            message = (
                f"model {model_id!r} is being installed or removed by another process; "
                "try again when it has finished"
            )
            raise ModelNotReadyError(message, model_id=model_id)
        try:
            path = self._count_use(model_id)
            yield path
        finally:
            lock.release(unlink=True)

    def _count_use(self, model_id: str) -> Path:
        with self.db.write() as sql:
            row = sql.execute("SELECT id, state FROM models WHERE id = ?", (model_id,)).fetchone()
            if row is None:
                raise _not_found(model_id)
            stored_id, state = row[0], LifecycleState(row[1])
            if not state.is_installed:
                raise _not_ready(stored_id, state)
            files = sql.execute(
                "SELECT rel_path, role, external_path FROM files WHERE model_id = ? "
                "ORDER BY rel_path",
                (stored_id,),
            ).fetchall()
            if not files:
                message = (
                    f"model {stored_id!r} is {state.value} but has no files recorded; "
                    "run `iris-models fsck --repair`, or remove it and install it again"
                )
                raise ModelNotReadyError(message, model_id=stored_id, state=state.value)
            sql.execute(
                "UPDATE models SET use_count = use_count + 1, last_used_at = ? WHERE id = ?",
                (time.time(), stored_id),
            )
        return _primary_path(self.models_dir / row[0].lower(), files)

    def record_use(self, model_id: str) -> None:
        """Counts a use without holding the model (the repository API's updateUsageStats)."""
        self._count_use(model_id)

    # -- pins, priorities, policy --------------------------------------------------------

    def pin(self, model_id: str) -> None:
        """Never evict this model (removing it by name still works)."""
        self._update_flag(model_id, "pinned", 1, "pinned")

    def unpin(self, model_id: str) -> None:
        self._update_flag(model_id, "pinned", 0, "unpinned")

    def set_priority(self, model_id: str, priority: Priority | str | int) -> None:
        level = Priority.parse(priority)
        self._update_flag(model_id, "priority", int(level), f"priority {level.name.lower()}")

    def _update_flag(self, model_id: str, column: str, value: int, detail: str) -> None:
        validate_model_id(model_id)
        with self.db.write() as sql:
            cursor = sql.execute(
                f"UPDATE models SET {column} = ?, updated_at = ? WHERE id = ?",
                (value, time.time(), model_id),
            )
            if cursor.rowcount == 0:
                raise _not_found(model_id)
            _log(sql, model_id, column, detail=detail)

    @property
    def policy(self) -> CachePolicy:
        """The store's cache policy (defaults until one is set)."""
        value = self._setting("policy")
        if value is None:
            return CachePolicy()
        return CachePolicy.from_dict(value)

    def set_policy(self, policy: CachePolicy) -> None:
        self._set_setting("policy", policy.to_dict())
        with self.db.write() as sql:
            _log(sql, None, "policy", detail=json.dumps(policy.to_dict()))

    def _setting(self, key: str) -> Any:
        with self.db.read() as sql:
            row = sql.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def _set_setting(self, key: str, value: Any) -> None:
        with self.db.write() as sql:
            sql.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, json.dumps(value)),
            )

    # -- remove and evict ----------------------------------------------------------------

    def remove(self, model_id: str, *, wait_s: float = 0.5) -> int:
        """Removes a model and deletes the files the store owns (a model adopted by reference
        is only forgotten). Returns the bytes freed. ModelInUseError while a process uses it."""
        return self._remove(model_id, kind="removed", reason=None, wait_s=wait_s)

    def _remove(
        self, model_id: str, *, kind: str, reason: str | None, wait_s: float,
        expect_pinned: bool | None = None, lock_held: bool = False,
    ) -> int:  # fmt: skip
        """Removes a model. ``lock_held``: the caller already holds the model's exclusive
        lock (an install taking over an abandoned record)."""
        validate_model_id(model_id)
        lock = ModelLock(self.root, model_id)
        if not lock_held and not lock.acquire(exclusive=True, wait_s=wait_s):
            message = (
                f"model {model_id!r} is in use (or being installed) by a process; it can be "
                "removed when that has finished"
            )
            raise ModelInUseError(message, model_id=model_id)
        try:
            model = self.get(model_id)
            changes: list[StateChange] = []
            with self.db.write() as sql:
                if expect_pinned is False:
                    # Checked in the transaction that starts the removal: a pin (or a raise
                    # to critical) committed since the plan was made always wins.
                    pinned, priority = sql.execute(
                        "SELECT pinned, priority FROM models WHERE id = ?", (model.id,)
                    ).fetchone()
                    if pinned or priority > model.priority:
                        message = (
                            f"model {model_id!r} was pinned or raised in priority after the "
                            "eviction plan was made"
                        )
                        raise ModelInUseError(message, model_id=model_id)
                state = self._state(sql, model.id)
                if state is not _S.CLEANUP:
                    if _S.CLEANUP not in TRANSITIONS[state]:
                        changes.append(
                            self._record_transition(sql, model.id, state, _S.ERROR, kind)
                        )
                        state = _S.ERROR
                    changes.append(
                        self._record_transition(sql, model.id, state, _S.CLEANUP, reason or kind)
                    )
            self._notify(changes)
            freed = self._delete_files(model) + self._delete_part_files(model.id)
            with self.db.write() as sql:
                sql.execute("DELETE FROM models WHERE id = ?", (model.id,))
                _log(sql, model.id, kind, bytes_=freed, detail=reason)
                _log(sql, model.id, "state", from_state=_S.CLEANUP, to_state=_S.UNINITIALIZED)
            self._notify([StateChange(model.id, _S.CLEANUP, _S.UNINITIALIZED, time.time())])
            return freed
        finally:
            lock.release(unlink=True)

    def _delete_part_files(self, model_id: str) -> int:
        """Deletes a download's part files (a removed or cancelled download)."""
        folder = self.download_dir(model_id)
        if not folder.exists():
            return 0
        freed = dir_size(folder)
        remove_tree(folder)
        return freed

    def _delete_files(self, model: InstalledModel) -> int:
        """Moves the model's folder aside (one atomic rename), then deletes it."""
        freed = 0
        for model_file in model.files:
            if model_file.external:
                continue
            try:
                links = model_file.path.stat().st_nlink
            except FileNotFoundError:
                continue
            # A hard-linked file's bytes are freed only if no other name (the original) is left.
            if model.storage != "hardlink" or links == 1:
                freed += model_file.size_bytes
        folder = self.models_dir / model.id.lower()
        if folder.exists():
            trash = self.root / TRASH_DIR
            trash.mkdir(exist_ok=True)
            target = trash / unique_name(model.id)
            folder.rename(target)
            fsync_dir(self.models_dir)
            remove_tree(target)
        return freed

    def plan_eviction(
        self,
        *,
        incoming_bytes: int = 0,
        incoming_owned_bytes: int | None = None,
        free_bytes: int = 0,
        aggressive: bool | None = None,
        policy: CachePolicy | None = None,
    ) -> EvictionPlan:
        """What enforcing the policy would remove now, and why; changes nothing.

        ``incoming_bytes`` is room wanted on the disk for new files (kept on top of the
        free-disk floor); ``incoming_owned_bytes`` how much the store's own size will grow
        (default: the same; less when files arrive by rename from the same disk);
        ``free_bytes`` asks for that much to be freed whatever the limits say.
        """
        return _cleanup.plan_eviction(
            self,
            incoming_bytes=incoming_bytes,
            incoming_owned_bytes=incoming_owned_bytes,
            free_bytes=free_bytes,
            aggressive=aggressive,
            policy=policy,
        )

    def execute_plan(self, plan: EvictionPlan) -> EvictionResult:
        """Carries out a plan: leftovers first, then each eviction, skipping (not failing on)
        a model that has since come into use, been pinned or gone."""
        return _cleanup.execute_plan(self, plan)

    def gc(self, *, dry_run: bool = False, aggressive: bool | None = None) -> GcOutcome:
        """Enforces the policy now: plan, then (unless ``dry_run``) execute."""
        return _cleanup.gc(self, dry_run=dry_run, aggressive=aggressive)

    def maybe_cleanup(self) -> GcOutcome | None:
        """Runs gc() if automatic cleanup is on and its interval has passed since the last."""
        return _cleanup.maybe_cleanup(self)

    def ensure_space(
        self,
        incoming_bytes: int,
        *,
        incoming_owned_bytes: int | None = None,
        model_id: str | None = None,
    ) -> EvictionResult:
        """Makes room for ``incoming_bytes`` more on the store's disk (and the store's size to
        grow by ``incoming_owned_bytes``, default the same) within the policy, evicting what
        the policy allows; InsufficientSpaceError (nothing removed) if that cannot be
        enough."""
        return _cleanup.ensure_space(
            self, incoming_bytes, incoming_owned_bytes=incoming_owned_bytes, model_id=model_id
        )

    def relieve_pressure(
        self, *, memory: bool = True, disk: bool = True, dry_run: bool = False,
        aggressive: bool | None = None,
    ) -> PressureReport:  # fmt: skip
        """The hook an app calls when the system warns of low memory or disk.

        Disk: evicts until the free-disk floor holds again. Memory: evicting frees memory only
        when the store lives in memory (tmpfs); then it evicts until 500 MB are available.
        """
        return _cleanup.relieve_pressure(
            self, memory=memory, disk=disk, dry_run=dry_run, aggressive=aggressive
        )

    # -- fsck and import -----------------------------------------------------------------

    def fsck(
        self,
        *,
        repair: bool = False,
        deep: bool = False,
        on_progress: Callable[[str, int, int], None] | None = None,
    ) -> FsckReport:
        """Reconciles the database with the disk; see :mod:`iris_models.store._fsck`."""
        from ._fsck import check_store

        return check_store(self, repair=repair, deep=deep, on_progress=on_progress)

    def import_path(
        self,
        path: str | os.PathLike[str],
        *,
        placement: Placement | str = Placement.REFERENCE,
        model_id: str | None = None,
        category: str = "llm",
        on_progress: Callable[[str, int, int], None] | None = None,
    ) -> ImportReport:
        """Adopts the GGUF models in a file, a folder, a Hugging Face cache or an Ollama
        models folder. By default they stay where they are (``reference``)."""
        from ._import import import_models

        return import_models(
            self,
            Path(path),
            placement=Placement(placement),
            model_id=model_id,
            category=category,
            on_progress=on_progress,
        )

    # -- statistics ----------------------------------------------------------------------

    def stats(self, *, recent: int = 10) -> StoreStats:
        """Bytes by model, category and state; use counts; what eviction freed and when."""
        with self.db.read() as sql:
            rows = sql.execute(
                "SELECT id, category, state, storage, size_bytes, use_count, last_used_at, "
                "pinned, priority FROM models ORDER BY size_bytes DESC, id"
            ).fetchall()
            evicted_count, evicted_bytes = sql.execute(
                "SELECT count(*), coalesce(sum(bytes), 0) FROM events WHERE kind = 'evicted'"
            ).fetchone()
            recent_rows = sql.execute(
                "SELECT id, at, model_id, kind, from_state, to_state, bytes, detail FROM events "
                "WHERE kind = 'evicted' ORDER BY id DESC LIMIT ?",
                (recent,),
            ).fetchall()
        models = tuple(
            ModelStats(mid, category, state, storage, size, uses, last, bool(pinned),
                       Priority(priority).name.lower())
            for mid, category, state, storage, size, uses, last, pinned, priority in rows
        )  # fmt: skip
        by_category: dict[str, int] = {}
        by_state: dict[str, int] = {}
        owned = referenced = 0
        for model in models:
            by_category[model.category] = by_category.get(model.category, 0) + model.size_bytes
            by_state[model.state] = by_state.get(model.state, 0) + model.size_bytes
            if model.storage == "managed":
                owned += model.size_bytes
            else:
                referenced += model.size_bytes
        disk = psutil.disk_usage(str(self.root))
        last_cleanup = self._setting("last_cleanup_at")
        return StoreStats(
            root=self.root,
            model_count=len(models),
            owned_bytes=owned,
            referenced_bytes=referenced,
            bytes_by_category=by_category,
            bytes_by_state=by_state,
            total_uses=sum(model.use_count for model in models),
            models=models,
            disk_total_bytes=disk.total,
            disk_free_bytes=disk.free,
            policy=self.policy,
            evicted_count=evicted_count,
            evicted_bytes=evicted_bytes,
            recent_evictions=tuple(StoreEvent(*row) for row in recent_rows),
            last_cleanup_at=None if last_cleanup is None else float(last_cleanup),
        )


_new_installed_model = builder(InstalledModel)
_new_model_file = builder(ModelFile)


def _files_by_model(
    file_rows: Iterable[Sequence[Any]], models_prefix: str
) -> dict[str, list[ModelFile]]:
    """ModelFile values grouped by lower-cased model id (ids ignore case)."""
    grouped: dict[str, list[ModelFile]] = {}
    for model_id, rel_path, role, size, sha256, seal, external, mtime_ns in file_rows:
        key = model_id.lower()
        model_file = _new_model_file(
            rel_path,  # rel_path
            role,  # role
            size,  # size_bytes
            sha256,  # sha256
            seal,  # seal
            external or f"{models_prefix}{key}/{rel_path}",  # location
            external is not None,  # external
            mtime_ns,  # mtime_ns
        )
        files = grouped.get(key)
        if files is None:
            grouped[key] = [model_file]
        else:
            files.append(model_file)
    return grouped


def _log(
    sql: sqlite3.Connection,
    model_id: str | None,
    kind: str,
    *,
    from_state: LifecycleState | None = None,
    to_state: LifecycleState | None = None,
    bytes_: int | None = None,
    detail: str | None = None,
) -> None:
    sql.execute(
        "INSERT INTO events (at, model_id, kind, from_state, to_state, bytes, detail) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            time.time(),
            model_id,
            kind,
            from_state.value if from_state else None,
            to_state.value if to_state else None,
            bytes_,
            detail,
        ),
    )


def _primary_path(folder: Path, files: Sequence[Sequence[Any]]) -> Path:
    """InstalledModel.path's choice, from bare file rows: use() stays under its 2 ms budget
    by not building the whole model."""
    for wanted in ("model", "shard"):
        for rel_path, role, external in files:
            if role == wanted:
                return Path(external) if external else folder / rel_path
    rel_path, _role, external = files[0]
    return Path(external) if external else folder / rel_path


def _not_found(model_id: str) -> ModelNotFoundError:
    message = f"no model {model_id!r} in the store (`iris-models ls` lists what is there)"
    return ModelNotFoundError(message, model_id=model_id)


def _not_ready(model_id: str, state: LifecycleState) -> ModelNotReadyError:
    hint = {
        _S.ERROR: "it failed; remove it and install it again",
        _S.CLEANUP: "it is being removed",
    }.get(state, "it is not installed and verified yet")
    message = f"model {model_id!r} cannot be used: it is {state.value} ({hint})"
    return ModelNotReadyError(message, model_id=model_id, state=state.value)


def _require_installed(model: InstalledModel) -> None:
    if not model.state.is_installed:
        raise _not_ready(model.id, model.state)


def _parse_state(state: LifecycleState | str) -> LifecycleState:
    return parse_choice(LifecycleState, state, "lifecycle state")
