"""Verify model files: SHA-256 at hardware speed (the trust anchor), piece manifests that
name the bad byte ranges, fast local seals (XXH3-128, BLAKE3), and many files at once.

Digests are written ``algo:hex`` (``sha256:...``, ``xxh128:...``, ``blake3:...``), as pooch
and Ollama write them; a bare 64-digit hex string means SHA-256. Long operations run in C++
(or the seal libraries) on a worker thread without the GIL; ``on_progress(bytes_done,
bytes_total)`` is called from the calling thread about ten times a second, and Ctrl-C
cancels the work cleanly.
"""

from __future__ import annotations

import errno
import io
import json
import os
import re
import stat
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from ._native import _core
from .errors import DigestFormatError, FileChangedError, ManifestError, OperationCancelled

__all__ = [
    "ALGORITHMS",
    "DEFAULT_PIECE_SIZE",
    "Digest",
    "DigestResult",
    "Manifest",
    "VerifyResult",
    "digest_many",
    "file_digest",
    "manifest",
    "sha256_backends",
    "sha256_bytes",
    "verify",
    "verify_many",
]

ALGORITHMS = ("sha256", "xxh128", "blake3")
DEFAULT_PIECE_SIZE = 64 << 20
_HEX_DIGITS = {"sha256": 64, "xxh128": 32, "blake3": 64}
_HEX = re.compile(r"[0-9a-f]+")
_SEAL_CHUNK = 8 << 20
_POLL_S = 0.1

ProgressCallback = Callable[[int, int], None]
T = TypeVar("T")


def __dir__() -> list[str]:
    return __all__


@dataclass(frozen=True)
class Digest:
    """A digest with its algorithm; ``str()`` gives ``algo:hex``."""

    algorithm: str
    hex: str

    @classmethod
    def parse(cls, text: str | Digest) -> Digest:
        """``algo:hex`` with a known algorithm, or a bare 64-digit hex SHA-256."""
        if isinstance(text, Digest):
            return text
        if not isinstance(text, str):
            message = f"a digest must be a string like 'sha256:<hex>', not {type(text).__name__}"
            raise DigestFormatError(message)
        algorithm, sep, digits = text.strip().partition(":")
        if not sep:
            algorithm, digits = "sha256", algorithm
        algorithm = algorithm.lower()
        digits = digits.lower()
        expected = _HEX_DIGITS.get(algorithm)
        if expected is None:
            known = ", ".join(ALGORITHMS)
            message = f"unknown digest algorithm in {text!r}; known: {known}"
            raise DigestFormatError(message)
        if len(digits) != expected or not _HEX.fullmatch(digits):
            message = f"malformed {algorithm} digest {text!r}: expected {expected} hex digits"
            raise DigestFormatError(message)
        return cls(algorithm, digits)

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"


@dataclass(frozen=True)
class Manifest:
    """A file's size, whole-file SHA-256, and the SHA-256 of each ``piece_size`` piece."""

    size: int
    piece_size: int
    sha256: Digest
    pieces: tuple[str, ...]

    def __post_init__(self) -> None:
        # Checked at run time: manifests come from JSON files and hand-written code.
        given: tuple[Any, ...] = (self.size, self.piece_size, self.sha256, self.pieces)
        size, piece_size, sha256, pieces = given
        ints = all(isinstance(v, int) and not isinstance(v, bool) for v in (size, piece_size))
        if not ints or size < 0 or piece_size <= 0 or piece_size % 64:
            message = (
                f"manifest size {self.size!r} / piece size {self.piece_size!r} are not valid "
                "(the piece size must be a positive multiple of 64)"
            )
            raise ManifestError(message)
        if not isinstance(sha256, Digest) or sha256.algorithm != "sha256":
            message = f"a manifest's whole-file digest must be a sha256 Digest, not {self.sha256!r}"
            raise ManifestError(message)
        if len(self.pieces) != -(-self.size // self.piece_size):
            message = (
                f"{len(self.pieces)} piece digests do not fit size {self.size} "
                f"in {self.piece_size}-byte pieces"
            )
            raise ManifestError(message)
        if not all(isinstance(p, str) and len(p) == 64 and _HEX.fullmatch(p) for p in pieces):
            message = "piece digests must be 64 lowercase hex digits"
            raise ManifestError(message)

    def piece_range(self, index: int) -> tuple[int, int]:
        """The ``[start, end)`` byte range of piece ``index``."""
        start = index * self.piece_size
        return start, min(self.size, start + self.piece_size)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "iris-models piece manifest",
            "version": 1,
            "size": self.size,
            "piece_size": self.piece_size,
            "sha256": str(self.sha256),
            "pieces": list(self.pieces),
        }

    @classmethod
    def from_dict(cls, data: Any) -> Manifest:
        try:
            size, piece_size = data["size"], data["piece_size"]
            sha256 = Digest.parse(data["sha256"])
            pieces = tuple(data["pieces"])
        except (KeyError, TypeError, DigestFormatError) as error:
            message = f"not a piece manifest: {error}"
            raise ManifestError(message) from None
        # __post_init__ checks sizes, the digest and every piece.
        return cls(size, piece_size, sha256, pieces)

    def save(self, path: str | os.PathLike[str]) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Manifest:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            message = f"{path}: not a JSON piece manifest ({error})"
            raise ManifestError(message) from None
        return cls.from_dict(data)


