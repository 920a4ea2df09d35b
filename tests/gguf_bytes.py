"""A byte-level GGUF writer for tests, able to write broken files on purpose, and the corpus of
hostile files from shared/reference/gguf.md §4 (`exploit_cases`)."""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, NamedTuple

__all__ = [
    "ARCH",
    "F16",
    "F32",
    "GGML_BLOCKS",
    "I8",
    "KV",
    "Q4_0",
    "Q4_K",
    "Q8_0",
    "Array",
    "BuiltFile",
    "Expected",
    "ExploitCase",
    "GGUFBuilder",
    "Tensor",
    "ValueType",
    "build_file",
    "exploit_cases",
    "nested_array",
    "small_model",
    "tensor_nbytes",
]


class ValueType(IntEnum):
    """Metadata value type ids as stored in the file (kept here, not imported from the
    package under test, so the tests do not share its tables)."""

    UINT8 = 0
    INT8 = 1
    UINT16 = 2
    INT16 = 3
    UINT32 = 4
    INT32 = 5
    FLOAT32 = 6
    BOOL = 7
    STRING = 8
    ARRAY = 9
    UINT64 = 10
    INT64 = 11
    FLOAT64 = 12


SCALAR_FORMATS: dict[int, str] = {
    ValueType.UINT8: "B",
    ValueType.INT8: "b",
    ValueType.UINT16: "H",
    ValueType.INT16: "h",
    ValueType.UINT32: "I",
    ValueType.INT32: "i",
    ValueType.FLOAT32: "f",
    ValueType.BOOL: "B",  # written as its raw byte, so 2 can be stored to test the warning
    ValueType.UINT64: "Q",
    ValueType.INT64: "q",
    ValueType.FLOAT64: "d",
}

# ggml type id -> (elements per block, bytes per block), from the reference's §1.7 table.
# Removed ids (4, 5, 31-33, 36-38) are absent on purpose.
GGML_BLOCKS: dict[int, tuple[int, int]] = {
    0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34),
    9: (32, 36), 10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210),
    15: (256, 292), 16: (256, 66), 17: (256, 74), 18: (256, 98), 19: (256, 50), 20: (32, 18),
    21: (256, 110), 22: (256, 82), 23: (256, 136), 24: (1, 1), 25: (1, 2), 26: (1, 4),
    27: (1, 8), 28: (1, 8), 29: (256, 56), 30: (1, 2), 34: (256, 54), 35: (256, 66),
    39: (32, 17), 40: (64, 36), 41: (128, 18), 42: (64, 18),
}  # fmt: skip
F32, F16, Q4_0, Q8_0, Q4_K, I8 = 0, 1, 2, 8, 12, 24

DEFAULT_ALIGNMENT = 32


@dataclass(frozen=True)
class Array:
    """An ARRAY value. ``items`` are values of ``element_type`` (``Array`` again for arrays of
    arrays); ``count``, when given, is written instead of ``len(items)`` to lie about it."""

    element_type: int
    items: Sequence[Any] = ()
    count: int | None = None


