"""fsck: reconcile the database with the disk after a crash or a hand edit. It reports what
disagrees and, asked to repair, brings the store back to a state where every READY model's
files are present and verified, and no file under the store is unaccounted for."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InvalidModelIdError, IrisModelsError, StoreCorruptError
from ._files import dir_size, remove_tree
from ._lifecycle import LifecycleState
from ._locks import ModelLock

if TYPE_CHECKING:
    from ._records import InstalledModel, ModelFile
    from ._store import Store

__all__ = ["FsckIssue", "FsckReport", "check_store", "rebuild_database"]

_S = LifecycleState
# States a live download keeps between runs: the download engine resumes them, fsck leaves
# them alone.
_RESUMABLE = (_S.QUEUED, _S.DOWNLOADING, _S.PAUSED, _S.DOWNLOADED)
# Another process's in-use probe holds a lock for microseconds: wait that long, no longer.
_PROBE_GRACE_S = 0.1


@dataclass(frozen=True)
class FsckIssue:
    kind: str
    """database, unfinished_removal, abandoned_install, failed, missing_file, size_mismatch,
    digest_mismatch, modified, orphan_folder, stray_file, leftover"""
    detail: str
    model_id: str | None = None
    path: str | None = None
    action: str | None = None
    """What repair did (None: only reported)."""
    note: bool = False
    """Worth knowing but consistent (a model recorded as failed): does not make fsck fail."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "model_id": self.model_id,
            "path": self.path,
            "detail": self.detail,
            "action": self.action,
            "note": self.note,
        }


@dataclass(frozen=True)
class FsckReport:
    integrity: str
    models_checked: int
    files_checked: int
    issues: tuple[FsckIssue, ...] = field(default_factory=tuple)
    repaired: bool = False

    @property
    def ok(self) -> bool:
        """Nothing is wrong (after repair: nothing is left unrepaired)."""
        problems = [issue for issue in self.issues if not issue.note]
        if not self.repaired:
            return not problems
        return all(issue.action is not None for issue in problems)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "repaired": self.repaired,
            "integrity": self.integrity,
            "models_checked": self.models_checked,
            "files_checked": self.files_checked,
            "issues": [issue.to_dict() for issue in self.issues],
        }