@dataclass(frozen=True)
class VerifyResult:
    """The answer for one file. ``ok`` is False on a mismatch or an ``error``."""

    path: Path
    ok: bool
    expected: Digest | None
    actual: Digest | None
    size: int | None
    bad_ranges: tuple[tuple[int, int], ...] = field(default=())
    """With a manifest: the ``[start, end)`` byte range of every piece that differs."""
    error: str | None = None


# -- running work off the GIL, with progress and Ctrl-C ----------------------------------------


class _Watchable(Protocol):
    @property
    def bytes_done(self) -> int: ...
    @property
    def bytes_total(self) -> int: ...
    def cancel(self) -> None: ...


class _PythonProgress:
    """The Python-side twin of _core.Progress, for work done by the seal libraries; several
    worker threads may add to it at once."""

    def __init__(self) -> None:
        self.bytes_done = 0
        self.bytes_total = 0
        self.cancelled = False
        self._lock = threading.Lock()

    def add_done(self, count: int) -> None:
        with self._lock:
            self.bytes_done += count

    def add_total(self, count: int) -> None:
        with self._lock:
            self.bytes_total += count

    def cancel(self) -> None:
        self.cancelled = True


def _watch(progress: _Watchable, work: Callable[[], T], on_progress: ProgressCallback | None) -> T:
    """Runs ``work`` on a worker thread, reporting progress from this one. A KeyboardInterrupt
    here cancels the work, waits for it to stop, and propagates."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as error:  # noqa: BLE001 - re-raised in the calling thread below
            outcome["error"] = error

    worker = threading.Thread(target=run, name="iris-models-hash", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(_POLL_S)
            if on_progress is not None and worker.is_alive():
                on_progress(progress.bytes_done, progress.bytes_total)
    except BaseException:
        progress.cancel()
        worker.join()
        raise
    if "error" in outcome:
        raise outcome["error"]
    if on_progress is not None:
        on_progress(progress.bytes_done, progress.bytes_total)
    return outcome["value"]  # type: ignore[no-any-return]


def _threads(workers: object) -> int:
    """Threads for the core: 0 means one per core."""
    if workers is None:
        return 0
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        message = f"workers must be a positive int or None, not {workers!r}"
        raise ValueError(message)
    return workers


# -- digests -------------------------------------------------------------------------------------


def sha256_backends() -> list[str]:
    """SHA-256 implementations this CPU can run, fastest first (the first is used)."""
    return list(_core.sha256_backends())


def sha256_bytes(data: bytes | bytearray | memoryview, backend: str | None = None) -> str:
    """Hex SHA-256 of bytes in memory, with a given backend (for tests and comparisons)."""
    return str(_core.sha256_bytes(data, backend))


def file_digest(
    path: str | os.PathLike[str],
    algorithm: str = "sha256",
    *,
    on_progress: ProgressCallback | None = None,
) -> Digest:
    """The digest of a file. Raises FileChangedError if the file changes while it is read,
    and OSError subclasses when it cannot be read."""
    return _digest_and_size(Path(path), algorithm, on_progress)[0]


def _digest_and_size(
    path: Path, algorithm: str, on_progress: ProgressCallback | None
) -> tuple[Digest, int]:
    if algorithm == "sha256":
        progress = _core.Progress()
        hex_digest, size = _watch(
            progress, lambda: _core.sha256_file(os.fspath(path), progress), on_progress
        )
        return Digest("sha256", hex_digest), size
    if algorithm in ("xxh128", "blake3"):
        seal_progress = _PythonProgress()
        return _watch(
            seal_progress, lambda: _seal_file(path, algorithm, seal_progress), on_progress
        )
    raise _unknown_algorithm(algorithm)


def _unknown_algorithm(algorithm: str) -> DigestFormatError:
    known = ", ".join(ALGORITHMS)
    return DigestFormatError(f"unknown digest algorithm {algorithm!r}; known: {known}")


def _seal_file(path: Path, algorithm: str, progress: _PythonProgress) -> tuple[Digest, int]:
    """XXH3-128 or BLAKE3 of a file: the cheap local seal, read in large chunks."""
    if algorithm == "xxh128":
        import xxhash

        hasher: Any = xxhash.xxh3_128()
    else:
        import blake3

        hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
    with _open_regular(path) as stream:
        before = os.fstat(stream.fileno())
        progress.add_total(before.st_size)
        buffer = bytearray(_SEAL_CHUNK)
        view = memoryview(buffer)
        done = 0
        # Read exactly the size seen at open: a file that grows or shrinks meanwhile is caught
        # below, and a device that never ends cannot keep us here.
        while done < before.st_size:
            if progress.cancelled:
                message = "cancelled"
                raise OperationCancelled(message)
            got = stream.readinto(view[: min(len(buffer), before.st_size - done)])
            if not got:
                break
            hasher.update(view[:got])
            done += got
            progress.add_done(got)
        after = os.fstat(stream.fileno())
    if done != before.st_size or not _same_file(before, after, path):
        raise FileChangedError(_changed_message(path), path=str(path))
    return Digest(algorithm, hasher.hexdigest()), done


def _open_regular(path: Path) -> io.FileIO:
    """Opens a regular file for reading, as the C++ core does: without blocking on a FIFO,
    and refusing directories, devices and sockets with the OSError their errno implies."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory, not a file", str(path))
        if not stat.S_ISREG(mode):
            reason = "not a regular file (a device, FIFO or socket)"
            raise OSError(errno.EINVAL, reason, str(path))
        return os.fdopen(fd, "rb", buffering=0)
    except BaseException:
        os.close(fd)
        raise