class GGUFBuilder:
    """Appends GGUF fields in the file's byte order and length width (u32 lengths in v1).

    Every method writes exactly the field named, with no checks, so any malformed file can be
    spelled out; :attr:`position` gives offsets to expect in error messages.
    """

    def __init__(self, version: int = 3, *, big_endian: bool = False) -> None:
        self.version = version
        self.big_endian = big_endian
        self.length_size = 4 if version == 1 else 8
        self._out = bytearray()

    @property
    def position(self) -> int:
        return len(self._out)

    def to_bytes(self) -> bytes:
        return bytes(self._out)

    # -- raw fields ---------------------------------------------------------------------------
    def raw(self, data: bytes) -> GGUFBuilder:
        self._out += data
        return self

    def zeros(self, n: int) -> GGUFBuilder:
        return self.raw(bytes(n))

    def integer(self, value: int, size: int) -> GGUFBuilder:
        """Any integer in ``size`` bytes; negative values are written in two's complement."""
        order = "big" if self.big_endian else "little"
        return self.raw((value % (1 << (8 * size))).to_bytes(size, order))

    def u8(self, value: int) -> GGUFBuilder:
        return self.integer(value, 1)

    def u32(self, value: int) -> GGUFBuilder:
        return self.integer(value, 4)

    def u64(self, value: int) -> GGUFBuilder:
        return self.integer(value, 8)

    def length(self, value: int) -> GGUFBuilder:
        """A string length, count or dimension: u64, or u32 in GGUF v1."""
        return self.integer(value, self.length_size)

    def string(self, text: str | bytes, *, length: int | None = None) -> GGUFBuilder:
        data = text.encode() if isinstance(text, str) else text
        return self.length(len(data) if length is None else length).raw(data)

    def pad_to(self, alignment: int) -> GGUFBuilder:
        return self.zeros(-self.position % alignment)

    # -- records ------------------------------------------------------------------------------
    def header(
        self, n_tensors: int, n_kv: int, *, magic: bytes = b"GGUF", version: int | None = None
    ) -> GGUFBuilder:
        """Magic, version and both counts. The magic is the same 4 bytes in either byte order."""
        self.raw(magic).u32(self.version if version is None else version)
        return self.length(n_tensors).length(n_kv)

    def value(self, value_type: int, value: Any) -> GGUFBuilder:
        """A value's payload (no type id in front): scalar, string or array."""
        if value_type == ValueType.STRING:
            return self.string(value)
        if value_type == ValueType.ARRAY:
            assert isinstance(value, Array)
            count = len(value.items) if value.count is None else value.count
            self.u32(value.element_type).length(count)
            for item in value.items:
                self.value(value.element_type, item)
            return self
        prefix = ">" if self.big_endian else "<"
        return self.raw(struct.pack(prefix + SCALAR_FORMATS[value_type], value))

    def kv(self, key: str | bytes, value_type: int, value: Any) -> GGUFBuilder:
        return self.string(key).u32(value_type).value(value_type, value)

    def nested_arrays(self, depth: int) -> GGUFBuilder:
        """The payload of :func:`nested_array` (depth), written without recursion so that
        10,000 levels do not need 10,000 Python frames."""
        for _ in range(depth):
            self.u32(ValueType.ARRAY).length(1)
        return self.u32(ValueType.UINT8).length(1).u8(7)

    def tensor_info(
        self,
        name: str | bytes,
        ne: Sequence[int],
        type_id: int,
        offset: int,
        *,
        n_dims: int | None = None,
    ) -> GGUFBuilder:
        self.string(name).u32(len(ne) if n_dims is None else n_dims)
        for dim in ne:
            self.length(dim)
        return self.u32(type_id).u64(offset)  # the offset is u64 even in v1


@dataclass(frozen=True)
class KV:
    key: str | bytes
    type: int
    value: Any


@dataclass(frozen=True)
class Tensor:
    name: str | bytes
    ne: tuple[int, ...]
    """Dimensions in ggml order (``ne[0]`` is the row length); missing dims are 1."""
    type_id: int


def tensor_nbytes(type_id: int, ne: Sequence[int]) -> int | None:
    """Bytes of a tensor's data; None for a type this table does not know."""
    if type_id not in GGML_BLOCKS:
        return None
    block, type_size = GGML_BLOCKS[type_id]
    return math.prod(ne) // block * type_size


