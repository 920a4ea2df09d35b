"""fsck: reconcile the database with the disk after a crash or a hand edit. It reports what
disagrees and, asked to repair, brings the store back to a state where every READY model's
files are present and verified, and no file under the store is unaccounted for."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InvalidModelIdError, IrisModelsError, StoreCorruptError
from ._cleanup import find_leftovers
from ._files import ORPHANS_DIR, owner_of, remove_tree, unique_name
from ._lifecycle import TRANSITIONS, LifecycleState
from ._locks import exclusive_if_free

if TYPE_CHECKING:
    from ._records import InstalledModel, ModelFile
    from ._store import Store

__all__ = ["FsckIssue", "FsckReport", "check_store", "rebuild_database"]

_S = LifecycleState
# States a live download keeps between runs: the download engine resumes them, fsck leaves
# them alone.
_RESUMABLE = (_S.QUEUED, _S.DOWNLOADING, _S.PAUSED, _S.DOWNLOADED)
# The states an install passes through: a record left in one, with no live process holding
# its lock, is an install that died.
_INSTALL_STEPS = (_S.VALIDATING, _S.EXTRACTING, _S.EXTRACTED)


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
    if model.state in (_S.CLEANUP, *_INSTALL_STEPS):
        _check_unfinished(store, model.id, issues, repair=repair)
        return 0
    if not model.state.is_installed:
        return 0  # DISCOVERED or UNINITIALIZED: a record waiting for its files
    # An installed model's files do not change while it is in use: check without a lock.
    problems = []
    for model_file in model.files:
        problem = _check_file(model_file, deep, model.id, on_progress)
        if problem is not None:
            problems.append((model_file, *problem))
    if not problems:
        return len(model.files)
    with contextlib.ExitStack() as stack:
        locked = repair and stack.enter_context(exclusive_if_free(store.root, model.id))
        current = store.find(model.id)
        if current is None or (current.state, current.installed_at) != (
            model.state,
            model.installed_at,
        ):
            return len(model.files)  # removed, reinstalled or moved on meanwhile
        broken = [p for p in problems if p[1] != "modified"]
        failed = False
        if locked and broken:
            reason = "; ".join(f"{kind}: {model_file.path}" for model_file, kind, _, _ in broken)
            failed = _mark_failed(store, model.id, current.state, reason)
        for model_file, kind, detail, hashed_mtime_ns in problems:
            action = None
            if locked and kind == "modified" and hashed_mtime_ns is not None:
                _restamp(store, model.id, model_file.rel_path, hashed_mtime_ns)
                action = "digest still matches; recorded the new modification time"
            elif locked and failed:
                action = "marked the model failed (remove it, or install it again)"
            elif repair and not locked:
                detail += " (in use by a process: not repaired)"
            issues.append(FsckIssue(kind, detail, model.id, str(model_file.path), action))
    return len(model.files)


def _check_unfinished(
    store: Store, model_id: str, issues: list[FsckIssue], *, repair: bool
) -> None:
    """A removal or an install that stopped half-way, unless a live process holds it."""
    with exclusive_if_free(store.root, model_id) as locked:
        if not locked:
            return  # a live process is installing or removing it
        model = store.find(model_id)
        if model is None or model.state not in (_S.CLEANUP, *_INSTALL_STEPS):
            return  # gone, or resting (DISCOVERED: registered, waiting for its files)
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
) -> tuple[str, str, int | None] | None:
    """(kind, detail, the modification time the file had when it was hashed), or None."""
    from ..verify import file_digest

    try:
        stat = model_file.path.stat()
    except FileNotFoundError:
        return "missing_file", "the file is missing", None
    except OSError as error:
        return "missing_file", f"the file cannot be read: {error.strerror}", None
    if stat.st_size != model_file.size_bytes:
        detail = f"{stat.st_size} bytes on disk, {model_file.size_bytes} recorded"
        return "size_mismatch", detail, None
    if not deep and model_file.mtime_ns == stat.st_mtime_ns:
        return None

    def report(done: int, total: int) -> None:
        if on_progress is not None:
            on_progress(model_id, done, total)

    try:
        # Raises FileChangedError if the file changes while it is read: then the digest
        # below belongs to the modification time taken above.
        digest = str(file_digest(model_file.path, "sha256", on_progress=report))
    except (OSError, IrisModelsError) as error:
        return "missing_file", f"the file cannot be read: {error}", None
    if digest != model_file.sha256:
        detail = f"sha256 is now {digest}, {model_file.sha256} recorded"
        return "digest_mismatch", detail, None
    if model_file.mtime_ns != stat.st_mtime_ns:
        detail = "modification time changed; contents verified unchanged"
        return "modified", detail, stat.st_mtime_ns
    return None


def _check_disk(store: Store, issues: list[FsckIssue], *, repair: bool) -> None:
    for leftover in find_leftovers(store):
        with exclusive_if_free(store.root, owner_of(leftover.path)) as free:
            if not free or not leftover.path.exists():
                continue  # a live process took it up meanwhile
            action = None
            if repair:
                remove_tree(leftover.path)
                action = "deleted"
            detail = f"{leftover.reason} ({leftover.size_bytes} bytes)"
            issues.append(FsckIssue("leftover", detail, None, str(leftover.path), action))
    # Folders set aside for adoption: by an install that found one in its way, or by an
    # fsck that died before it finished adopting.
    for entry in _entries(store.root / ORPHANS_DIR):
        model_id = owner_of(entry)
        with exclusive_if_free(store.root, model_id) as locked:
            if locked and entry.exists():
                _orphan(store, entry, model_id, issues, repair=repair)
    for folder in _entries(store.models_dir):
        with exclusive_if_free(store.root, folder.name) as locked:
            if not locked or not folder.exists():
                continue
            try:
                model = store.find(folder.name)
            except InvalidModelIdError:
                model = None
            if model is None:
                _orphan(store, folder, folder.name, issues, repair=repair)
            elif model.state not in _RESUMABLE:
                _stray_files(model, folder, issues, repair=repair)


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


def _orphan(
    store: Store, folder: Path, model_id: str, issues: list[FsckIssue], *, repair: bool
) -> None:
    """A model folder with no database record: what a crash between moving files into
    place and committing leaves, or what a lost database leaves. Repair adopts its GGUF
    files again (parsed and hashed, as an install does). The folder is set aside in
    ``.orphans/`` meanwhile, which cleanup never deletes, and comes back if adoption fails.
    The caller holds the model's lock."""
    ggufs = sorted(p.name for p in folder.rglob("*.gguf"))
    detail = f"a model folder with no record ({len(ggufs)} GGUF files)"
    if not repair:
        issues.append(FsckIssue("orphan_folder", detail, model_id, str(folder)))
        return
    holding = folder
    if folder.parent != store.root / ORPHANS_DIR:
        holding = store.root / ORPHANS_DIR / unique_name(model_id)
        holding.parent.mkdir(exist_ok=True)
        folder.rename(holding)
    adopted, errors = _adopt(store, model_id, holding)
    if not errors:
        remove_tree(holding)  # what is left is not GGUF: nothing of the model's
        action = (
            f"adopted as {', '.join(adopted)} (parsed and hashed again)"
            if adopted
            else "deleted (no GGUF file in it)"
        )
        issues.append(FsckIssue("orphan_folder", detail, model_id, str(folder), action))
        return
    home = store.models_dir / model_id.lower()
    if holding != home and not home.exists():
        store.models_dir.mkdir(exist_ok=True)
        holding.rename(home)
    detail += f"; could not adopt it: {'; '.join(errors)}"
    issues.append(FsckIssue("orphan_folder", detail, model_id, str(home)))