def _same_file(before: os.stat_result, after: os.stat_result, path: Path) -> bool:
    try:
        now = path.stat()
    except OSError:
        return False
    keys = [(s.st_size, s.st_mtime_ns, s.st_ino, s.st_dev) for s in (before, after, now)]
    return keys[0] == keys[1] == keys[2]


def _changed_message(path: Path) -> str:
    return (
        f"{path}: the file changed while it was being read; its digest is not valid, read it "
        "again once nothing is writing to it"
    )


# -- manifests and verification ------------------------------------------------------------


def manifest(
    path: str | os.PathLike[str],
    *,
    piece_size: int = DEFAULT_PIECE_SIZE,
    workers: int | None = None,
    on_progress: ProgressCallback | None = None,
) -> Manifest:
    """The whole-file SHA-256 and a SHA-256 per piece, in one pass over the file."""
    if isinstance(piece_size, bool) or piece_size <= 0 or piece_size % 64:
        message = f"piece_size must be a positive multiple of 64 bytes, not {piece_size!r}"
        raise ValueError(message)
    progress = _core.Progress()
    size, used_piece_size, whole, pieces = _watch(
        progress,
        lambda: _core.build_manifest(os.fspath(path), piece_size, _threads(workers), progress),
        on_progress,
    )
    return Manifest(size, used_piece_size, Digest("sha256", whole), tuple(pieces))


