"""GGUFFile: a parsed GGUF header (one file, or every shard of a split model) and the
functions that make one, :func:`open` for files and :func:`parse` for bytes in memory."""

from __future__ import annotations

import operator
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, Literal

from .._native import _core
from ..errors import GGUFError
from ._split import sibling_shard_paths
from ._types import ggml_type_name
from ._values import GGUFField, build_field

if TYPE_CHECKING:
    from typing_extensions import Buffer, Self

    from ._summary import GGUFSummary

__all__ = ["GGUFFile", "GGUFShard", "TensorInfo", "open", "parse"]


@dataclass(frozen=True)
class TensorInfo:
    """One tensor's record. The tensor's data is never read."""

    name: str
    shape: tuple[int, ...]
    """Dimensions in ggml order: ``shape[0]`` is the row length (numpy's last axis)."""
    type: str
    """The ggml type name (``"Q4_K"``), or ``"unknown(<id>)"``."""
    type_id: int
    offset: int
    """Absolute byte offset of the tensor's data in its file."""
    nbytes: int | None
    """Bytes of data, or None when the type is unknown to this build."""
    n_elements: int
    shard: int = 0
    """Index of the shard file holding the tensor (0 for a single file)."""

    @property
    def numpy_shape(self) -> tuple[int, ...]:
        """The shape in numpy / PyTorch order (ggml order reversed)."""
        return tuple(reversed(self.shape))


@dataclass(frozen=True)
class GGUFShard:
    """Where one file of a (possibly split) model keeps its header and data."""

    path: Path | None
    version: int
    endianness: Literal["little", "big"]
    alignment: int
    data_offset: int
    """Absolute offset of the tensor data section: the header's size in bytes."""
    data_size: int
    """Sum of the tensors' sizes, each padded to the alignment."""
    file_size: int | None
    n_tensors: int


class GGUFFile:
    """A parsed GGUF header: metadata, tensor records and a summary.

    Made by :func:`open` or :func:`parse`. Use it as a context manager, or call
    :meth:`close`, to release the file. Arrays taken from :attr:`metadata` keep their own
    reference to the mapping and stay valid after ``close()``. Like any memory map, the file
    must not be truncated or rewritten while it is open.
    """

    def __init__(self, documents: Sequence[_core.GGUFDocument], paths: Sequence[Path | None]):
        self._documents: tuple[_core.GGUFDocument, ...] = tuple(documents)
        self._paths = tuple(paths)

    # -- lifetime -------------------------------------------------------------------------
    def close(self) -> None:
        """Release this object's reference to the file; idempotent.

        Values built from the file (cached fields, metadata, tensors) are dropped too, so the
        mapping goes away unless the caller still holds an array taken from it.
        """
        self._documents = ()
        for name in _CACHED:
            self.__dict__.pop(name, None)

    @property
    def closed(self) -> bool:
        return not self._documents

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        if self.closed:
            return "<GGUFFile (closed)>"
        where = str(self.path) if self.path is not None else "<buffer>"
        return (
            f"<GGUFFile {where!r} v{self.version} {len(self.fields)} keys "
            f"{len(self.tensors)} tensors>"
        )

    @property
    def _open_documents(self) -> tuple[_core.GGUFDocument, ...]:
        if not self._documents:
            message = "this GGUFFile is closed"
            raise ValueError(message)
        return self._documents

    @property
    def _primary(self) -> _core.GGUFDocument:
        return self._open_documents[0]

    # -- the file ---------------------------------------------------------------------------
    @property
    def path(self) -> Path | None:
        """The file opened (the first shard of a split model), or None for a buffer."""
        return self._paths[0]

    @property
    def version(self) -> int:
        return int(self._primary.version)

    @property
    def endianness(self) -> Literal["little", "big"]:
        return "big" if self._primary.big_endian else "little"

    @property
    def alignment(self) -> int:
        return int(self._primary.alignment)

    @property
    def data_offset(self) -> int:
        """Absolute offset of the tensor data in the (first) file: the header's size."""
        return int(self._primary.data_offset)

    @property
    def file_size(self) -> int | None:
        """Total bytes over all shards; None when parsed from a buffer of unknown size."""
        sizes = [shard.file_size for shard in self.shards]
        return None if None in sizes else sum(size for size in sizes if size is not None)

    @cached_property
    def shards(self) -> tuple[GGUFShard, ...]:
        """One entry per file: just one unless the model is split."""
        return tuple(
            GGUFShard(
                path=path,
                version=int(document.version),
                endianness="big" if document.big_endian else "little",
                alignment=int(document.alignment),
                data_offset=int(document.data_offset),
                data_size=int(document.data_size),
                file_size=document.file_size,
                n_tensors=int(document.n_tensors),
            )
            for document, path in zip(self._open_documents, self._paths, strict=True)
        )

    @cached_property
    def warnings(self) -> tuple[str, ...]:
        """Things that are legal but unusual, such as what llama.cpp would refuse."""
        found: list[str] = []
        for document in self._open_documents:
            found.extend(message for _, message in document.warnings)
            if document.warnings_dropped:
                found.append(f"{document.name}: {document.warnings_dropped} more warnings")
        return tuple(found)

    # -- metadata and tensors ------------------------------------------------------------------
    @cached_property
    def fields(self) -> Mapping[str, GGUFField]:
        """Every key/value record of the (first) file, in file order."""
        document = self._primary
        built = {key: build_field(document, key, record) for key, record in document.kv_records()}
        return MappingProxyType(built)

    @cached_property
    def metadata(self) -> Mapping[str, Any]:
        """Key to value: ints, floats, bools and str for scalars; read-only numpy arrays for
        numeric arrays; :class:`StringArray` for string arrays; tuples for arrays of arrays."""
        return MappingProxyType({key: field.value for key, field in self.fields.items()})

    @cached_property
    def tensors(self) -> tuple[TensorInfo, ...]:
        """Every tensor of every shard, in file order."""
        # Positional arguments, in TensorInfo's field order: keywords cost twice as much,
        # which shows with thousands of tensors.
        return tuple(
            TensorInfo(name, shape, ggml_type_name(type_id), type_id, offset, nbytes, count, shard)
            for shard, document in enumerate(self._open_documents)
            for name, shape, type_id, offset, nbytes, count, _ in document.tensor_records()
        )

    def summary(self) -> GGUFSummary:
        """What the model is and what it needs: architecture, sizes, quantization mix."""
        from ._summary import summarize

        return summarize(self)