def _adopt(store: Store, model_id: str, holding: Path) -> tuple[list[str], list[str]]:
    """Installs the models found in ``holding`` (the first under ``model_id``, whose lock the
    caller holds). Returns the ids adopted and the errors of those that were not."""
    from ._import import discover
    from ._install import install_model
    from ._policy import Priority
    from ._store import Placement

    adopted: list[str] = []
    errors: list[str] = []
    candidates, _skipped = discover(holding)
    for index, candidate in enumerate(candidates):
        chosen = model_id if index == 0 else candidate.model_id
        try:
            install_model(
                store, chosen, candidate.files, placement=Placement.MOVE, name=candidate.name,
                category="llm", source=None, priority=Priority.NORMAL, pinned=False,
                metadata={"adopted_by": "fsck"}, on_progress=None, lock_held=index == 0,
                adopting=True,
            )  # fmt: skip
            adopted.append(chosen)
        except (IrisModelsError, OSError) as error:
            errors.append(f"{candidate.source}: {error}")
    return adopted, errors


def _forget(store: Store, model_id: str, reason: str) -> None:
    from ._store import _log

    with store.db.write() as sql:
        sql.execute("DELETE FROM models WHERE id = ?", (model_id,))
        _log(sql, model_id, "repaired", detail=reason)


def _restamp(store: Store, model_id: str, rel_path: str, mtime_ns: int) -> None:
    with store.db.write() as sql:
        sql.execute(
            "UPDATE files SET mtime_ns = ? WHERE model_id = ? AND rel_path = ?",
            (mtime_ns, model_id, rel_path),
        )


def _mark_failed(store: Store, model_id: str, state: LifecycleState, reason: str) -> bool:
    """Moves an installed model to ERROR (through VALIDATING where the table asks for it).
    Returns False if the table allows neither from where the model is."""
    try:
        if _S.ERROR not in TRANSITIONS[state]:
            if _S.VALIDATING not in TRANSITIONS[state]:
                return False
            store.transition(model_id, _S.VALIDATING, reason="fsck found a problem")
        store.transition(model_id, _S.ERROR, reason=reason)
    except IrisModelsError:
        return False
    return True


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