def verify(
    path: str | os.PathLike[str],
    expected: str | Digest | None = None,
    *,
    manifest: Manifest | None = None,
    workers: int | None = None,
    on_progress: ProgressCallback | None = None,
) -> VerifyResult:
    """Checks a file against a digest, a piece manifest, or both.

    With a manifest, pieces are hashed in parallel and ``bad_ranges`` names each bad one,
    so a download can fetch only those ranges again. A mismatch is a result (``ok`` False);
    a manifest that does not fit the file raises ManifestError.
    """
    file_path = Path(path)
    wanted = Digest.parse(expected) if expected is not None else None
    if manifest is None:
        if wanted is None:
            message = "verify() needs an expected digest, a manifest, or both"
            raise ValueError(message)
        actual, size = _digest_and_size(file_path, wanted.algorithm, on_progress)
        return VerifyResult(file_path, actual == wanted, wanted, actual, size)
    if wanted is not None and wanted.algorithm != "sha256":
        message = (
            f"a piece manifest checks SHA-256; {wanted.algorithm} digests cannot be checked "
            "with one: pass the sha256 digest, or no digest"
        )
        raise ValueError(message)
    if wanted is not None and wanted != manifest.sha256:
        message = (
            f"{file_path}: the manifest is for {manifest.sha256}, not {wanted}: "
            "it was made from a different file"
        )
        raise ManifestError(message, path=str(file_path))
    progress = _core.Progress()
    bad = _watch(
        progress,
        lambda: _core.find_bad_pieces(
            os.fspath(file_path),
            manifest.size,
            manifest.piece_size,
            list(manifest.pieces),
            _threads(workers),
            progress,
        ),
        on_progress,
    )
    ranges = tuple(manifest.piece_range(index) for index in bad)
    ok = not ranges
    return VerifyResult(
        file_path,
        ok,
        wanted or manifest.sha256,
        manifest.sha256 if ok else None,
        manifest.size,
        ranges,
    )


@dataclass(frozen=True)
class DigestResult:
    """One file's digest from :func:`digest_many`, or the error that stopped it."""

    path: Path
    digest: Digest | None
    size: int | None
    error: str | None = None


def digest_many(
    paths: Iterable[str | os.PathLike[str]],
    algorithm: str = "sha256",
    *,
    workers: int | None = None,
    on_progress: ProgressCallback | None = None,
) -> list[DigestResult]:
    """Digests of many files, ``workers`` at a time (default: one per core), in input order.
    A file that is missing, unreadable or changing gets ``error`` instead of stopping the
    batch."""
    files = [Path(path) for path in paths]
    if algorithm == "sha256":
        progress = _core.Progress()
        names = [os.fspath(path) for path in files]
        rows = _watch(
            progress, lambda: _core.sha256_files(names, _threads(workers), progress), on_progress
        )
        return [
            DigestResult(path, Digest("sha256", hex_digest), size)
            if error is None and hex_digest is not None
            else DigestResult(path, None, None, error)
            for path, (hex_digest, size, error, _, _) in zip(files, rows, strict=True)
        ]
    if algorithm not in ALGORITHMS:
        raise _unknown_algorithm(algorithm)
    seal_progress = _PythonProgress()

    def seal_all() -> list[DigestResult]:
        with ThreadPoolExecutor(max_workers=_threads(workers) or _core.default_threads()) as pool:
            return list(pool.map(lambda path: _seal_result(path, algorithm, seal_progress), files))

    return _watch(seal_progress, seal_all, on_progress)


def _seal_result(path: Path, algorithm: str, progress: _PythonProgress) -> DigestResult:
    try:
        digest, size = _seal_file(path, algorithm, progress)
    except OSError as error:
        # The same "path: reason" shape as the errors the C++ pool reports.
        return DigestResult(path, None, None, f"{path}: {error.strerror or error}")
    except FileChangedError as error:
        return DigestResult(path, None, None, str(error))
    return DigestResult(path, digest, size)


def verify_many(
    items: Iterable[tuple[str | os.PathLike[str], str | Digest]],
    *,
    workers: int | None = None,
    on_progress: ProgressCallback | None = None,
) -> list[VerifyResult]:
    """Verifies many files at once, ``workers`` at a time (default: one per core).

    Results come back in input order; a file that is missing, unreadable or changing gets a
    result with ``error`` set instead of stopping the batch.
    """
    pairs = [(Path(path), Digest.parse(expected)) for path, expected in items]
    results: dict[int, VerifyResult] = {}
    finished = [0, 0]  # bytes done and total of the algorithm groups already verified

    def report(done: int, total: int) -> None:
        if on_progress is not None:
            on_progress(finished[0] + done, finished[1] + total)

    for algorithm in sorted({want.algorithm for _, want in pairs}):
        indices = [i for i, (_, want) in enumerate(pairs) if want.algorithm == algorithm]
        found = digest_many(
            [pairs[i][0] for i in indices], algorithm, workers=workers, on_progress=report
        )
        group_bytes = sum(result.size or 0 for result in found)
        finished[0] += group_bytes
        finished[1] += group_bytes
        for index, result in zip(indices, found, strict=True):
            want = pairs[index][1]
            ok = result.digest == want and result.error is None
            results[index] = VerifyResult(
                result.path, ok, want, result.digest, result.size, (), result.error
            )
    return [results[i] for i in range(len(pairs))]