# What close() forgets: every cached property, found rather than listed so none is missed.
_CACHED = tuple(name for name, attr in vars(GGUFFile).items() if isinstance(attr, cached_property))


def open(path: str | os.PathLike[str], *, all_shards: bool = True) -> GGUFFile:
    """Map and parse the GGUF file at ``path``.

    The header is walked in C++ with the GIL released; tensor data is never read. For a
    shard of a split model (``name-00001-of-00003.gguf``), every shard is opened and the
    result covers the whole model, unless ``all_shards`` is False.

    Raises :class:`~iris_models.errors.GGUFError` (a ValueError) when the file is not valid
    GGUF, :class:`~iris_models.errors.GGUFTruncatedError` when it ends early, and OSError
    subclasses when it cannot be read.
    """
    first_path = Path(path)
    first = _core.open_gguf(os.fspath(first_path))
    if not all_shards:
        return GGUFFile([first], [first_path])
    split_count = _split_count(first)
    if split_count <= 1:
        return GGUFFile([first], [first_path])
    siblings = sibling_shard_paths(first_path)
    if siblings is None or len(siblings) != split_count:
        message = (
            f"{first_path}: split.count says the model has {split_count} shards, but the file "
            "name does not follow the <name>-00001-of-0000N.gguf convention, so the other "
            "shards cannot be found; open it with all_shards=False to read this shard alone"
        )
        raise GGUFError(message, path=str(first_path))
    documents = []
    for sibling in siblings:
        if sibling.name == first_path.name:
            documents.append(first)
            continue
        if not sibling.exists():
            message = (
                f"{first_path}: shard {sibling.name} of this {split_count}-shard model is "
                "missing; put every shard in the same folder, or open with all_shards=False"
            )
            raise GGUFError(message, path=str(sibling))
        documents.append(_core.open_gguf(os.fspath(sibling)))
    _check_shards(documents, siblings)
    return GGUFFile(documents, siblings)


def parse(buffer: Buffer, *, file_size: int | None = None, name: str = "<buffer>") -> GGUFFile:
    """Parse a GGUF header from bytes in memory, such as the first bytes of a remote file.

    ``file_size`` is the length of the whole file when known (from Content-Range, say): with
    it, claims past the end of the file are errors and tensor ranges are checked. When the
    buffer ends before the header does, :class:`~iris_models.errors.GGUFNeedMoreDataError`
    says how many bytes the walk needs to get past the point where it stopped
    (``bytes_needed``). That is a lower bound, not the header's size: a fetch loop should
    grow geometrically, e.g. to ``max(bytes_needed, 2 * len(buffer))``, or a large
    vocabulary costs one round trip per token. The buffer is used in place, not copied, and
    must not change while the result is alive.
    """
    if file_size is not None:
        _check_file_size(file_size)
    document = _core.parse_gguf(buffer, file_size, name)
    return GGUFFile([document], [None])


def _check_file_size(file_size: int) -> None:
    # Checked here so a bad value gets a short message, not pybind11's argument dump (which
    # would print the whole buffer).
    try:
        size = operator.index(file_size)
    except TypeError:
        message = f"file_size must be an int or None, not {type(file_size).__name__}"
        raise TypeError(message) from None
    if isinstance(file_size, bool) or not 0 <= size < 2**64:
        message = f"file_size must be a byte count from 0 to 2**64 - 1, not {file_size!r}"
        raise ValueError(message)


def _split_count(document: _core.GGUFDocument) -> int:
    value = _split_keys(document).get("split.count")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _split_keys(document: _core.GGUFDocument) -> dict[str, Any]:
    return {key: record[5] for key, record in document.kv_records() if key.startswith("split.")}


def _check_shards(documents: Sequence[_core.GGUFDocument], paths: Sequence[Path]) -> None:
    """Shards must agree on the split and hold each tensor once."""
    expected_total: int | None = None
    seen: dict[str, Path] = {}
    n_tensors = 0
    for index, (document, path) in enumerate(zip(documents, paths, strict=True)):
        keys = _split_keys(document)
        if keys.get("split.no") != index or keys.get("split.count") != len(documents):
            message = (
                f"{path}: its split.no / split.count ({keys.get('split.no')} / "
                f"{keys.get('split.count')}) do not match its name (shard {index + 1} of "
                f"{len(documents)}); the shards may come from different models"
            )
            raise GGUFError(message, path=str(path))
        if index == 0:
            expected_total = keys.get("split.tensors.count")
        n_tensors += int(document.n_tensors)
        for name, *_ in document.tensor_records():
            if name in seen:
                message = f"{path}: tensor {name!r} is also in {seen[name].name}"
                raise GGUFError(message, path=str(path))
            seen[name] = path
    if expected_total is not None and expected_total != n_tensors:
        message = (
            f"{paths[0]}: split.tensors.count is {expected_total} but the {len(documents)} "
            f"shards hold {n_tensors} tensors"
        )
        raise GGUFError(message, path=str(paths[0]))
