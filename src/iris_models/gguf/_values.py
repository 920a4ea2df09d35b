"""Metadata values as Python objects, built from the core's records without copying arrays.

Numeric arrays become read-only numpy views over the file's mapping; string arrays become
:class:`StringArray`, which decodes an element only when it is read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING, Any, TypeVar, overload

import numpy as np

from ._types import GGUFValueType

if TYPE_CHECKING:
    from .._native import _core

__all__ = ["GGUFField", "StringArray", "build_field", "decode_policy"]

T = TypeVar("T")

_DTYPE_CODES: dict[GGUFValueType, str] = {
    GGUFValueType.UINT8: "u1",
    GGUFValueType.INT8: "i1",
    GGUFValueType.UINT16: "u2",
    GGUFValueType.INT16: "i2",
    GGUFValueType.UINT32: "u4",
    GGUFValueType.INT32: "i4",
    GGUFValueType.FLOAT32: "f4",
    GGUFValueType.BOOL: "?",
    GGUFValueType.UINT64: "u8",
    GGUFValueType.INT64: "i8",
    GGUFValueType.FLOAT64: "f8",
}

# Decoding in chunks keeps iteration fast (one call into C++ per chunk) while holding only
# a chunk's worth of Python strings at a time.
_ITER_CHUNK = 4096

decode_policy = (
    "GGUF strings are decoded as UTF-8 with errors='surrogateescape': valid text is returned "
    "as is (including a literal U+FFFD), and each byte that is not valid UTF-8 becomes a lone "
    "surrogate U+DC80..U+DCFF. Nothing is replaced or trimmed; "
    "s.encode('utf-8', 'surrogateescape') returns the original bytes, and StringArray.raw() "
    "returns them directly."
)


class StringArray(Sequence[str]):
    """A GGUF array of strings, read lazily from the file.

    Indexing or iterating decodes only the elements read (see ``decode_policy`` for how bytes
    become text); :meth:`raw` and :meth:`iter_raw` give the exact bytes. Nothing is
    materialised when the file is opened: the parser keeps a sparse index (one offset per 64
    elements), so random access walks at most 63 length prefixes.
    """

    __slots__ = ("_array", "_document", "_length")

    def __init__(self, document: _core.GGUFDocument, array: int) -> None:
        self._document = document
        self._array = array
        self._length: int = document.string_count(array)

    def __len__(self) -> int:
        return self._length

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> list[str]: ...
    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            start, stop, step = index.indices(self._length)
            if step == 1:
                return self._document.string_range(self._array, start, max(start, stop))
            return [self._document.string_item(self._array, i) for i in range(start, stop, step)]
        return self._document.string_item(self._array, self._position(index))

    def __iter__(self) -> Iterator[str]:
        return chain.from_iterable(self._chunks(self._document.string_range))

    def __repr__(self) -> str:
        head = ", ".join(repr(s) for s in self[:3])
        more = ", ..." if self._length > 3 else ""
        return f"StringArray([{head}{more}], length={self._length})"

    def raw(self, index: int) -> bytes:
        """The exact bytes of element ``index``."""
        return self._document.string_raw(self._array, self._position(index))

    def iter_raw(self) -> Iterator[bytes]:
        """The exact bytes of every element, in order."""
        return chain.from_iterable(self._chunks(self._document.string_raw_range))

    def tolist(self) -> list[str]:
        """Every element decoded, as one list."""
        return self._document.string_range(self._array, 0, self._length)

    def _chunks(self, read_range: Callable[[int, int, int], list[T]]) -> Iterator[list[T]]:
        # Iterating chunk lists with itertools.chain keeps the per-element work in C.
        for start in range(0, self._length, _ITER_CHUNK):
            yield read_range(self._array, start, min(start + _ITER_CHUNK, self._length))

    def _position(self, index: int) -> int:
        position = index + self._length if index < 0 else index
        if not 0 <= position < self._length:
            message = f"string array index {index} out of range for length {self._length}"
            raise IndexError(message)
        return position


@dataclass(frozen=True)
class GGUFField:
    """One metadata key/value record as stored in the file."""

    key: str
    type: GGUFValueType
    element_type: GGUFValueType | None
    """The type of an array's elements; None for scalars and strings."""
    count: int
    """Number of elements for an array, 1 otherwise."""
    offset: int
    """Absolute byte offset of the value's payload in the file."""
    nbytes: int
    """Bytes the payload occupies (without length prefixes)."""
    value: Any


def build_field(document: _core.GGUFDocument, key: str, record: tuple[Any, ...]) -> GGUFField:
    """Turns one (type, element_type, count, offset, size, value, aux) record into a field."""
    raw_type, raw_element_type, count, offset, size, _, _ = record
    value_type = GGUFValueType(raw_type)
    is_array = value_type is GGUFValueType.ARRAY
    return GGUFField(
        key=key,
        type=value_type,
        element_type=GGUFValueType(raw_element_type) if is_array else None,
        count=count if is_array else 1,
        offset=offset,
        nbytes=size,
        value=build_value(document, record),
    )


def build_value(document: _core.GGUFDocument, record: tuple[Any, ...]) -> Any:
    raw_type, raw_element_type, count, offset, _, decoded, aux = record
    if raw_type != GGUFValueType.ARRAY:
        return decoded
    element_type = GGUFValueType(raw_element_type)
    if element_type is GGUFValueType.STRING:
        return StringArray(document, aux)
    if element_type is GGUFValueType.ARRAY:
        children = document.nested_records(aux, count)
        return tuple(build_value(document, child) for child in children)
    byte_order = ">" if document.big_endian else "<"
    dtype = np.dtype(byte_order + _DTYPE_CODES[element_type])
    if count == 0:
        empty = np.empty(0, dtype=dtype)
        empty.flags.writeable = False
        return empty
    # A view over the document's bytes: it keeps the mapping alive and is read-only.
    return np.frombuffer(memoryview(document), dtype=dtype, count=count, offset=offset)
