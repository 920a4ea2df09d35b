"""Installing a model: place its files in a staging folder, parse and hash them, move the
folder into place, then mark the model READY in one transaction. A crash at any step leaves
either the old store or the new model, never a READY model with missing or unverified files;
fsck clears what is left of the steps before."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from ..errors import (
    GGUFError,
    ImportModelError,
    InsufficientSpaceError,
    ModelExistsError,
    ModelInUseError,
    VerifyError,
)
from ._files import (
    DOWNLOADS_DIR,
    ORPHANS_DIR,
    fsync_dir,
    fsync_file,
    link_or_copy,
    remove_tree,
    unique_name,
)
from ._lifecycle import LifecycleState, StateChange
from ._locks import PROBE_GRACE_S, ModelLock
from ._policy import Priority

if TYPE_CHECKING:
    from ._records import InstalledModel
    from ._store import FileSpec, Placement, Store

__all__ = ["install_model"]

_S = LifecycleState


@dataclass(frozen=True)
class _Checked:
    rel_path: str
    role: str
    size_bytes: int
    sha256: str
    mtime_ns: int
    external_path: str | None


def install_model(
    store: Store,
    model_id: str,
    specs: Sequence[FileSpec],
    *,
    placement: Placement,
    name: str | None,
    category: str,
    source: str | None,
    priority: Priority,
    pinned: bool,
    metadata: dict[str, Any],
    on_progress: Callable[[int, int], None] | None,
    lock_held: bool = False,
    adopting: bool = False,
) -> InstalledModel:
    """See Store.install. ``lock_held``: the caller holds the model's exclusive lock;
    ``adopting``: the files are inside the store already (fsck adopting a folder it set
    aside), which an install otherwise refuses."""
    from ._store import Placement

    files = _check_specs(store.root, model_id, specs, adopting=adopting)
    lock = ModelLock(store.root, model_id)
    if not lock_held and not lock.acquire(exclusive=True, wait_s=PROBE_GRACE_S):
        message = f"model {model_id!r} is being installed, used or removed by another process"
        raise ModelInUseError(message, model_id=model_id)
    try:
        continuing = _prepare_record(store, model_id)
        sizes = [spec.path.stat().st_size for spec in files]
        owned_growth = 0 if placement in (Placement.REFERENCE, Placement.HARDLINK) else sum(sizes)
        store.ensure_space(
            _bytes_written(store.root, files, sizes, placement),
            incoming_owned_bytes=owned_growth,
            model_id=model_id,
        )
        record = _Record(name, category, source, priority, pinned, metadata, placement)
        _start(store, model_id, record, continuing=continuing)
        staging = store.root / ".staging" / unique_name(model_id)
        moved_into_place = False
        try:
            checked = _place_and_check(model_id, files, sizes, placement, staging, on_progress)
            summary = _summarize(model_id, files, checked, staging, placement)
            if placement is not Placement.REFERENCE:
                final = store.models_dir / model_id.lower()
                store.models_dir.mkdir(exist_ok=True)
                if final.exists():
                    # A folder the database does not know (a crash, or a lost database): it
                    # may hold a finished model's only copy, so it is set aside for fsck to
                    # adopt or report, never deleted here.
                    orphans = store.root / ORPHANS_DIR
                    orphans.mkdir(exist_ok=True)
                    final.rename(orphans / unique_name(model_id))
                staging.rename(final)
                moved_into_place = True
                fsync_dir(store.models_dir)
            changes = _finish(store, model_id, checked, summary)
        except BaseException as error:
            # Only reached before READY was committed: nothing here undoes a finished model.
            remove_tree(staging)
            if moved_into_place:
                remove_tree(store.models_dir / model_id.lower())
            _fail(store, model_id, error, keep_record=continuing)
            raise
        store._notify(changes)
        if placement is Placement.MOVE:
            for spec in files:  # a symlink and the file it names: both names go
                for linked in {spec.path.resolve(), spec.path}:
                    with contextlib.suppress(FileNotFoundError):
                        linked.unlink()
    finally:
        lock.release(unlink=True)
    return store.get(model_id)


def _check_specs(
    root: Path, model_id: str, specs: Sequence[FileSpec], *, adopting: bool = False
) -> list[FileSpec]:
    from ._store import FILE_ROLES, FileSpec

    store_root = root.resolve()

    if not specs:
        message = f"model {model_id!r}: no files given to install"
        raise ImportModelError(message, model_id=model_id)
    checked = []
    names: set[str] = set()
    for spec in specs:
        path = Path(spec.path)
        rel_path = spec.rel_path or path.name
        parts = PurePosixPath(rel_path).parts
        if (
            not parts
            or PurePosixPath(rel_path).is_absolute()
            or any(part in ("..", ".") or part.startswith(".") for part in parts)
            or "\\" in rel_path
        ):
            message = f"model {model_id!r}: file name {rel_path!r} must stay inside its folder"
            raise ImportModelError(message, model_id=model_id)
        if rel_path.lower() in names:
            message = f"model {model_id!r}: file name {rel_path!r} is given twice"
            raise ImportModelError(message, model_id=model_id)
        names.add(rel_path.lower())
        if spec.role not in FILE_ROLES:
            message = f"model {model_id!r}: unknown file role {spec.role!r}; known: {FILE_ROLES}"
            raise ImportModelError(message, model_id=model_id)
        if not path.is_file():
            what = "is not a regular file" if path.exists() else "does not exist"
            message = f"{path} {what}; nothing was installed"
            raise ImportModelError(message, model_id=model_id)
        resolved = path.resolve()
        downloaded = resolved.is_relative_to(store_root / DOWNLOADS_DIR)  # a download's part file
        if not adopting and not downloaded and resolved.is_relative_to(store_root):
            message = (
                f"{path} is inside the store ({root}); a model's own files cannot be installed "
                "again (copy it out first)"
            )
            raise ImportModelError(message, model_id=model_id)
        expected = _normalized_sha256(spec.sha256, model_id) if spec.sha256 else None
        checked.append(FileSpec(path, rel_path, spec.role, expected, verified=spec.verified))
    return checked


def _normalized_sha256(text: str, model_id: str) -> str:
    from ..verify import Digest

    digest = Digest.parse(text)
    if digest.algorithm != "sha256":
        message = f"model {model_id!r}: expected a sha256 digest, not {digest.algorithm}"
        raise ImportModelError(message, model_id=model_id)
    return str(digest)


def _prepare_record(store: Store, model_id: str) -> bool:
    """With the model's lock held: decides what to do with an existing record. Returns True
    to continue a registered (DISCOVERED) or failed one, keeping its name, source, priority
    and metadata; a record an install left half-way (its process died) is discarded; an
    installed one means the id is taken."""
    existing = store.find(model_id)
    if existing is None:
        return False
    if existing.state.is_installed:
        message = (
            f"model {existing.id!r} is already installed; remove it first "
            f"(`iris-models rm {existing.id}`) or install under another id"
        )
        raise ModelExistsError(message, model_id=model_id)
    if existing.state is _S.ERROR:
        store.transition(existing.id, _S.DISCOVERED, reason="install again")
        return True
    if existing.state in (_S.DISCOVERED, _S.DOWNLOADED, _S.EXTRACTED):
        return True  # registered, or a download whose files are here to be verified
    store._remove(
        model_id,
        kind="discarded",
        reason=f"abandoned at {existing.state.value}, before it was READY",
        wait_s=0,
        lock_held=True,
    )
    return False


def _bytes_written(
    root: Path, files: Sequence[FileSpec], sizes: Sequence[int], placement: Placement
) -> int:
    from ._store import Placement

    if placement in (Placement.REFERENCE, Placement.HARDLINK):
        return 0
    if placement is Placement.COPY:
        return sum(sizes)
    store_device = root.stat().st_dev
    return sum(
        size
        for spec, size in zip(files, sizes, strict=True)
        if spec.path.stat().st_dev != store_device
    )


@dataclass(frozen=True)
class _Record:
    name: str | None
    category: str
    source: str | None
    priority: Priority
    pinned: bool
    metadata: dict[str, Any]
    placement: Placement


def _start(store: Store, model_id: str, record: _Record, *, continuing: bool) -> None:
    from ._store import Placement

    storage = {Placement.REFERENCE: "reference", Placement.HARDLINK: "hardlink"}.get(
        record.placement, "managed"
    )
    now = time.time()
    changes: list[StateChange] = []
    with store.db.write() as sql:
        if continuing:
            # A registered record keeps what it was given; the install adds what it knows.
            previous = json.loads(
                sql.execute("SELECT metadata FROM models WHERE id = ?", (model_id,)).fetchone()[0]
            )
            sql.execute(
                "UPDATE models SET storage = ?, name = coalesce(?, name), "
                "source = coalesce(?, source), pinned = max(pinned, ?), metadata = ?, "
                "updated_at = ? WHERE id = ?",
                (storage, record.name, record.source, int(record.pinned),
                 json.dumps({**previous, **record.metadata}), now, model_id),
            )  # fmt: skip
        else:
            sql.execute(
                "INSERT INTO models (id, name, category, state, storage, source, priority, "
                "pinned, created_at, updated_at, metadata) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (model_id, record.name or model_id, record.category, _S.UNINITIALIZED.value,
                 storage, record.source, int(record.priority), int(record.pinned), now, now,
                 json.dumps(record.metadata)),
            )  # fmt: skip
            changes.append(
                store._record_transition(sql, model_id, _S.UNINITIALIZED, _S.DISCOVERED, None)
            )
        current = store._state(sql, model_id)  # DISCOVERED, or DOWNLOADED after a download
        changes.append(
            store._record_transition(sql, model_id, current, _S.VALIDATING, record.placement.value)
        )
    store._notify(changes)


def _place_and_check(
    model_id: str,
    files: Sequence[FileSpec],
    sizes: Sequence[int],
    placement: Placement,
    staging: Path,
    on_progress: Callable[[int, int], None] | None,
) -> list[_Checked]:
    from ..verify import file_digest
    from ._store import Placement

    if placement is not Placement.REFERENCE:
        staging.mkdir(parents=True)
    total = sum(sizes)
    done_before = 0
    checked = []
    for spec, size in zip(files, sizes, strict=True):
        assert spec.rel_path is not None
        if placement is Placement.REFERENCE:
            location = spec.path.resolve()
        else:
            location = staging / spec.rel_path
            location.parent.mkdir(parents=True, exist_ok=True)
            # The bytes, not a symlink to them (a Hugging Face snapshot links to its blob).
            _place(spec.path.resolve(), location, placement, model_id)
            fsync_file(location)

        def report(done: int, _total: int, base: int = done_before) -> None:
            if on_progress is not None:
                on_progress(base + done, total)

        try:
            if spec.verified and spec.sha256 is not None:
                digest = spec.sha256  # hashed by the caller as the bytes landed
                report(size, size)
            else:
                digest = str(file_digest(location, "sha256", on_progress=report))
        except VerifyError as error:
            message = f"model {model_id!r}: {error}"
            raise ImportModelError(message, model_id=model_id) from error
        if spec.sha256 is not None and digest != spec.sha256:
            message = (
                f"model {model_id!r}: {spec.path} has {digest}, not the expected {spec.sha256}; "
                "nothing was installed"
            )
            raise ImportModelError(message, model_id=model_id)
        stat = location.stat()
        if stat.st_size != size:
            message = f"{spec.path} changed size while it was installed; nothing was installed"
            raise ImportModelError(message, model_id=model_id)
        checked.append(
            _Checked(
                spec.rel_path,
                spec.role,
                size,
                digest,
                stat.st_mtime_ns,
                str(location) if placement is Placement.REFERENCE else None,
            )
        )
        done_before += size
    if placement is not Placement.REFERENCE:
        for folder, _subfolders, _names in os.walk(staging):
            fsync_dir(Path(folder))
    return checked


def _place(source: Path, target: Path, placement: Placement, model_id: str) -> None:
    from ._store import Placement

    try:
        if placement is Placement.COPY:
            shutil.copyfile(source, target)
        else:
            link_or_copy(source, target, hard_link_only=placement is Placement.HARDLINK)
    except OSError as error:
        if placement is Placement.HARDLINK and error.errno == errno.EXDEV:
            message = (
                f"model {model_id!r}: cannot hard-link {source} into the store: it is on "
                "another file system; use placement 'reference', 'move' or 'copy'"
            )
            raise ImportModelError(message, model_id=model_id) from error
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            free = shutil.disk_usage(target.parent).free
            message = (
                f"model {model_id!r}: the disk filled up while {source} was copied into the "
                f"store ({error.strerror}); nothing was installed and {source} is untouched"
            )
            raise InsufficientSpaceError(
                message,
                model_id=model_id,
                bytes_needed=source.stat().st_size,
                bytes_available=free,
            ) from error
        raise


def _summarize(
    model_id: str,
    files: Sequence[FileSpec],
    checked: Sequence[_Checked],
    staging: Path,
    placement: Placement,
) -> dict[str, Any]:
    """Architecture, quantization, parameters and context from the GGUF header of the model
    file (all shards of a split model are opened and checked against each other)."""
    from .. import gguf
    from ._store import Placement

    for wanted in ("model", "shard"):
        for spec, result in zip(files, checked, strict=True):
            if result.role != wanted:
                continue
            location = (
                Path(result.external_path)
                if placement is Placement.REFERENCE and result.external_path
                else staging / result.rel_path
            )
            try:
                with gguf.open(location) as model:
                    summary = model.summary()
            except GGUFError as error:
                message = f"{spec.path} is not a usable GGUF file: {error}"
                raise ImportModelError(message, model_id=model_id) from error
            return {
                "architecture": summary.architecture,
                "quantization": summary.quantization or summary.dominant_type,
                "parameter_count": summary.n_parameters,
                "context_length": summary.context_length,
            }
    return {}


def _finish(
    store: Store, model_id: str, checked: Sequence[_Checked], summary: dict[str, Any]
) -> list[StateChange]:
    """Records the files and commits READY; the caller tells observers once it is safe."""
    now = time.time()
    changes: list[StateChange] = []
    with store.db.write() as sql:
        sql.executemany(
            "INSERT INTO files (model_id, rel_path, role, size_bytes, sha256, mtime_ns, "
            "external_path) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (model_id, item.rel_path, item.role, item.size_bytes, item.sha256,
                 item.mtime_ns, item.external_path)
                for item in checked
            ],
        )  # fmt: skip
        sql.execute(
            "UPDATE models SET size_bytes = ?, architecture = ?, quantization = ?, "
            "parameter_count = ?, context_length = ?, installed_at = ? WHERE id = ?",
            (
                sum(item.size_bytes for item in checked),
                summary.get("architecture"),
                summary.get("quantization"),
                summary.get("parameter_count"),
                summary.get("context_length"),
                now,
                model_id,
            ),
        )
        changes.append(
            store._record_transition(sql, model_id, _S.VALIDATING, _S.VALIDATED, "sha256 checked")
        )
        changes.append(store._record_transition(sql, model_id, _S.VALIDATED, _S.READY, None))
        sql.execute("DELETE FROM downloads WHERE model_id = ?", (model_id,))  # nothing to resume
    return changes


def _fail(store: Store, model_id: str, error: BaseException, *, keep_record: bool) -> None:
    """Records the failure (observers see VALIDATING -> ERROR). A registered record goes back
    to DISCOVERED to be tried again; a new one is removed, so the store is as it was."""
    from ._store import _log

    reason = f"{type(error).__name__}: {error}"[:500]
    changes = []
    try:
        with store.db.write() as sql:
            row = sql.execute("SELECT state FROM models WHERE id = ?", (model_id,)).fetchone()
            if row is None or row[0] != _S.VALIDATING.value:
                return  # not this install's record any more: leave it alone
            changes.append(store._record_transition(sql, model_id, _S.VALIDATING, _S.ERROR, reason))
            if keep_record:
                changes.append(
                    store._record_transition(sql, model_id, _S.ERROR, _S.DISCOVERED, "retry")
                )
            else:
                changes.append(
                    store._record_transition(sql, model_id, _S.ERROR, _S.CLEANUP, reason)
                )
                sql.execute("DELETE FROM models WHERE id = ?", (model_id,))
                _log(sql, model_id, "state", from_state=_S.CLEANUP, to_state=_S.UNINITIALIZED,
                     detail="install failed")  # fmt: skip
                changes.append(StateChange(model_id, _S.CLEANUP, _S.UNINITIALIZED, time.time()))
    except Exception:  # noqa: BLE001 - the original error matters more; fsck clears the row
        return
    store._notify(changes)
