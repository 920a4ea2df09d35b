"""Hypothesis properties of the GGUF header parser: random valid files parse back to what was
built, any bytes fail only with GGUFError, and the NeedMoreData retry loop converges."""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.gguf_bytes import (
    GGML_BLOCKS,
    KV,
    Array,
    BuiltFile,
    Tensor,
    ValueType,
    build_file,
    small_model,
)

from iris_models import gguf
from iris_models.errors import GGUFError, GGUFNeedMoreDataError


def quick(max_examples: int) -> settings:
    # Parsing is fast; generating a few-kB file is what takes time, so no per-example deadline.
    return settings(
        max_examples=max_examples, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )


INTEGER_RANGES = {
    ValueType.UINT8: (0, 2**8 - 1),
    ValueType.INT8: (-(2**7), 2**7 - 1),
    ValueType.UINT16: (0, 2**16 - 1),
    ValueType.INT16: (-(2**15), 2**15 - 1),
    ValueType.UINT32: (0, 2**32 - 1),
    ValueType.INT32: (-(2**31), 2**31 - 1),
    ValueType.UINT64: (0, 2**64 - 1),
    ValueType.INT64: (-(2**63), 2**63 - 1),
}
SCALAR_TYPES = [*INTEGER_RANGES, ValueType.FLOAT32, ValueType.FLOAT64, ValueType.BOOL]
# Pieces that a UTF-8 decoder must get exactly right: valid 2-, 3- and 4-byte characters (and
# a literal U+FFFD), overlong forms, an encoded surrogate, a code point past U+10FFFF, stray
# continuation bytes and sequences cut short.
UTF8_FRAGMENTS = [
    b"a",
    b"\x00",
    b"\xc3\xa9",
    b"\xe2\x82\xac",
    b"\xf0\x9f\x98\x80",
    b"\xef\xbf\xbd",
    b"\xc0\x80",
    b"\xe0\x80\xaf",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\x80",
    b"\xc3",
    b"\xe2\x82",
    b"\xf0\x9f\x98",
]


def scalars(value_type: int) -> st.SearchStrategy[Any]:
    if value_type in INTEGER_RANGES:
        low, high = INTEGER_RANGES[value_type]
        return st.integers(low, high)
    if value_type == ValueType.FLOAT32:
        return st.floats(width=32, allow_nan=False)
    if value_type == ValueType.FLOAT64:
        return st.floats(allow_nan=False)
    if value_type == ValueType.BOOL:
        return st.sampled_from([0, 1])
    # Strings are any bytes: the parser must hand back exactly these, valid UTF-8 or not.
    return (
        st.binary(max_size=24)
        | st.text(max_size=12).map(str.encode)
        | st.lists(st.sampled_from(UTF8_FRAGMENTS), max_size=8).map(b"".join)
    )


def arrays(depth: int = 0) -> st.SearchStrategy[Array]:
    # Branches drawn evenly, so strings and arrays of arrays are as common as numbers.
    element_types = [st.sampled_from(SCALAR_TYPES), st.just(ValueType.STRING)]
    if depth < 3:
        element_types.append(st.just(ValueType.ARRAY))

    def items(element_type: int) -> st.SearchStrategy[Array]:
        element = arrays(depth + 1) if element_type == ValueType.ARRAY else scalars(element_type)
        return st.lists(element, max_size=6).map(lambda values: Array(element_type, values))

    return st.one_of(element_types).flatmap(items)


def values() -> st.SearchStrategy[tuple[int, Any]]:
    return st.one_of(
        st.sampled_from(SCALAR_TYPES).flatmap(lambda t: st.tuples(st.just(t), scalars(t))),
        st.tuples(st.just(ValueType.STRING), scalars(ValueType.STRING)),
        st.tuples(st.just(ValueType.ARRAY), arrays()),
    )


# Mostly keys as the spec wants them; any other non-empty text now and then (non-ASCII warns).
keys = st.text("abcdefghijklmnopqrstuvwxyz0123456789._", min_size=1, max_size=30) | st.text(
    min_size=1, max_size=8
)


@st.composite
def tensors(draw: st.DrawFn) -> Tensor:
    # Mostly known types, now and then an id this build cannot size.
    type_id = draw(st.sampled_from(sorted(GGML_BLOCKS)) | st.sampled_from([43, 1000, 2**32 - 1]))
    block = GGML_BLOCKS.get(type_id, (1, 0))[0]
    n_dims = draw(st.integers(0 if block == 1 else 1, 4))
    ne = [block * draw(st.integers(0, 2))] + [draw(st.integers(0, 3)) for _ in range(n_dims - 1)]
    names = st.binary(max_size=63) | st.text(max_size=20).map(str.encode)
    name = draw(names.filter(lambda name: len(name) <= 63))
    return Tensor(name, tuple(ne[:n_dims]), type_id)