def _pad(x: int, alignment: int) -> int:
    return -(-x // alignment) * alignment


@dataclass(frozen=True)
class BuiltFile:
    """A file made by :func:`build_file`, with the layout facts a parser must report."""

    data: bytes
    version: int
    big_endian: bool
    kvs: tuple[KV, ...]
    tensors: tuple[Tensor, ...]
    alignment: int
    end_of_kvs: int
    end_of_tensor_infos: int
    data_offset: int
    tensor_offsets: tuple[int, ...]
    """Relative to the data section, as stored in the infos."""
    tensor_nbytes: tuple[int | None, ...]


def _data_pattern(n: int) -> bytes:
    # Non-zero filler, so a parser that read tensor data by mistake would not see zeros.
    return (bytes(range(1, 256)) * (n // 255 + 1))[:n]


def build_file(
    kvs: Sequence[KV],
    tensors: Sequence[Tensor] = (),
    *,
    version: int = 3,
    big_endian: bool = False,
    pad_last_tensor: bool = False,
) -> BuiltFile:
    """A structurally valid file: tensors densely packed in info order, as llama.cpp requires.

    The alignment is that of a UINT32 ``general.alignment`` among ``kvs``, else 32. The last
    tensor's data ends the file unless ``pad_last_tensor``, so cutting any byte truncates it.
    """
    alignment = next(
        (kv.value for kv in kvs if kv.key == "general.alignment" and kv.type == ValueType.UINT32),
        DEFAULT_ALIGNMENT,
    )
    b = GGUFBuilder(version, big_endian=big_endian)
    b.header(len(tensors), len(kvs))
    for kv in kvs:
        b.kv(kv.key, kv.type, kv.value)
    end_of_kvs = b.position
    offsets: list[int] = []
    sizes: list[int | None] = []
    next_offset = 0
    for tensor in tensors:
        nbytes = tensor_nbytes(tensor.type_id, tensor.ne)
        b.tensor_info(tensor.name, tensor.ne, tensor.type_id, next_offset)
        offsets.append(next_offset)
        sizes.append(nbytes)
        next_offset += _pad(nbytes or 0, alignment)
    end_of_tensor_infos = b.position
    if tensors:  # llama.cpp pads to the data section only when there is one
        b.pad_to(alignment)
    data_offset = b.position
    for index, nbytes in enumerate(sizes):
        b.raw(_data_pattern(nbytes or 0))
        if pad_last_tensor or index < len(sizes) - 1:
            b.pad_to(alignment)
    return BuiltFile(
        data=b.to_bytes(),
        version=version,
        big_endian=big_endian,
        kvs=tuple(kvs),
        tensors=tuple(tensors),
        alignment=alignment,
        end_of_kvs=end_of_kvs,
        end_of_tensor_infos=end_of_tensor_infos,
        data_offset=data_offset,
        tensor_offsets=tuple(offsets),
        tensor_nbytes=tuple(sizes),
    )


def nested_array(depth: int) -> Array:
    """``depth`` levels of arrays inside an array: 0 is arr[u8], 1 is arr[arr[u8]], ..."""
    value = Array(ValueType.UINT8, [7])
    for _ in range(depth):
        value = Array(ValueType.ARRAY, [value])
    return value


def small_model(version: int = 3, *, big_endian: bool = False) -> BuiltFile:
    """A small valid file with a bit of everything: scalars, a string, a string array, a
    numeric array, an array of arrays, a non-default alignment and tensors of three types."""
    kvs = [
        KV("general.architecture", ValueType.STRING, "llama"),
        KV("general.alignment", ValueType.UINT32, 64),
        KV("llama.context_length", ValueType.UINT32, 4096),
        KV("llama.rope.freq_base", ValueType.FLOAT32, 10000.0),
        KV("llama.use_parallel_residual", ValueType.BOOL, 1),
        KV("tokenizer.ggml.tokens", ValueType.ARRAY, Array(ValueType.STRING, ["<s>", "", "hé"])),
        KV("tokenizer.ggml.token_type", ValueType.ARRAY, Array(ValueType.INT32, [3, 1, -1])),
        KV("test.nested", ValueType.ARRAY, nested_array(1)),
        KV("test.i64", ValueType.INT64, -(2**40)),
    ]
    tensors = [
        Tensor("token_embd.weight", (32, 2), Q8_0),
        Tensor("output_norm.weight", (8,), F32),
        Tensor("blk.0.attn_q.weight", (256,), Q4_K),
    ]
    return build_file(kvs, tensors, version=version, big_endian=big_endian)


# -- the exploit corpus ----------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    """What the parser must do with a case: parse it (``error`` None), or raise the class of
    iris_models.errors named by ``error``. ``says`` must appear in the error message, or, for
    a file that parses, in one of its warnings (None: it must parse without warnings).
    ``offset``, when not None, is the byte the error must name."""

    error: str | None = None
    says: str | None = None
    offset: int | None = None


def parses(warning: str | None = None) -> Expected:
    return Expected(None, warning)


def malformed(says: str, offset: int | None = None) -> Expected:
    return Expected("GGUFError", says, offset)


def truncated(says: str = "truncated", offset: int | None = None) -> Expected:
    return Expected("GGUFTruncatedError", says, offset)


class ExploitCase(NamedTuple):
    id: str
    data: bytes
    expected: Expected


ARCH = KV("general.architecture", ValueType.STRING, "llama")


def _with_value(value_type: int, value: Any, key: str = "general.name") -> tuple[bytes, int]:
    """A file holding ARCH and one KV; returns it and where that KV's value type starts."""
    b = GGUFBuilder().header(0, 2).kv(ARCH.key, ARCH.type, ARCH.value)
    type_at = b.position + 8 + len(key)
    return b.kv(key, value_type, value).to_bytes(), type_at


def _raw_value(
    write: Callable[[GGUFBuilder], object], key: str = "general.name"
) -> tuple[bytes, int]:
    """A file holding ARCH and one KV whose value bytes (type id included) ``write`` appends;
    returns it and where the value's type id starts."""
    b = GGUFBuilder().header(0, 2).kv(ARCH.key, ARCH.type, ARCH.value).string(key)
    type_at = b.position
    write(b)
    return b.to_bytes(), type_at


def _tensor_file(
    infos: Sequence[tuple[str | bytes, Sequence[int], int, int]],
    *,
    data_bytes: int,
    n_dims: int | None = None,
) -> tuple[bytes, list[int]]:
    """ARCH plus raw tensor infos (name, ne, type, offset), padding and ``data_bytes`` of
    data; returns the file and where each info record starts."""
    b = GGUFBuilder().header(len(infos), 1).kv(ARCH.key, ARCH.type, ARCH.value)
    starts = []
    for name, ne, type_id, offset in infos:
        starts.append(b.position)
        b.tensor_info(name, ne, type_id, offset, n_dims=n_dims)
    b.pad_to(DEFAULT_ALIGNMENT).raw(_data_pattern(data_bytes))
    return b.to_bytes(), starts


def _one_tensor(ne: Sequence[int], type_id: int, *, n_dims: int | None = None) -> tuple[bytes, int]:
    """One tensor named "t" at offset 0 with 64 data bytes; returns the file and where its
    dimension count starts (the type id is at that + 4 + 8 * len(ne))."""
    data, starts = _tensor_file([("t", ne, type_id, 0)], data_bytes=64, n_dims=n_dims)
    return data, starts[0] + 8 + 1


def exploit_cases() -> list[ExploitCase]:
    """Every shape in the reference's fuzz corpus list, with what the parser must do."""
    cases: list[ExploitCase] = []

    def case(case_id: str, data: bytes, expected: Expected) -> None:
        cases.append(ExploitCase(case_id, data, expected))

    valid = small_model().data

    # -- magic and version
    case("magic-wrong", b"GGUX" + valid[4:], malformed("magic", 0))
    for version in (0, 4, 0xFFFFFFFF):
        data = GGUFBuilder().header(0, 0, version=version).to_bytes()
        case(f"version-{version:#x}", data, malformed(f"unsupported GGUF version {version}", 4))
    case("version-1", small_model(version=1).data, parses("array of arrays"))
    # A big-endian v3 file: its version field reads 0x03000000 little-endian.
    case("version-0x03000000-big-endian", small_model(big_endian=True).data, parses("array of"))
    case("version-2", small_model(version=2).data, parses("array of arrays"))

    # -- counts: n_tensors is at byte 8, n_kv at byte 16
    one_kv = GGUFBuilder().kv(ARCH.key, ARCH.type, ARCH.value).to_bytes()
    for count in (2**63, 2**64 - 1, 0x1D1D1D1D1D1D1D1D, 2**20 + 1):
        data = GGUFBuilder().header(count, 1).raw(one_kv).to_bytes()
        case(f"n_tensors-{count:#x}", data, malformed("tensor count", 8))
        data = GGUFBuilder().header(0, count).raw(one_kv).to_bytes()
        case(f"n_kv-{count:#x}", data, malformed("key/value count", 16))
    remaining_plus_1 = len(one_kv) + 1
    data = GGUFBuilder().header(0, remaining_plus_1).raw(one_kv).to_bytes()
    case("n_kv-remaining+1", data, truncated("key/value records"))
    data = GGUFBuilder().header(remaining_plus_1, 1).raw(one_kv).to_bytes()
    case("n_tensors-remaining+1", data, truncated("tensor infos"))
    data = GGUFBuilder().header(0, 2**20).raw(one_kv).to_bytes()
    case("n_kv-2^20-at-the-cap", data, truncated("key/value records"))
    data = GGUFBuilder().header(0, 2).raw(one_kv).to_bytes()
    case("n_kv-one-more-than-written", data, truncated("key of record 1", len(data)))
    data = GGUFBuilder().header(1, 1).raw(one_kv).to_bytes()
    case("n_tensors-one-more-than-written", data, truncated("name of tensor 0", len(data)))

    # -- string lengths, on a string value whose length field is at type_at + 4
    for name, length in (
        ("2^64-1", 2**64 - 1),
        ("2^63", 2**63),
        ("2^30+1", 2**30 + 1),
        ("2^32-1", 2**32 - 1),
    ):
        data, type_at = _raw_value(
            lambda b, n=length: b.u32(ValueType.STRING).string("x", length=n)
        )
        case(f"string-length-{name}", data, malformed("the limit is 1073741824", type_at + 4))
    data, _ = _raw_value(lambda b: b.u32(ValueType.STRING).string("x", length=2**30))
    case("string-length-2^30-at-the-cap", data, truncated("needs 1073741824 bytes"))
    data, _ = _raw_value(lambda b: b.u32(ValueType.STRING).string("hello", length=6))
    case("string-length-remaining+1", data, truncated("needs 6 bytes but only 5 remain"))
    data = GGUFBuilder(version=1).header(0, 1).string("k").u32(ValueType.STRING).u32(2**32 - 1)
    case("v1-string-length-2^32-1", data.to_bytes(), malformed("the limit is 1073741824", 25))
    data = GGUFBuilder().header(0, 1).string("k", length=2**64 - 1).u32(0).u8(0).to_bytes()
    case("key-length-2^64-1", data, malformed("the limit is 65535", 24))
    data = GGUFBuilder().header(0, 1).string("k" * 65536).u32(ValueType.UINT8).raw(b"\0")
    case("key-length-65536", data.to_bytes(), malformed("the limit is 65535", 24))

    # -- keys
    data = GGUFBuilder().header(0, 1).kv("", ValueType.UINT32, 1).to_bytes()
    case("key-length-0", data, malformed("empty key", 24))
    data = GGUFBuilder().header(0, 2).raw(one_kv).raw(one_kv).to_bytes()
    case("key-duplicate", data, malformed("duplicate key 'general.architecture'", 24 + len(one_kv)))
    twice = GGUFBuilder().kv("a\nb\x1b[2J" + "k" * 60000, ValueType.UINT8, 1).to_bytes()
    data = GGUFBuilder().header(0, 2).raw(twice).raw(twice).to_bytes()
    case(
        "key-duplicate-hostile",
        data,
        malformed("duplicate key 'a\\x0ab\\x1b[2Jkkk", 24 + len(twice)),
    )
    data = GGUFBuilder().header(0, 1).kv("caf\xe9", ValueType.UINT8, 1).to_bytes()
    case("key-not-ascii", data, parses("is not ASCII"))

    # -- value types
    for value_type in (13, 0xFFFFFFFF):
        data, type_at = _raw_value(lambda b, t=value_type: b.u32(t).u32(0))
        case(
            f"value-type-{value_type:#x}",
            data,
            malformed(f"unknown value type {value_type}", type_at),
        )
    data, type_at = _raw_value(lambda b: b.u32(ValueType.ARRAY).u32(13).u64(1).u8(0))
    case("array-of-type-13", data, malformed("array of unknown type 13", type_at + 4))

    # -- array counts
    for name, count in (("2^63", 2**63), ("2^62", 2**62), ("2^30+1", 2**30 + 1)):
        data, _ = _with_value(ValueType.ARRAY, Array(ValueType.UINT64, [1], count=count))
        case(f"array-u64-count-{name}", data, malformed("the limit is 1073741824"))
    data, _ = _with_value(ValueType.ARRAY, Array(ValueType.UINT64, [1], count=2**30))
    case("array-u64-count-2^30-at-the-cap", data, truncated("needs 8589934592 bytes"))
    strings = Array(ValueType.STRING, ["a", "b"], count=1000)
    data, _ = _with_value(ValueType.ARRAY, strings, key="tokenizer.ggml.tokens")
    case("array-of-strings-count-times-8-exceeds-remaining", data, truncated("1000 entries"))
    data, type_at = _raw_value(
        lambda b: b.u32(ValueType.ARRAY).u32(ValueType.STRING).u64(1).u64(2**64 - 1)
    )
    case("array-of-strings-element-length-2^64-1", data, malformed("element 0", type_at + 16))
    for depth in (1, 2, 8):
        data, _ = _raw_value(lambda b, d=depth: b.u32(ValueType.ARRAY).nested_arrays(d))
        case(f"nested-arrays-{depth}-deep", data, parses("array of arrays"))
    for depth in (9, 10_000):
        data, _ = _raw_value(lambda b, d=depth: b.u32(ValueType.ARRAY).nested_arrays(d))
        case(f"nested-arrays-{depth}-deep", data, malformed("nests arrays deeper than 8 levels"))
    data, _ = _with_value(ValueType.BOOL, 2, key="test.flag")
    case("bool-byte-2", data, parses("bool stored as 2"))
    data, _ = _with_value(ValueType.ARRAY, Array(ValueType.BOOL, [1, 0, 2]), key="test.flags")
    case("bool-array-byte-2", data, parses("bool stored as 2"))

    # -- general.alignment
    for name, value_type, value, type_name in (
        ("i32", ValueType.INT32, 32, "INT32"),
        ("u64", ValueType.UINT64, 32, "UINT64"),
        ("string", ValueType.STRING, "32", "STRING"),
    ):
        data, type_at = _with_value(value_type, value, key="general.alignment")
        case(
            f"alignment-as-{name}", data, malformed(f"must be a UINT32, found {type_name}", type_at)
        )
    for name, value in (("0", 0), ("3", 3), ("2^31", 2**31), ("2^30+2^29", 2**30 + 2**29)):
        data, _ = _with_value(ValueType.UINT32, value, key="general.alignment")
        case(f"alignment-{name}", data, malformed("must be a power of two"))
    data, _ = _with_value(ValueType.UINT32, 1, key="general.alignment")
    case("alignment-1", data, parses())

    # -- tensor names: a 64-byte name is within GGUF's limit but over llama.cpp's 63
    data, _ = _tensor_file([("n" * 64, (8,), F32, 0)], data_bytes=32)
    case("tensor-name-64-bytes", data, parses("64-byte name"))
    data, starts = _tensor_file([("n" * 65, (8,), F32, 0)], data_bytes=32)
    case("tensor-name-65-bytes", data, malformed("the limit is 64", starts[0]))
    data, starts = _tensor_file([("n" * 2**20, (8,), F32, 0)], data_bytes=32)
    case("tensor-name-2^20-bytes", data, malformed("the limit is 64", starts[0]))
    data, starts = _tensor_file([("t", (8,), F32, 0), ("t", (8,), F32, 32)], data_bytes=64)
    case("tensor-name-duplicate", data, malformed("duplicate tensor name 't'", starts[1]))

    # -- dimensions
    for n_dims in (5, 8, 255, 2**32 - 1):
        data, dims_at = _one_tensor([8] * min(n_dims, 8), F32, n_dims=n_dims)
        case(f"n_dims-{n_dims}", data, malformed("GGUF allows at most 4", dims_at))
    data, dims_at = _one_tensor([-1], F32)
    case("ne-minus-1", data, malformed("negative", dims_at + 4))
    data, dims_at = _one_tensor([8, 2**64 - 1], F32)
    case("ne1-minus-1", data, malformed("negative", dims_at + 12))
    data, _ = _one_tensor([0], F32)
    case("ne-0", data, parses())
    data, _ = _one_tensor([8, 0, 3], F32)
    case("ne-8x0x3", data, parses())
    data, dims_at = _one_tensor([2**63 - 1], F32)
    case("ne-int64-max-f32", data, malformed("overflows 64 bits", dims_at + 12))
    data, _ = _one_tensor([2**63 - 1], I8)
    case("ne-int64-max-i8", data, truncated())
    data, dims_at = _one_tensor([2**63 - 1, 2], I8)
    case("ne-int64-max-by-2-i8", data, malformed("more elements than a 64-bit count", dims_at))
    data, dims_at = _one_tensor([2**32, 2**32], I8)
    case("ne-2^32-by-2^32-i8", data, malformed("more elements than a 64-bit count", dims_at))
    data, _ = _one_tensor([640, 2**42 + 1], Q8_0)
    case("ne-640-by-2^42+1-q8_0", data, truncated())
    data, dims_at = _one_tensor([(2**64 - 1) // 4], F32)
    case("ne0-size_max-div-4-f32", data, malformed("overflows 64 bits", dims_at + 12))

    # -- tensor types
    for type_id in (4, 5, 31, 33, 36, 38):
        data, dims_at = _one_tensor([32], type_id)
        case(f"tensor-type-{type_id}-removed", data, malformed("removed from ggml", dims_at + 12))
    for type_id in (43, 0xFFFFFFFF):
        data, _ = _one_tensor([32], type_id)
        case(f"tensor-type-{type_id:#x}-unknown", data, parses("unknown to this build"))
    data, _ = _one_tensor([33], Q8_0)
    case("ne0-not-a-multiple-of-the-block-size", data, malformed("not a multiple of the Q8_0"))
    data, _ = _one_tensor([255, 2], Q4_K)
    case("ne0-not-a-multiple-of-256", data, malformed("block size 256"))

    # -- tensor offsets (F32 [8] = 32 bytes, [16] = 64 bytes; alignment 32)
    data, _ = _tensor_file([("a", (4,), F32, 0), ("b", (8,), F32, 16)], data_bytes=64)
    case("offset-not-aligned", data, malformed("not a multiple of the alignment 32"))
    data, starts = _tensor_file([("a", (16,), F32, 0), ("b", (8,), F32, 32)], data_bytes=96)
    case("offset-overlapping", data, malformed("overlaps tensor 'a'", starts[1]))
    data, _ = _tensor_file([("a", (16,), F32, 64), ("b", (16,), F32, 0)], data_bytes=128)
    case("offset-out-of-order", data, parses("not packed in info order"))
    data, _ = _tensor_file([("a", (8,), F32, 0), ("b", (8,), F32, 1024)], data_bytes=64)
    case("offset-past-eof", data, truncated("tensor 'b' data ends at byte"))
    data, _ = _tensor_file([("a", (8,), F32, 2**64 - 1)], data_bytes=32)
    case("offset-2^64-1", data, malformed("not a multiple of the alignment"))
    data, _ = _tensor_file([("a", (8,), F32, 2**64 - 32)], data_bytes=32)
    case("offset-2^64-32", data, malformed("beyond any possible file end"))
    case("data-truncated-by-1-byte", valid[:-1], truncated("is truncated"))

    # -- no tensors: no padding, and trailing bytes after the KVs are tolerated
    vocab = build_file([ARCH, KV("tokenizer.ggml.model", ValueType.STRING, "gpt2")]).data
    case("n_tensors-0-no-padding", vocab, parses())
    case("n_tensors-0-padded", vocab + bytes(-len(vocab) % 32), parses())

    # -- keys a loader sizes memory from: legal for the header parser, trouble later
    tokens = KV("tokenizer.ggml.tokens", ValueType.ARRAY, Array(ValueType.STRING, ["a", "b"]))
    scores = KV("tokenizer.ggml.scores", ValueType.ARRAY, Array(ValueType.UINT8, [1, 2]))
    case("tokenizer-scores-as-u8-array", build_file([ARCH, tokens, scores]).data, parses())
    block_count = KV("llama.block_count", ValueType.UINT32, 2**32 - 1)
    case("block_count-2^32-1", build_file([ARCH, block_count]).data, parses())
    head_count = KV("llama.attention.head_count", ValueType.UINT32, 0)
    embedding = KV("llama.embedding_length", ValueType.UINT32, 4096)
    case("head_count-0", build_file([ARCH, embedding, head_count]).data, parses())
    return cases
