"""File-system steps the store relies on to stay consistent through a crash: durable writes,
atomic renames into place, and moving folders aside before deleting them."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
from pathlib import Path

__all__ = [
    "DOWNLOADS_DIR",
    "ORPHANS_DIR",
    "STAGING_DIR",
    "TRASH_DIR",
    "dir_size",
    "fsync_dir",
    "fsync_file",
    "link_or_copy",
    "owner_of",
    "remove_tree",
    "unique_name",
]


# Where installs stage their files, and where removals move a folder before deleting it;
# entries are named "<model id>.<token>" (see unique_name).
STAGING_DIR = ".staging"
TRASH_DIR = ".trash"
# Part files of downloads under way, one folder per model: on the store's file system, so the
# finished file is renamed into place, never copied.
DOWNLOADS_DIR = ".downloads"
# Folders with no database record, kept for fsck to adopt; cleanup never deletes them.
ORPHANS_DIR = ".orphans"


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Makes a rename or a new entry in ``path`` durable (POSIX needs the folder synced)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    except OSError as error:  # some file systems cannot sync a folder; nothing more to do
        if error.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def unique_name(model_id: str) -> str:
    """``<id>.<random>``: a staging or trash entry that names its model (lower case, as
    its lock file does), so cleanup can tell whether someone is still working on it."""
    return f"{model_id.lower()}.{secrets.token_hex(6)}"


def owner_of(entry: Path) -> str:
    """The (lower-cased) model id in an entry named by unique_name (a download's folder is
    named by the id alone): whose lock guards it."""
    if entry.parent.name == DOWNLOADS_DIR:
        return entry.name
    return entry.name.rsplit(".", 1)[0]


def link_or_copy(source: Path, target: Path, *, hard_link_only: bool = False) -> bool:
    """Hard-links ``source`` to ``target``, or copies it if they are on different file systems
    (unless ``hard_link_only``). Returns True when a copy was made."""
    try:
        os.link(source, target)
        return False
    except OSError as error:
        if hard_link_only or error.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
            raise
    shutil.copyfile(source, target)
    return True


def remove_tree(path: Path) -> None:
    """Deletes a file or folder; a missing one is fine."""
    with contextlib.suppress(FileNotFoundError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def dir_size(path: Path) -> int:
    """Bytes in a file or a folder tree (allocated size is not needed: this feeds reports)."""
    try:
        if not path.is_dir() or path.is_symlink():
            return path.lstat().st_size
    except FileNotFoundError:
        return 0
    total = 0
    for folder, _subfolders, names in os.walk(path):
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                total += (Path(folder) / name).lstat().st_size
    return total