@st.composite
def valid_files(draw: st.DrawFn) -> BuiltFile:
    records = draw(
        st.lists(st.tuples(keys, values()), max_size=8, unique_by=lambda record: record[0])
    )
    kvs = [KV(key, *value) for key, value in records if key != "general.alignment"]
    alignment = draw(st.none() | st.integers(0, 10).map(lambda power: 2**power))
    if alignment is not None:
        at = draw(st.integers(0, len(kvs)))
        kvs.insert(at, KV("general.alignment", ValueType.UINT32, alignment))
    infos = draw(st.lists(tensors(), max_size=4, unique_by=lambda tensor: tensor.name))
    return build_file(
        kvs,
        infos,
        version=draw(st.sampled_from([3, 2, 1])),
        big_endian=draw(st.booleans()),
        pad_last_tensor=draw(st.booleans()),
    )


# -- what a parse says, as plain data --------------------------------------------------------


def plain(value: Any) -> Any:
    """A parsed value as plain Python: strings as their exact bytes, arrays as lists."""
    if isinstance(value, gguf.StringArray):
        assert [raw.decode("utf-8", "surrogateescape") for raw in value.iter_raw()] == list(value)
        return list(value.iter_raw())
    if isinstance(value, np.ndarray):
        return [plain(item) for item in value.tolist()]
    if isinstance(value, tuple):
        return [plain(item) for item in value]
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    if isinstance(value, float):
        return struct.pack("<d", value)  # NaN-safe equality, and -0.0 differs from 0.0
    return value


def built_plain(value_type: int, value: Any) -> Any:
    """What :func:`plain` must give for a value as it was built."""
    if value_type == ValueType.ARRAY:
        return [built_plain(value.element_type, item) for item in value.items]
    if value_type == ValueType.BOOL:
        return bool(value)
    if value_type in (ValueType.FLOAT32, ValueType.FLOAT64):
        return struct.pack("<d", value)
    return value


def describe(model: gguf.GGUFFile) -> dict[str, Any]:
    return {
        "version": model.version,
        "endianness": model.endianness,
        "alignment": model.alignment,
        "data_offset": model.data_offset,
        "shards": model.shards,
        "warnings": model.warnings,
        "fields": [
            (key, f.type, f.element_type, f.count, f.offset, f.nbytes, plain(f.value))
            for key, f in model.fields.items()
        ],
        "tensors": model.tensors,
    }


# -- (a) valid files round-trip --------------------------------------------------------------


def expected_warnings(built: BuiltFile) -> int:
    def key_bytes(kv: KV) -> bytes:
        return kv.key.encode() if isinstance(kv.key, str) else kv.key

    non_ascii_keys = sum(1 for kv in built.kvs if not key_bytes(kv).isascii())
    nested = sum(
        1
        for kv in built.kvs
        if kv.type == ValueType.ARRAY and kv.value.element_type == ValueType.ARRAY
    )
    unknown_types = sum(1 for tensor in built.tensors if tensor.type_id not in GGML_BLOCKS)
    empty_names = sum(1 for tensor in built.tensors if not tensor.name)
    version_1 = 1 if built.version == 1 else 0
    return non_ascii_keys + nested + unknown_types + empty_names + version_1


