"""Per-model file locks: shared while a model is in use, exclusive while it is installed,
removed or evicted. The kernel drops a lock when its process dies, so a crashed process
never holds a model forever."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import StoreReadOnlyError

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["LOCKS_DIR", "PROBE_GRACE_S", "ModelLock", "exclusive_if_free", "locked_model_ids"]

LOCKS_DIR = ".locks"
# How long an exclusive lock is worth waiting for when the caller would otherwise give up:
# another process's in-use probe (is_held_elsewhere) holds it for microseconds.
PROBE_GRACE_S = 0.1
_SUFFIX = ".lock"


class ModelLock:
    """A lock on one model: ``<root>/.locks/<id>.lock`` under ``flock``.

    Each instance opens its own file description, so locks taken by two threads of one
    process conflict exactly as locks of two processes do. Lock files are unlinked by the
    last holder; a holder checks after locking that the path still names the file it locked,
    and starts again if not, so an unlinked file never grants a lock.
    """

    def __init__(self, root: Path, model_id: str):
        # Lower case: ids are case-insensitive (see the models table), lock names must agree.
        self.path = root / LOCKS_DIR / f"{model_id.lower()}{_SUFFIX}"
        self._fd: int | None = None
        self.exclusive = False

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, *, exclusive: bool, wait_s: float | None = None) -> bool:
        """Takes the lock; returns False if ``wait_s`` passed first (0: do not wait, None:
        wait as long as it takes)."""
        if self._fd is not None:
            message = f"{self.path}: lock already held by this object"
            raise RuntimeError(message)
        operation = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        deadline = None if wait_s is None else time.monotonic() + wait_s
        delay_s = 0.001
        while True:
            fd = self._open()
            try:
                if deadline is None:
                    fcntl.flock(fd, operation)
                else:
                    fcntl.flock(fd, operation | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                if deadline is None or time.monotonic() >= deadline:
                    return False
                time.sleep(delay_s)
                delay_s = min(delay_s * 2, 0.02)
                continue
            except BaseException:
                os.close(fd)
                raise
            if _still_linked(fd, self.path):
                self._fd = fd
                self.exclusive = exclusive
                return True
            os.close(fd)  # the last holder unlinked it while this one waited: start again

    def release(self, *, unlink: bool = False) -> None:
        """Drops the lock. ``unlink`` removes the lock file when nobody else holds it."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if unlink:
                with contextlib.suppress(BlockingIOError):
                    if not self.exclusive:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    if _still_linked(fd, self.path):
                        with contextlib.suppress(FileNotFoundError):
                            self.path.unlink()
        finally:
            os.close(fd)

    def is_held_elsewhere(self) -> bool:
        """Whether any other holder has the model locked right now (a quick probe)."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    def _open(self) -> int:
        try:
            try:
                return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except FileNotFoundError:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except PermissionError as error:
            message = (
                f"{self.path.parent}: cannot lock the model here ({error.strerror}); the store "
                "belongs to another user or is read-only"
            )
            raise StoreReadOnlyError(message) from error

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()


@contextlib.contextmanager
def exclusive_if_free(root: Path, model_id: str) -> Iterator[bool]:
    """Holds the model's exclusive lock for the block if it is free (yields False if a live
    process holds it: then leave the model, and anything named after it, alone)."""
    lock = ModelLock(root, model_id)
    acquired = lock.acquire(exclusive=True, wait_s=PROBE_GRACE_S)
    try:
        yield acquired
    finally:
        lock.release(unlink=True)


def _still_linked(fd: int, path: Path) -> bool:
    try:
        named = path.stat()
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def locked_model_ids(root: Path) -> set[str]:
    """Lower-cased ids of the models some process holds a lock on now (in use, or being
    installed or removed). Lock files exist only while held, or after a crash, so this looks
    at few files."""
    try:
        names = os.listdir(root / LOCKS_DIR)  # noqa: PTH208 - names only, and faster
    except FileNotFoundError:
        return set()
    held = set()
    for name in names:
        if name.endswith(_SUFFIX):
            model_id = name[: -len(_SUFFIX)]
            if ModelLock(root, model_id).is_held_elsewhere():
                held.add(model_id)
    return held
