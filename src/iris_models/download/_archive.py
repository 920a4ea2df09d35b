"""Models shipped as archives (zip, tar, tar.gz/bz2/xz), unpacked safely into a folder: every
member stays inside it (no absolute paths, no ``..``, no links, no devices), and the bytes
written are counted as they are written, so an archive bomb stops at the limits whatever its
headers claim."""

from __future__ import annotations

import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from ..errors import DownloadError

__all__ = ["ARCHIVE_SUFFIXES", "ArchiveError", "ArchiveLimits", "extract", "is_archive"]

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
_CHUNK = 1 << 20


class ArchiveError(DownloadError, ValueError):
    """An archive that cannot be unpacked safely: a member that would land outside its
    folder, a link, a device, or more bytes or members than the limits allow."""


@dataclass(frozen=True)
class ArchiveLimits:
    max_members: int = 10_000
    max_total_bytes: int = 1 << 40
    """Unpacked bytes in all, at most (1 TiB)."""
    max_ratio: float = 200.0
    """Unpacked bytes per archive byte, at most: GGUF weights barely compress, a bomb does."""


@dataclass(frozen=True)
class Extracted:
    rel_path: str
    size_bytes: int


def is_archive(name: str) -> bool:
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def extract(
    archive: Path, destination: Path, limits: ArchiveLimits | None = None
) -> list[Extracted]:
    """Unpacks `archive` into `destination` (created; it must be empty or absent) and
    returns the regular files written. Raises ArchiveError, leaving what was written for
    the caller to delete."""
    limits = limits or ArchiveLimits()
    if destination.exists() and any(destination.iterdir()):
        message = f"{destination} must be empty to unpack {archive} into it"
        raise ValueError(message)
    destination.mkdir(parents=True, exist_ok=True)
    budget = min(limits.max_total_bytes, int(archive.stat().st_size * limits.max_ratio) + _CHUNK)
    counter = _Budget(archive, budget, limits)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as bundle:
                written = _unpack(archive, destination, _zip_members(archive, bundle), counter)
        else:
            with tarfile.open(archive, mode="r:*") as tar:
                written = _unpack(archive, destination, _tar_members(archive, tar), counter)
    except (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError) as error:
        # Corrupt or truncated data inside an archive whose digest checked out: a bad
        # archive was published.
        message = f"{archive}: damaged or not a zip or tar archive ({error})"
        raise ArchiveError(message) from None
    if not written:
        message = f"{archive}: the archive holds no files"
        raise ArchiveError(message)
    return written


def unpacked_size(archive: Path) -> int | None:
    """The bytes `archive`'s regular files hold unpacked, as its headers state them (a tar
    stream is read through to find them); None when it cannot be read."""
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as bundle:
                return sum(info.file_size for info in bundle.infolist() if not info.is_dir())
        with tarfile.open(archive, mode="r:*") as tar:
            return sum(member.size for member in tar if member.isfile())
    except (OSError, tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError):
        return None


def _unpack(
    archive: Path,
    destination: Path,
    members: Iterator[tuple[str, Callable[[], IO[bytes]]]],
    counter: _Budget,
) -> list[Extracted]:
    written: list[Extracted] = []
    for name, opener in members:
        counter.count_member()
        rel_path = _safe_name(archive, name)
        target = destination.joinpath(*PurePosixPath(rel_path).parts)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            sink_file = target.open("xb")
        except (FileExistsError, NotADirectoryError):
            message = f"{archive}: {name!r} appears twice (or under a member that is a file)"
            raise ArchiveError(message) from None
        size = 0
        with opener() as source, sink_file as sink:
            while chunk := source.read(_CHUNK):
                counter.spend(len(chunk))
                sink.write(chunk)
                size += len(chunk)
        written.append(Extracted(rel_path, size))
    return written


class _Budget:
    def __init__(self, archive: Path, total_bytes: int, limits: ArchiveLimits) -> None:
        self._archive = archive
        self._left = total_bytes
        self._total = total_bytes
        self._members_left = limits.max_members
        self._limits = limits

    def count_member(self) -> None:
        self._members_left -= 1
        if self._members_left < 0:
            message = f"{self._archive}: more than {self._limits.max_members} members; refused"
            raise ArchiveError(message)

    def spend(self, size: int) -> None:
        self._left -= size
        if self._left < 0:
            message = (
                f"{self._archive}: unpacks to more than {self._total} bytes (the limit is "
                f"{self._limits.max_ratio:g} times the archive, at most "
                f"{self._limits.max_total_bytes} bytes); refused as a likely archive bomb"
            )
            raise ArchiveError(message)


def _safe_name(archive: Path, name: str) -> str:
    """The member's path inside the folder, or ArchiveError for one that would leave it."""
    if "\\" in name or "\x00" in name:
        message = f"{archive}: member name {name!r} has a backslash or NUL"
        raise ArchiveError(message)
    path = PurePosixPath(name)
    parts = [part for part in path.parts if part not in ("", ".")]
    if path.is_absolute() or not parts or any(part == ".." for part in parts):
        message = f"{archive}: member {name!r} would land outside the model's folder"
        raise ArchiveError(message)
    if ":" in parts[0]:  # a Windows drive ("C:x")
        message = f"{archive}: member {name!r} names a drive"
        raise ArchiveError(message)
    if any(part.startswith(".") for part in parts):
        message = f"{archive}: hidden member {name!r} refused"
        raise ArchiveError(message)
    return "/".join(parts)


def _zip_members(
    archive: Path, bundle: zipfile.ZipFile
) -> Iterator[tuple[str, Callable[[], IO[bytes]]]]:
    for info in bundle.infolist():
        if info.is_dir():
            continue
        mode = info.external_attr >> 16
        # No file-type bits (zipfile.writestr, Windows and Java tools): a regular file.
        if stat.S_IFMT(mode) and not stat.S_ISREG(mode):
            kind = "a link" if stat.S_ISLNK(mode) else "not a regular file"
            message = f"{archive}: member {info.filename!r} is {kind}; refused"
            raise ArchiveError(message)
        if info.flag_bits & 0x1:
            message = f"{archive}: member {info.filename!r} is encrypted"
            raise ArchiveError(message)
        yield info.filename, _opener(bundle, info)


def _opener(bundle: zipfile.ZipFile, info: zipfile.ZipInfo) -> Callable[[], IO[bytes]]:
    def open_member() -> IO[bytes]:
        return bundle.open(info)

    return open_member


def _tar_members(
    archive: Path, bundle: tarfile.TarFile
) -> Iterator[tuple[str, Callable[[], IO[bytes]]]]:
    for member in bundle:
        if member.isdir():
            continue
        if not member.isfile():
            kind = "a link" if member.issym() or member.islnk() else "not a regular file"
            message = f"{archive}: member {member.name!r} is {kind}; refused"
            raise ArchiveError(message)
        yield member.name, _tar_opener(bundle, member)


def _tar_opener(bundle: tarfile.TarFile, member: tarfile.TarInfo) -> Callable[[], IO[bytes]]:
    def open_member() -> IO[bytes]:
        handle = bundle.extractfile(member)
        if handle is None:
            message = f"{member.name!r} cannot be read"
            raise ArchiveError(message)
        return handle

    return open_member