def check_store(
    store: Store,
    *,
    repair: bool = False,
    deep: bool = False,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> FsckReport:
    """Checks (and with ``repair``, fixes) the store. ``deep`` re-hashes every file; without
    it, a file is re-hashed only when its size or modification time changed.

    Safe while other processes work on the store: anything is judged and repaired only under
    its model's exclusive lock, and what a live process holds is left alone (a model in use
    is still checked, read-only).
    """
    issues: list[FsckIssue] = []
    with store.db.read() as sql:
        integrity = "; ".join(row[0] for row in sql.execute("PRAGMA integrity_check"))
    if integrity != "ok":
        issues.append(
            FsckIssue(
                "database",
                f"SQLite integrity check failed: {integrity}",
                path=str(store.db.path),
            )
        )
    models = store.list_models()
    files_checked = 0
    for model in models:
        files_checked += _check_model(store, model, issues, repair=repair, deep=deep,
                                      on_progress=on_progress)  # fmt: skip
    _check_disk(store, issues, repair=repair)
    return FsckReport(integrity, len(models), files_checked, tuple(issues), repair)


@contextlib.contextmanager
def _exclusive(store: Store, model_id: str) -> Iterator[bool]:
    """Holds the model's exclusive lock for the block if it is free (yields False if a live
    process holds it: then leave the model alone)."""
    lock = ModelLock(store.root, model_id)
    acquired = lock.acquire(exclusive=True, wait_s=_PROBE_GRACE_S)
    try:
        yield acquired
    finally:
        lock.release(unlink=True)


def _check_model(
    store: Store,
    model: InstalledModel,
    issues: list[FsckIssue],
    *,
    repair: bool,
    deep: bool,
    on_progress: Callable[[str, int, int], None] | None,
) -> int:
    if model.state is _S.ERROR:
        issues.append(
            FsckIssue(
                "failed",
                f"the model failed: {model.state_reason}; remove it or install it again",
                model.id,
                note=True,
            )
        )
        return 0
    if model.state in _RESUMABLE:
        return 0
    if not model.state.is_installed:
        _check_unfinished(store, model.id, issues, repair=repair)
        return 0
    # An installed model's files do not change while it is in use: check without a lock.
    problems = []
    for model_file in model.files:
        problem = _check_file(model_file, deep, model.id, on_progress)
        if problem is not None:
            problems.append((model_file, *problem))
    if not problems:
        return len(model.files)
    with contextlib.ExitStack() as stack:
        locked = repair and stack.enter_context(_exclusive(store, model.id))
        current = store.find(model.id)
        if current is None or current.state is not model.state:
            return len(model.files)  # removed or changed meanwhile: not a problem of the store
        broken = [p for p in problems if p[1] != "modified"]
        for model_file, kind, detail in problems:
            action = None
            if locked and kind == "modified":
                _restamp(store, model.id, model_file.rel_path)
                action = "digest still matches; recorded the new modification time"
            elif locked:
                action = "marked the model failed (remove it, or install it again)"
            elif repair:
                detail += " (in use by a process: not repaired)"
            issues.append(FsckIssue(kind, detail, model.id, str(model_file.path), action))
        if locked and broken:
            reason = "; ".join(f"{kind}: {model_file.path}" for model_file, kind, _ in broken)
            with contextlib.suppress(IrisModelsError):
                _mark_failed(store, model.id, model.state, reason)
    return len(model.files)


def _check_unfinished(
    store: Store, model_id: str, issues: list[FsckIssue], *, repair: bool
) -> None:
    """A removal or an install that stopped half-way, unless a live process holds it."""
    with _exclusive(store, model_id) as locked:
        if not locked:
            return  # a live process is installing or removing it
        model = store.find(model_id)
        if model is None or model.state.is_installed or model.state in (_S.ERROR, *_RESUMABLE):
            return
        action = None
        if model.state is _S.CLEANUP:
            if repair:
                with contextlib.suppress(IrisModelsError):
                    store._remove(model.id, kind="removed", reason="finished by fsck",
                                  wait_s=0, lock_held=True)  # fmt: skip
                    action = "finished the removal"
            issues.append(FsckIssue("unfinished_removal", "removal was interrupted",
                                    model.id, None, action))  # fmt: skip
            return
        if repair:
            _forget(store, model.id, "abandoned install cleared by fsck")
            action = "forgot the record (its folder, if any, is checked as an orphan)"
        detail = f"an install stopped at {model.state.value}"
        issues.append(FsckIssue("abandoned_install", detail, model.id, None, action))


def _check_file(
    model_file: ModelFile,
    deep: bool,
    model_id: str,
    on_progress: Callable[[str, int, int], None] | None,
) -> tuple[str, str] | None:
    from ..verify import file_digest

    try:
        stat = model_file.path.stat()
    except FileNotFoundError:
        return "missing_file", "the file is missing"
    except OSError as error:
        return "missing_file", f"the file cannot be read: {error.strerror}"
    if stat.st_size != model_file.size_bytes:
        return (
            "size_mismatch",
            f"{stat.st_size} bytes on disk, {model_file.size_bytes} recorded",
        )
    recorded_mtime = model_file.mtime_ns
    if not deep and recorded_mtime == stat.st_mtime_ns:
        return None

    def report(done: int, total: int) -> None:
        if on_progress is not None:
            on_progress(model_id, done, total)

    try:
        digest = str(file_digest(model_file.path, "sha256", on_progress=report))
    except (OSError, IrisModelsError) as error:
        return "missing_file", f"the file cannot be read: {error}"
    if digest != model_file.sha256:
        return "digest_mismatch", f"sha256 is now {digest}, {model_file.sha256} recorded"
    if recorded_mtime != stat.st_mtime_ns:
        return "modified", "modification time changed; contents verified unchanged"
    return None


def _check_disk(store: Store, issues: list[FsckIssue], *, repair: bool) -> None:
    for folder_name, reason in (
        (".staging", "abandoned install"),
        (".trash", "unfinished removal"),
    ):
        for entry in _entries(store.root / folder_name):
            # Entries are named "<model id>.<token>": their model's lock says if they are live.
            with _exclusive(store, entry.name.rsplit(".", 1)[0]) as locked:
                if not locked or not entry.exists():
                    continue
                action = None
                size = dir_size(entry)
                if repair:
                    remove_tree(entry)
                    action = "deleted"
                issues.append(
                    FsckIssue("leftover", f"{reason} ({size} bytes)", None, str(entry), action)
                )
    adoptions: list[tuple[int, Path]] = []
    for folder in _entries(store.models_dir):
        with _exclusive(store, folder.name) as locked:
            if not locked or not folder.exists():
                continue
            try:
                model = store.find(folder.name)
            except InvalidModelIdError:
                model = None
            if model is None:
                holding = _orphan(store, folder, issues, repair=repair)
                if holding is not None:
                    adoptions.append((len(issues) - 1, holding))
            elif model.state not in _RESUMABLE:
                _stray_files(model, folder, issues, repair=repair)
    # Adopted once the folder's lock is released: install takes the lock itself.
    for index, holding in adoptions:
        issues[index] = replace(
            issues[index], action=_adopt(store, issues[index].model_id, holding)
        )


def _entries(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir())
    except FileNotFoundError:
        return []


def _stray_files(
    model: InstalledModel, folder: Path, issues: list[FsckIssue], *, repair: bool
) -> None:
    expected = {f.rel_path for f in model.files if not f.external}
    for path in sorted(folder.rglob("*")):
        if path.is_dir() or path.relative_to(folder).as_posix() in expected:
            continue
        action = None
        if repair:
            remove_tree(path)
            action = "deleted"
        detail = "a file the store did not record (a leftover part file or a stray copy)"
        issues.append(FsckIssue("stray_file", detail, model.id, str(path), action))


def _orphan(store: Store, folder: Path, issues: list[FsckIssue], *, repair: bool) -> Path | None:
    """A model folder with no database record: what a crash between moving files into
    place and committing leaves, or what a lost database leaves. Repair moves it aside to be
    adopted (its GGUF files parsed and hashed again, the rest deleted) and returns where it
    went. The caller holds the folder's lock."""
    ggufs = sorted(p.name for p in folder.rglob("*.gguf"))
    detail = f"a model folder with no record ({len(ggufs)} GGUF files)"
    issues.append(FsckIssue("orphan_folder", detail, folder.name, str(folder)))
    if not repair:
        return None
    holding = store.root / ".staging" / f"{folder.name}.adopt{os.getpid()}"
    holding.parent.mkdir(exist_ok=True)
    folder.rename(holding)
    return holding


def _adopt(store: Store, model_id: str | None, holding: Path) -> str:
    from ._import import discover
    from ._store import Placement

    adopted = []
    try:
        candidates, _skipped = discover(holding)
        for index, candidate in enumerate(candidates):
            chosen = model_id if index == 0 and model_id else candidate.model_id
            try:
                store.install(chosen, candidate.files, placement=Placement.MOVE,
                              name=candidate.name, metadata={"adopted_by": "fsck"})  # fmt: skip
                adopted.append(chosen)
            except (IrisModelsError, OSError):
                continue
    finally:
        remove_tree(holding)
    if adopted:
        return f"adopted as {', '.join(adopted)} (parsed and hashed again); other files deleted"
    return "deleted (no usable GGUF file in it)"


def _forget(store: Store, model_id: str, reason: str) -> None:
    with store.db.write() as sql:
        sql.execute("DELETE FROM models WHERE id = ?", (model_id,))
        sql.execute(
            "INSERT INTO events (at, model_id, kind, detail) VALUES (?, ?, 'repaired', ?)",
            (time.time(), model_id, reason),
        )


def _restamp(store: Store, model_id: str, rel_path: str) -> None:
    model = store.get(model_id)
    for model_file in model.files:
        if model_file.rel_path == rel_path:
            mtime = model_file.path.stat().st_mtime_ns
            with store.db.write() as sql:
                sql.execute(
                    "UPDATE files SET mtime_ns = ? WHERE model_id = ? AND rel_path = ?",
                    (mtime, model.id, rel_path),
                )


def _mark_failed(store: Store, model_id: str, state: LifecycleState, reason: str) -> None:
    if state is not _S.VALIDATING:
        store.transition(model_id, _S.VALIDATING, reason="fsck found a problem")
    store.transition(model_id, _S.ERROR, reason=reason)


def rebuild_database(root: Path) -> Path:
    """Moves a damaged database (and its WAL) aside, so that a new one can be made and the
    model folders adopted again. Returns where the old one went; nothing is deleted."""
    from ._store import DATABASE_NAME

    database = root / DATABASE_NAME
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = root / f"{DATABASE_NAME}.damaged-{stamp}"
    attempt = 1
    while any(Path(f"{target}{end}").exists() for end in ("", "-wal", "-shm")):
        attempt += 1  # never overwrite an earlier copy
        target = root / f"{DATABASE_NAME}.damaged-{stamp}-{attempt}"
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{database}{suffix}")
        if source.exists():
            source.rename(Path(f"{target}{suffix}"))
    if not target.exists():
        message = f"{database} does not exist; there is nothing to rebuild"
        raise StoreCorruptError(message)
    return target
