"""fsck: reconcile the database with the disk after a crash or a hand edit. It reports what
disagrees and, asked to repair, brings the store back to a state where every READY model's
files are present and verified, and no file under the store is unaccounted for."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InvalidModelIdError, IrisModelsError, StoreCorruptError
from ._files import dir_size, remove_tree
from ._lifecycle import LifecycleState
from ._locks import ModelLock, locked_model_ids

if TYPE_CHECKING:
    from ._records import InstalledModel, ModelFile
    from ._store import Store

__all__ = ["FsckIssue", "FsckReport", "check_store", "rebuild_database"]

_S = LifecycleState
# States a live download keeps between runs: the download engine resumes them, fsck leaves
# them alone.
_RESUMABLE = (_S.QUEUED, _S.DOWNLOADING, _S.PAUSED, _S.DOWNLOADED)


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
    it, a file is re-hashed only when its size or modification time changed."""
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
    held = locked_model_ids(store.root)
    models = store.list_models()
    files_checked = 0
    for model in models:
        if model.id.lower() in held:
            continue  # a live process is installing, using or removing it
        files_checked += _check_model(store, model, issues, repair=repair, deep=deep,
                                      on_progress=on_progress)  # fmt: skip
    _check_disk(store, held, issues, repair=repair)
    return FsckReport(integrity, len(models), files_checked, tuple(issues), repair)


def _check_model(
    store: Store,
    model: InstalledModel,
    issues: list[FsckIssue],
    *,
    repair: bool,
    deep: bool,
    on_progress: Callable[[str, int, int], None] | None,
) -> int:
    if model.state is _S.CLEANUP:
        action = None
        if repair:
            with contextlib.suppress(IrisModelsError):
                store._remove(model.id, kind="removed", reason="finished by fsck", wait_s=0)
                action = "finished the removal"
        issues.append(
            FsckIssue("unfinished_removal", "removal was interrupted", model.id, None, action)
        )
        return 0
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
        action = None
        if repair:
            _forget(store, model.id, "abandoned install cleared by fsck")
            action = "forgot the record (its folder, if any, is checked as an orphan)"
        issues.append(
            FsckIssue(
                "abandoned_install",
                f"an install stopped at {model.state.value}",
                model.id,
                None,
                action,
            )
        )
        return 0
    problems = []
    for model_file in model.files:
        problem = _check_file(model_file, deep, model.id, on_progress)
        if problem is not None:
            problems.append((model_file, *problem))
    if not problems:
        return len(model.files)
    broken = [p for p in problems if p[1] != "modified"]
    for model_file, kind, detail in problems:
        action = None
        if repair and kind == "modified":
            _restamp(store, model.id, model_file.rel_path)
            action = "digest still matches; recorded the new modification time"
        elif repair:
            action = "marked the model failed (remove it, or install it again)"
        issues.append(FsckIssue(kind, detail, model.id, str(model_file.path), action))
    if repair and broken:
        reason = "; ".join(f"{kind}: {model_file.path}" for model_file, kind, _ in broken)
        with contextlib.suppress(IrisModelsError):
            _mark_failed(store, model.id, model.state, reason)
    return len(model.files)


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


def _check_disk(store: Store, held: set[str], issues: list[FsckIssue], *, repair: bool) -> None:
    known = {model.id.lower(): model for model in store.list_models()}
    for folder_name, reason in (
        (".staging", "abandoned install"),
        (".trash", "unfinished removal"),
    ):
        folder = store.root / folder_name
        with contextlib.suppress(FileNotFoundError):
            for entry in sorted(folder.iterdir()):
                if entry.name.rsplit(".", 1)[0] in held:
                    continue
                action = None
                if repair:
                    remove_tree(entry)
                    action = "deleted"
                size = dir_size(entry) if not repair else None
                detail = reason if size is None else f"{reason} ({size} bytes)"
                issues.append(FsckIssue("leftover", detail, None, str(entry), action))
    try:
        folders = sorted(store.models_dir.iterdir())
    except FileNotFoundError:
        return
    for folder in folders:
        name = folder.name
        if name in held:
            continue
        model = known.get(name)
        if model is None:
            _orphan(store, folder, issues, repair=repair)
            continue
        if model.state in _RESUMABLE:
            continue
        expected = {f.rel_path for f in model.files if not f.external}
        for path in sorted(folder.rglob("*")):
            if path.is_dir():
                continue
            rel = path.relative_to(folder).as_posix()
            if rel in expected:
                continue
            action = None
            if repair:
                remove_tree(path)
                action = "deleted"
            detail = "a file the store did not record (a leftover part file or a stray copy)"
            issues.append(FsckIssue("stray_file", detail, model.id, str(path), action))


def _orphan(store: Store, folder: Path, issues: list[FsckIssue], *, repair: bool) -> None:
    """A model folder with no database record: what a crash between moving files into
    place and committing leaves, or what a lost database leaves. Repair adopts its GGUF
    files (parsed and hashed again) and deletes the rest."""
    from ._import import discover
    from ._store import Placement

    ggufs = sorted(p.name for p in folder.rglob("*.gguf"))
    detail = f"a model folder with no record ({len(ggufs)} GGUF files)"
    action = None
    if repair:
        action = _adopt(store, folder, discover, Placement)
    issues.append(FsckIssue("orphan_folder", detail, folder.name, str(folder), action))


def _adopt(store: Store, folder: Path, discover: Any, placement: Any) -> str:
    holding = store.root / ".staging" / f"{folder.name}.adopt{os.getpid()}"
    holding.parent.mkdir(exist_ok=True)
    lock = ModelLock(store.root, folder.name)
    if not lock.acquire(exclusive=True, wait_s=0):
        return "skipped: another process holds the model"
    try:
        folder.rename(holding)
    finally:
        lock.release()
    adopted = []
    try:
        candidates, _skipped = discover(holding)
        for index, candidate in enumerate(candidates):
            model_id = folder.name if index == 0 else candidate.model_id
            try:
                store.install(model_id, candidate.files, placement=placement.MOVE,
                              name=candidate.name, source=None,
                              metadata={"adopted_by": "fsck"})  # fmt: skip
                adopted.append(model_id)
            except (IrisModelsError, OSError, InvalidModelIdError):
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
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{database}{suffix}")
        if source.exists():
            source.rename(Path(f"{target}{suffix}"))
    if not target.exists():
        message = f"{database} does not exist; there is nothing to rebuild"
        raise StoreCorruptError(message)
    return target
