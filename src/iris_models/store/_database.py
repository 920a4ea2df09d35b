"""The store's SQLite database: one connection per thread and process, WAL, write
transactions that wait for other writers instead of failing, migrations on open, and SQLite
failures turned into StoreError subclasses that say what to do."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

from ..errors import (
    InsufficientSpaceError,
    NotAStoreError,
    StoreBusyError,
    StoreCorruptError,
    StoreError,
    StoreReadOnlyError,
    StoreVersionError,
)
from ._schema import APPLICATION_ID, MIGRATIONS, Migration

__all__ = ["Database", "translate_sqlite_error"]

T = TypeVar("T")

DEFAULT_BUSY_TIMEOUT_S = 30.0


class Database:
    """A store database at ``path``, created and migrated on first use.

    Write with ``with db.write() as sql: ...`` (BEGIN IMMEDIATE: writers queue for the lock
    up front, so a transaction never fails half-way on a lock another process holds); read
    with ``with db.read() as sql: ...`` (one consistent snapshot). Connections are made per
    thread and per process, so a Database may be shared by threads and survives a fork.
    """

    def __init__(
        self,
        path: Path,
        *,
        busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
        migrations: Sequence[Migration] = MIGRATIONS,
    ):
        self.path = path
        self.busy_timeout_s = busy_timeout_s
        self._migrations = tuple(migrations)
        self._local = threading.local()
        # Weak: a thread's connection closes when the thread ends (its thread-local goes),
        # so a thread-per-request application does not collect open connections.
        self._all_holders: weakref.WeakSet[_Holder] = weakref.WeakSet()
        self._all_lock = threading.Lock()
        self.read_only = False
        self._immutable = False
        try:
            with translate_sqlite_error(self.path):
                self._open_and_migrate()
        except BaseException:
            self.close()  # a refused database keeps no connection (nor the file) open
            raise

    # -- connections ---------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        holder: _Holder | None = getattr(self._local, "holder", None)
        if holder is not None and self._local.pid == os.getpid():
            return holder.connection
        holder = _Holder(self._connect())
        with self._all_lock:
            self._all_holders.add(holder)
        self._local.holder = holder
        self._local.pid = os.getpid()
        return holder.connection

    def _connect(self) -> sqlite3.Connection:
        if self.read_only:
            uri = (
                f"{self.path.resolve().as_uri()}?{'immutable=1' if self._immutable else 'mode=ro'}"
            )
            connection = sqlite3.connect(
                uri, uri=True, timeout=self.busy_timeout_s, isolation_level=None,
                check_same_thread=False,
            )  # fmt: skip
        else:
            connection = sqlite3.connect(
                self.path, timeout=self.busy_timeout_s, isolation_level=None,
                check_same_thread=False,
            )  # fmt: skip
        try:
            connection.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
            connection.execute("PRAGMA foreign_keys = ON")
            if not self.read_only:
                # NORMAL in WAL mode: a commit survives a killed process; after a power cut
                # the last commits may roll back, and fsck re-adopts files they described.
                connection.execute("PRAGMA synchronous = NORMAL")
        except BaseException:
            connection.close()
            raise
        return connection

    def close(self) -> None:
        """Closes every connection this object opened (in any thread)."""
        with self._all_lock:
            holders, self._all_holders = list(self._all_holders), weakref.WeakSet()
        for holder in holders:
            holder.close()
        self._local = threading.local()

    # -- transactions --------------------------------------------------------------------

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: committed when the block ends, rolled back on an exception."""
        if self.read_only:
            message = f"{self.path}: the store is read-only here; it can be listed, not changed"
            raise StoreReadOnlyError(message)
        with translate_sqlite_error(self.path):
            connection = self._connection()
            self._begin(connection, "BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    connection.execute("ROLLBACK")
                raise
            self._commit(connection)

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every query in the block sees the same snapshot."""
        with translate_sqlite_error(self.path):
            connection = self._connection()
            self._begin(connection, "BEGIN")
            try:
                yield connection
            finally:
                with contextlib.suppress(sqlite3.Error):
                    connection.execute("COMMIT")

    def _begin(self, connection: sqlite3.Connection, statement: str) -> None:
        # busy_timeout makes SQLite wait for the lock itself; _retry_busy covers the cases
        # where SQLite reports "locked" without waiting.
        self._retry_busy(lambda: connection.execute(statement))

    def _commit(self, connection: sqlite3.Connection) -> None:
        try:
            connection.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                connection.execute("ROLLBACK")
            raise

    # -- opening -------------------------------------------------------------------------

    def _open_and_migrate(self) -> None:
        try:
            connection = self._connection()
            # Who the file belongs to is checked before anything is written to it.
            self._check_identity(connection)
            mode = self._retry_busy(
                lambda: connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            )
        except sqlite3.OperationalError as error:
            if not _is_read_only(error):
                raise
            self._switch_to_read_only()
            connection = self._connection()
            self._check_identity(connection)
            return
        if str(mode).lower() != "wal":
            message = f"{self.path}: SQLite could not switch the database to WAL mode ({mode})"
            raise StoreError(message)
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        if version < len(self._migrations):
            self._migrate(connection)

    def _retry_busy(self, work: Callable[[], T]) -> T:
        # Some statements (switching the journal mode, WAL recovery) report "locked" without
        # calling SQLite's busy handler: retry them until the same deadline.
        deadline = time.monotonic() + self.busy_timeout_s
        delay_s = 0.001
        while True:
            try:
                return work()
            except sqlite3.OperationalError as error:
                if not _is_busy(error) or time.monotonic() >= deadline:
                    raise
            time.sleep(delay_s)
            delay_s = min(delay_s * 2, 0.05)

    def _switch_to_read_only(self) -> None:
        self.close()
        if not self.path.exists():
            message = f"{self.path.parent}: cannot create the store database here (read-only)"
            raise StoreReadOnlyError(message)
        self.read_only = True
        # mode=ro still needs the WAL index (-shm) to exist or be creatable. A store closed
        # cleanly has no WAL left to read, so it can be opened immutable instead.
        wal = Path(f"{self.path}-wal")
        shm = Path(f"{self.path}-shm")
        self._immutable = not shm.exists() and (not wal.exists() or wal.stat().st_size == 0)

    def _check_identity(self, connection: sqlite3.Connection) -> None:
        application_id = connection.execute("PRAGMA application_id").fetchone()[0]
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        if application_id not in (0, APPLICATION_ID):
            message = (
                f"{self.path} is an SQLite database of another program "
                f"(application id {application_id:#x}), not an iris-models store; point the "
                "store somewhere else (IRIS_MODELS_HOME or --store)"
            )
            raise NotAStoreError(message)
        if application_id == 0 and version == 0:
            tables = connection.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
            ).fetchone()[0]
            if tables:
                message = (
                    f"{self.path} holds tables of another program, not an iris-models store; "
                    "point the store somewhere else (IRIS_MODELS_HOME or --store)"
                )
                raise NotAStoreError(message)
        if version > len(self._migrations):
            message = (
                f"{self.path} was written by a newer iris-models (schema version {version}; "
                f"this one knows up to {len(self._migrations)}); nothing was changed: upgrade "
                "iris-models to use this store"
            )
            raise StoreVersionError(message)

    def _migrate(self, connection: sqlite3.Connection) -> None:
        self._begin(connection, "BEGIN IMMEDIATE")
        try:
            # Another process may have migrated while this one waited for the lock.
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            for index in range(version, len(self._migrations)):
                self._migrations[index](connection)
                connection.execute(f"PRAGMA user_version = {index + 1}")
            connection.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                connection.execute("ROLLBACK")
            raise
        self._commit(connection)


class _Holder:
    """One thread's connection; closes it when the thread-local that keeps it goes away."""

    __slots__ = ("__weakref__", "connection")

    def __init__(self, connection: sqlite3.Connection):
        self.connection = connection

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.connection.close()

    def __del__(self) -> None:
        self.close()


def _is_busy(error: sqlite3.Error) -> bool:
    text = str(error).lower()
    return "database is locked" in text or "database is busy" in text


def _is_read_only(error: sqlite3.Error) -> bool:
    text = str(error).lower()
    return "readonly" in text or "read-only" in text or "unable to open database file" in text


@contextlib.contextmanager
def translate_sqlite_error(path: Path) -> Iterator[None]:
    """SQLite's failures as the StoreError a user can act on; the message names the file."""
    try:
        yield
    except sqlite3.Error as error:
        text = str(error).lower()
        if _is_busy(error):
            message = (
                f"{path}: other processes kept the store locked for too long ({error}); "
                "try again when they have finished"
            )
            raise StoreBusyError(message) from error
        if "not a database" in text or "malformed" in text or "corrupt" in text:
            message = (
                f"{path}: the store database is damaged ({error}); nothing was changed. "
                "`iris-models fsck --repair` moves it aside and rebuilds the store from the "
                "model files on disk"
            )
            raise StoreCorruptError(message) from error
        if _is_read_only(error):
            message = f"{path}: the store cannot be written here ({error})"
            raise StoreReadOnlyError(message) from error
        if "disk is full" in text:
            message = f"{path}: the disk holding the store is full ({error}); nothing was changed"
            raise InsufficientSpaceError(message, bytes_needed=0, bytes_available=0) from error
        message = f"{path}: the store database failed: {error}"
        raise StoreError(message) from error