@quick(150)
@given(valid_files())
def test_valid_file_parses_back_to_exactly_what_was_built(built: BuiltFile) -> None:
    for file_size in (len(built.data), None):
        model = gguf.parse(built.data, file_size=file_size)
        assert model.version == built.version
        assert model.endianness == ("big" if built.big_endian else "little")
        assert model.alignment == built.alignment
        assert model.data_offset == built.data_offset
        assert len(model.warnings) == expected_warnings(built), model.warnings

        assert list(model.fields) == [kv.key for kv in built.kvs]
        for kv, field in zip(built.kvs, model.fields.values(), strict=True):
            assert field.type == kv.type
            is_array = kv.type == ValueType.ARRAY
            assert field.element_type == (kv.value.element_type if is_array else None)
            assert field.count == (len(kv.value.items) if is_array else 1)
            assert plain(field.value) == built_plain(kv.type, kv.value)

        assert len(model.tensors) == len(built.tensors)
        for index, (tensor, info) in enumerate(zip(built.tensors, model.tensors, strict=True)):
            assert info.name.encode("utf-8", "surrogateescape") == tensor.name
            assert info.shape == tensor.ne
            assert info.type_id == tensor.type_id
            assert info.offset == built.data_offset + built.tensor_offsets[index]
            assert info.nbytes == built.tensor_nbytes[index]
            assert info.n_elements == math.prod(tensor.ne)
        padded = [
            -(-(size or 0) // built.alignment) * built.alignment for size in built.tensor_nbytes
        ]
        assert model.shards[0].data_size == sum(padded)


# -- (b) any bytes fail cleanly ------------------------------------------------------------------


def check_parse_fails_cleanly(data: bytes) -> None:
    for file_size in (len(data), None):
        try:
            model = gguf.parse(data, file_size=file_size)
        except GGUFError as error:
            message, offset = str(error), error.offset
        else:
            describe(model)
            model.summary()
            continue
        assert f"byte {offset}:" in message


gguf_prefixed = st.builds(
    lambda version, counts, rest: b"GGUF" + version + counts + rest,
    st.sampled_from([struct.pack("<I", v) for v in (1, 2, 3)] + [struct.pack(">I", 3)]),
    st.binary(min_size=0, max_size=16),
    st.binary(max_size=256),
)


@quick(300)
@given(st.binary(max_size=512) | gguf_prefixed)
def test_arbitrary_bytes_raise_nothing_but_gguf_error(data: bytes) -> None:
    check_parse_fails_cleanly(data)


@quick(150)
@given(valid_files(), st.data())
def test_mutated_valid_file_raises_nothing_but_gguf_error(
    built: BuiltFile, data: st.DataObject
) -> None:
    mutated = bytearray(built.data)
    size = len(mutated)
    edits = data.draw(
        st.lists(st.tuples(st.integers(0, size - 1), st.integers(0, 255)), max_size=4)
    )
    for offset, value in edits:
        mutated[offset] = value
    cut = data.draw(st.integers(0, size))
    check_parse_fails_cleanly(bytes(mutated[:cut]))


# -- (c) the NeedMoreData retry loop ------------------------------------------------------------


def parse_by_growing_prefix(
    whole: bytes, first_length: int, file_size: int | None
) -> gguf.GGUFFile:
    """Fetch more bytes as bytes_needed says, until the header parses."""
    length = first_length
    for _ in range(len(whole) + 1):
        try:
            return gguf.parse(whole[:length], file_size=file_size)
        except GGUFNeedMoreDataError as error:
            needed = error.bytes_needed
        assert length < needed <= len(whole)
        length = needed
    raise AssertionError("the retry loop did not converge")


@quick(100)
@given(valid_files() | st.just(small_model()), st.data())
def test_need_more_data_retry_loop_converges_to_the_whole_file_parse(
    built: BuiltFile, data: st.DataObject
) -> None:
    first_length = data.draw(st.integers(0, len(built.data)))
    for file_size in (None, len(built.data)):
        expected = describe(gguf.parse(built.data, file_size=file_size))
        model = parse_by_growing_prefix(built.data, first_length, file_size)
        assert describe(model) == expected


# -- string arrays longer than the parser's index stride ---------------------------------------


@quick(60)
@given(
    st.lists(scalars(ValueType.STRING), min_size=0, max_size=300),
    st.sampled_from([3, 1]),
    st.booleans(),
    st.data(),
)
def test_long_string_array_reads_back_from_any_element(
    items: list[bytes], version: int, big_endian: bool, data: st.DataObject
) -> None:
    # The parser keeps one offset per 64 strings; every element must be reachable from each.
    kv = KV("tokenizer.ggml.tokens", ValueType.ARRAY, Array(ValueType.STRING, items))
    built = build_file([kv], version=version, big_endian=big_endian)
    strings = gguf.parse(built.data, file_size=len(built.data)).metadata["tokenizer.ggml.tokens"]
    assert len(strings) == len(items)
    assert list(strings.iter_raw()) == items
    if items:
        index = data.draw(st.integers(-len(items), len(items) - 1))
        assert strings.raw(index) == items[index]
        assert strings[index] == items[index].decode("utf-8", "surrogateescape")
        start = data.draw(st.integers(0, len(items)))
        step = data.draw(st.integers(1, 70))
        expected = [item.decode("utf-8", "surrogateescape") for item in items[start::step]]
        assert strings[start::step] == expected
