"""Compare everything iris_models.gguf reports with gguf-py's GGUFReader, the independent
oracle, on files written by gguf-py's GGUFWriter."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest
from tests.gguf_py_files import KV, QT, VT, Tensor, write_gguf

import iris_models.gguf as ig


def quantized(ggml_type: QT, shape: Sequence[int], seed: int = 0) -> np.ndarray:
    """Random bytes for a tensor of ``ggml_type`` whose element shape (numpy order) is
    ``shape``: GGUFWriter takes quantized data as uint8 with the row measured in bytes."""
    block_size, type_size = gguf.GGML_QUANT_SIZES[ggml_type]
    assert shape[-1] % block_size == 0
    byte_shape = (*shape[:-1], shape[-1] // block_size * type_size)
    return np.random.default_rng(seed).integers(0, 256, byte_shape, dtype=np.uint8)


def expected_nbytes(ggml_type: QT, n_elements: int) -> int:
    block_size, type_size = gguf.GGML_QUANT_SIZES[ggml_type]
    return n_elements // block_size * type_size


def pad(size: int, alignment: int) -> int:
    return (size + alignment - 1) // alignment * alignment


# -- comparing with the oracle ------------------------------------------------------------


def address(array: np.ndarray) -> int:
    return int(array.__array_interface__["data"][0])


def payload_offset(parts: Sequence[np.ndarray], base: int) -> int:
    """Where a scalar's or a string's bytes start: an empty string's numpy view has no
    reliable address, so strings are located from their length prefix."""
    if parts[-1].nbytes == 0:
        return address(parts[-2]) + int(parts[-2].nbytes) - base
    return address(parts[-1]) - base


def same_scalar(ours: Any, theirs: Any) -> bool:
    if isinstance(theirs, float):
        if math.isnan(theirs):
            return isinstance(ours, float) and math.isnan(ours)
        return ours == theirs and math.copysign(1.0, ours) == math.copysign(1.0, theirs)
    return bool(ours == theirs)


def assert_field_matches(ours: ig.GGUFField, theirs: Any, base: int) -> None:
    """One key/value record: its types, count, payload offset and size, and its value."""
    parts = theirs.parts
    assert ours.key == theirs.name
    assert ours.type == theirs.types[0]
    if ours.type is ig.GGUFValueType.ARRAY:
        # parts: key length, key, value type, element type, count, then the elements
        assert ours.element_type == theirs.types[1]
        assert ours.count == int(parts[4][0])
        assert ours.offset == address(parts[4]) + 8 - base
        assert ours.nbytes == sum(int(part.nbytes) for part in parts[5:])
        elements = [parts[index] for index in theirs.data]
        if ours.element_type is ig.GGUFValueType.STRING:
            assert isinstance(ours.value, ig.StringArray)
            assert len(ours.value) == ours.count
            assert list(ours.value.iter_raw()) == [bytes(element) for element in elements]
            return
        if ours.element_type is ig.GGUFValueType.ARRAY:  # gguf-py flattens nested arrays
            assert isinstance(ours.value, tuple)
            flat = np.concatenate(ours.value)
        else:
            assert isinstance(ours.value, np.ndarray)
            assert not ours.value.flags.writeable
            flat = ours.value
        assert flat.dtype == elements[0].dtype  # element type and byte order
        assert flat.tobytes() == b"".join(element.tobytes() for element in elements)
        return
    assert ours.element_type is None
    assert ours.count == 1
    assert ours.offset == payload_offset(parts, base)
    assert ours.nbytes == parts[-1].nbytes
    if ours.type is ig.GGUFValueType.STRING:
        assert isinstance(ours.value, str)
        assert ours.value.encode("utf-8", "surrogateescape") == bytes(parts[-1])
    else:
        expected = parts[-1][0].item()
        assert type(ours.value) is type(expected)
        assert same_scalar(ours.value, expected)


def assert_tensor_matches(ours: ig.TensorInfo, theirs: Any) -> None:
    assert ours.name == theirs.name
    assert ours.shape == tuple(int(dim) for dim in theirs.shape)
    assert ours.type_id == int(theirs.tensor_type)
    assert ours.type == theirs.tensor_type.name
    assert ours.offset == theirs.data_offset
    assert ours.n_elements == theirs.n_elements
    assert ours.nbytes == theirs.n_bytes


def end_of_keys(reader: gguf.GGUFReader) -> int:
    last = list(reader.fields.values())[-1].parts
    return payload_offset(last, address(reader.data)) + int(last[-1].nbytes)


def assert_matches_reader(model: ig.GGUFFile, path: Path) -> gguf.GGUFReader:
    """Everything ``model`` (one file, not a merged split) says equals GGUFReader's reading.

    The data offset of a file without tensors is the end of its key/values, as in gguf.cpp;
    gguf-py pads it to the alignment even then (a known difference).
    """
    reader = gguf.GGUFReader(path)
    base = address(reader.data)
    assert model.version == int(reader.fields["GGUF.version"].parts[0][0])
    big = reader.endianess == gguf.GGUFEndian.BIG
    assert model.endianness == ("big" if big else "little")
    assert model.alignment == reader.alignment
    assert model.file_size == reader.data.size == path.stat().st_size
    if reader.tensors:
        assert model.data_offset == reader.data_offset
    else:
        assert model.data_offset == end_of_keys(reader)
    their_fields = [field for key, field in reader.fields.items() if not key.startswith("GGUF.")]
    assert list(model.fields) == [field.name for field in their_fields]
    for field in their_fields:
        assert_field_matches(model.fields[field.name], field, base)
    assert len(model.tensors) == len(reader.tensors)
    for ours, theirs in zip(model.tensors, reader.tensors, strict=True):
        assert_tensor_matches(ours, theirs)
    return reader


def open_and_compare(path: Path) -> ig.GGUFFile:
    model = ig.open(path, all_shards=False)
    assert_matches_reader(model, path)
    return model


# -- scalars ------------------------------------------------------------------------------

SCALARS: list[tuple[str, VT, Any]] = [
    ("u8-max", VT.UINT8, 255),
    ("u8-zero", VT.UINT8, 0),
    ("i8-min", VT.INT8, -128),
    ("i8-max", VT.INT8, 127),
    ("u16-max", VT.UINT16, 65535),
    ("i16-min", VT.INT16, -32768),
    ("u32-max", VT.UINT32, 2**32 - 1),
    ("i32-min", VT.INT32, -(2**31)),
    ("u64-max", VT.UINT64, 2**64 - 1),
    ("i64-min", VT.INT64, -(2**63)),
    ("i64-max", VT.INT64, 2**63 - 1),
    ("f32-epsilon", VT.FLOAT32, 1e-6),
    ("f32-negative-zero", VT.FLOAT32, -0.0),
    ("f32-inf", VT.FLOAT32, math.inf),
    ("f32-nan", VT.FLOAT32, math.nan),
    ("f32-max", VT.FLOAT32, float(np.finfo(np.float32).max)),
    ("f64-pi", VT.FLOAT64, math.pi),
    ("f64-negative-inf", VT.FLOAT64, -math.inf),
    ("f64-subnormal", VT.FLOAT64, 5e-324),
    ("bool-true", VT.BOOL, True),
    ("bool-false", VT.BOOL, False),
    ("str-ascii", VT.STRING, "gemma3"),
    ("str-empty", VT.STRING, ""),
    ("str-non-ascii", VT.STRING, "Grüße, 世界 😀"),
    ("str-literal-replacement-char", VT.STRING, "\ufffd"),
    ("str-replacement-chars-in-text", VT.STRING, "a\ufffd\ufffdb"),
    ("str-newline", VT.STRING, "\n"),
    ("str-whitespace-only", VT.STRING, " \t\n\r "),
    ("str-control-chars", VT.STRING, "\x1f\x00\x7f"),
    ("str-long", VT.STRING, "{% for m in messages %}" * 1000),
    ("str-invalid-utf8-bytes", VT.STRING, b"ok\xff\xc3("),
]


def written_scalar(value_type: VT, value: Any) -> Any:
    """What the file holds for ``value`` once GGUFWriter has stored it as ``value_type``."""
    if value_type is VT.FLOAT32:
        return float(np.float32(value))
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return value


@pytest.mark.parametrize(
    ("value_type", "value"),
    [pytest.param(value_type, value, id=name) for name, value_type, value in SCALARS],
)
def test_scalar_matches_reader_and_written_value(
    tmp_path: Path, value_type: VT, value: Any
) -> None:
    path = write_gguf(tmp_path / "scalar.gguf", [("test.value", value, value_type, None)])
    model = open_and_compare(path)
    field = model.fields["test.value"]
    assert field.type == value_type
    assert same_scalar(field.value, written_scalar(value_type, value))
    assert same_scalar(model.metadata["test.value"], field.value)
    assert model.warnings == ()


# -- numeric and bool arrays -------------------------------------------------------------

NUMERIC_ARRAYS: list[tuple[str, VT, list[Any]]] = [
    ("u8", VT.UINT8, [0, 1, 127, 128, 255]),
    ("i8", VT.INT8, [-128, -1, 0, 1, 127]),
    ("u16", VT.UINT16, [0, 1, 256, 65535]),
    ("i16", VT.INT16, [-32768, -1, 0, 32767]),
    ("u32", VT.UINT32, [0, 1, 2**16, 2**32 - 1]),
    ("i32", VT.INT32, [-(2**31), -1, 0, 2**31 - 1]),
    ("u64", VT.UINT64, [0, 1, 2**32, 2**64 - 1]),
    ("i64", VT.INT64, [-(2**63), -1, 0, 2**63 - 1]),
    ("f32", VT.FLOAT32, [0.0, -0.0, 1e-6, -2.5, math.inf, -math.inf, math.nan, 3.4e38]),
    ("f64", VT.FLOAT64, [0.0, -0.0, math.pi, 5e-324, -math.inf, math.nan, 1.7e308]),
    ("bool", VT.BOOL, [True, False, False, True]),
    ("bool-long", VT.BOOL, [i % 3 == 0 for i in range(1001)]),
    ("single-element", VT.INT32, [42]),
    ("i32-long", VT.INT32, list(range(-5000, 5000, 3))),
]

NUMPY_DTYPES = {
    VT.UINT8: np.uint8,
    VT.INT8: np.int8,
    VT.UINT16: np.uint16,
    VT.INT16: np.int16,
    VT.UINT32: np.uint32,
    VT.INT32: np.int32,
    VT.UINT64: np.uint64,
    VT.INT64: np.int64,
    VT.FLOAT32: np.float32,
    VT.FLOAT64: np.float64,
    VT.BOOL: np.bool_,
}


def assert_array_holds(ours: np.ndarray, element_type: VT, values: list[Any]) -> None:
    expected = np.array(values, dtype=NUMPY_DTYPES[element_type])
    assert ours.shape == expected.shape
    assert ours.dtype.kind == expected.dtype.kind
    assert ours.dtype.itemsize == expected.dtype.itemsize
    assert np.array_equal(ours, expected, equal_nan=ours.dtype.kind == "f")
    if ours.dtype.kind == "f":  # -0.0 == 0.0, so compare signs too
        assert np.array_equal(np.signbit(ours), np.signbit(expected))


@pytest.mark.parametrize(
    ("element_type", "values"),
    [pytest.param(element_type, values, id=name) for name, element_type, values in NUMERIC_ARRAYS],
)
def test_numeric_array_matches_reader_element_wise(
    tmp_path: Path, element_type: VT, values: list[Any]
) -> None:
    path = write_gguf(tmp_path / "array.gguf", [("test.array", values, VT.ARRAY, element_type)])
    model = open_and_compare(path)
    field = model.fields["test.array"]
    assert field.element_type == element_type
    assert field.count == len(values)
    assert_array_holds(field.value, element_type, values)


def test_nested_array_matches_reader_flattened_and_keeps_its_structure(tmp_path: Path) -> None:
    nested = [[1, 2], [3, 4, 5], [-6]]
    path = write_gguf(tmp_path / "nested.gguf", [("test.nested", nested, VT.ARRAY, None)])
    model = open_and_compare(path)
    value = model.metadata["test.nested"]
    assert [array.tolist() for array in value] == nested
    assert any("array of arrays" in warning for warning in model.warnings)


# -- string arrays ------------------------------------------------------------------------

N_LARGE = 100_003


def many_tokens() -> list[str | bytes]:
    """More than 100,000 tokens with the traps real vocabularies hold."""
    specials: list[str | bytes] = [
        "",
        "\ufffd",
        "\ufffd\ufffd",
        "\n",
        "\n\n",
        "\t",
        " ",
        "\x1f",
        "Ġ" * 512,
        "😀",
        "<0x00>",
        b"\xff\xfe",
        b"\xc3",
        "\u3000",
    ]
    tokens: list[str | bytes] = [f"tok{i}" for i in range(N_LARGE - len(specials))]
    for position, special in enumerate(specials):
        tokens.insert(position * 7001, special)
    return tokens


@pytest.fixture(scope="module")
def large_vocab(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str | bytes]]:
    tokens = many_tokens()
    path = write_gguf(
        tmp_path_factory.mktemp("vocab") / "large.gguf",
        [
            ("tokenizer.ggml.tokens", tokens, VT.ARRAY, VT.STRING),
            ("tokenizer.ggml.scores", [float(-i) for i in range(100)], VT.ARRAY, VT.FLOAT32),
            ("test.after", "still here", VT.STRING, None),
        ],
        [("token_embd.weight", quantized(QT.Q8_0, (8, 64)), QT.Q8_0)],
    )
    return path, tokens


def test_string_array_of_100k_strings_matches_reader_byte_for_byte(
    large_vocab: tuple[Path, list[str | bytes]],
) -> None:
    path, tokens = large_vocab
    model = open_and_compare(path)
    value = model.metadata["tokenizer.ggml.tokens"]
    assert len(value) == N_LARGE
    expected_raw = [t if isinstance(t, bytes) else t.encode("utf-8") for t in tokens]
    assert list(value.iter_raw()) == expected_raw
    assert value.tolist() == [raw.decode("utf-8", "surrogateescape") for raw in expected_raw]
    assert model.metadata["test.after"] == "still here"


# -- tensors ------------------------------------------------------------------------------

# gguf-py 0.19.0 sizes Q8_1 as 40 bytes per 32 elements; ggml's block_q8_1 is 36.
ORACLE_TYPES = [ggml_type for ggml_type in gguf.GGML_QUANT_SIZES if ggml_type is not QT.Q8_1]


def tensors_of_type(ggml_type: QT, prefix: str = "") -> list[Tensor]:
    """1-D to 4-D tensors of one ggml type, in numpy order."""
    block_size, _ = gguf.GGML_QUANT_SIZES[ggml_type]
    shapes = [(2 * block_size,), (3, block_size), (2, 2, 3 * block_size), (1, 2, 3, block_size)]
    return [
        (
            f"{prefix}{ggml_type.name.lower()}.{len(shape)}d",
            quantized(ggml_type, shape, seed),
            ggml_type,
        )
        for seed, shape in enumerate(shapes)
    ]


@pytest.mark.parametrize("ggml_type", ORACLE_TYPES, ids=lambda ggml_type: ggml_type.name)
def test_tensor_records_match_reader_for_ggml_type(tmp_path: Path, ggml_type: QT) -> None:
    path = write_gguf(tmp_path / "tensors.gguf", tensors=tensors_of_type(ggml_type))
    model = open_and_compare(path)
    for tensor in model.tensors:
        assert tensor.type == ggml_type.name
        assert tensor.nbytes == expected_nbytes(ggml_type, tensor.n_elements)
        assert tensor.n_elements == math.prod(tensor.shape)
    assert model.warnings == ()


def test_tensors_of_every_type_in_one_file_match_reader_and_pack_densely(tmp_path: Path) -> None:
    tensors = [tensor for ggml_type in ORACLE_TYPES for tensor in tensors_of_type(ggml_type)]
    path = write_gguf(tmp_path / "all-types.gguf", tensors=tensors)
    model = open_and_compare(path)
    assert len(model.tensors) == len(tensors) == 4 * len(ORACLE_TYPES)
    next_offset = model.data_offset
    for tensor in model.tensors:
        assert tensor.offset == next_offset
        assert tensor.nbytes is not None
        next_offset += pad(tensor.nbytes, 32)
    assert next_offset == model.file_size
    assert model.shards[0].data_size == model.file_size - model.data_offset
    assert model.warnings == ()


def test_q8_1_tensor_is_sized_36_bytes_per_block_as_ggml_does(tmp_path: Path) -> None:
    # Signed bytes with raw_shape bypass GGUFWriter's byte-shape conversion, which would use
    # gguf-py's wrong 40-byte Q8_1 block, so the file holds ggml-sized Q8_1 data.
    path = tmp_path / "q8_1.gguf"
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_tensor("q8_1", np.zeros(2 * 36, dtype=np.int8), raw_shape=(64,), raw_dtype=QT.Q8_1)
    writer.add_tensor("after", np.ones(4, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    model = ig.open(path)
    q8_1, after = model.tensors
    assert (q8_1.type, q8_1.shape, q8_1.n_elements, q8_1.nbytes) == ("Q8_1", (64,), 64, 72)
    assert after.offset == model.data_offset + pad(72, 32)
    assert [t.data_offset for t in gguf.GGUFReader(path).tensors] == [q8_1.offset, after.offset]


# -- alignment and byte order -------------------------------------------------------------


@pytest.mark.parametrize("endianess", list(gguf.GGUFEndian), ids=lambda e: e.name.lower())
@pytest.mark.parametrize("alignment", [64, 256, 8])
def test_custom_alignment_matches_reader(
    tmp_path: Path, alignment: int, endianess: gguf.GGUFEndian
) -> None:
    tensors: list[Tensor] = [
        ("odd.f32", np.arange(3, dtype=np.float32), None),
        ("q4_k", quantized(QT.Q4_K, (1, 256)), QT.Q4_K),
        ("odd.f16", np.arange(5, dtype=np.float16), None),
        ("q5_0", quantized(QT.Q5_0, (3, 32)), QT.Q5_0),
    ]
    path = write_gguf(
        tmp_path / "aligned.gguf", tensors=tensors, alignment=alignment, endianess=endianess
    )
    model = open_and_compare(path)
    assert model.alignment == alignment
    assert model.metadata["general.alignment"] == alignment
    assert model.data_offset % alignment == 0
    assert all(tensor.offset % alignment == 0 for tensor in model.tensors)
    assert model.warnings == ()


def test_big_endian_file_matches_reader_and_decodes_numbers(tmp_path: Path) -> None:
    kvs: list[KV] = [
        (f"test.array.{name}", values, VT.ARRAY, element_type)
        for name, element_type, values in NUMERIC_ARRAYS
    ]
    kvs += [(f"test.scalar.{name}", value, value_type, None) for name, value_type, value in SCALARS]
    kvs.append(("test.strings", ["a", "ßß", "\ufffd"], VT.ARRAY, VT.STRING))
    tensors: list[Tensor] = [
        ("f32", np.arange(12, dtype=np.float32).reshape(3, 4), None),
        ("i16", np.arange(6, dtype=np.int16), None),
        ("q6_k", quantized(QT.Q6_K, (2, 256)), QT.Q6_K),
    ]
    path = write_gguf(tmp_path / "be.gguf", kvs, tensors, endianess=gguf.GGUFEndian.BIG)
    model = open_and_compare(path)
    assert model.endianness == "big"
    assert model.shards[0].endianness == "big"
    assert model.summary().endianness == "big"
    assert model.version == 3
    for name, element_type, values in NUMERIC_ARRAYS:
        assert_array_holds(model.metadata[f"test.array.{name}"], element_type, values)
    for name, value_type, value in SCALARS:
        assert same_scalar(model.metadata[f"test.scalar.{name}"], written_scalar(value_type, value))
    assert model.metadata["test.strings"].tolist() == ["a", "ßß", "\ufffd"]
    assert [t.shape for t in model.tensors] == [(4, 3), (6,), (256, 2)]


# -- vocab-only files ---------------------------------------------------------------------


VOCAB_KVS: list[KV] = [
    ("tokenizer.ggml.model", "llama", VT.STRING, None),
    ("tokenizer.ggml.tokens", ["<s>", "</s>", "a", "bc"], VT.ARRAY, VT.STRING),
    ("tokenizer.ggml.scores", [0.0, 0.0, -1.0, -2.0], VT.ARRAY, VT.FLOAT32),
]


def test_vocab_only_file_data_offset_is_the_file_size_where_gguf_py_pads(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "vocab.gguf", VOCAB_KVS, tensor_data=False)
    size = path.stat().st_size
    assert size % 32 != 0  # otherwise padding would not show
    model = open_and_compare(path)
    assert model.tensors == ()
    assert model.data_offset == model.file_size == size
    assert model.shards[0].data_size == 0
    # The known difference: gguf-py pads the data offset even with no tensors, past the end.
    assert gguf.GGUFReader(path).data_offset == pad(size, 32) > size


def test_vocab_only_file_with_trailing_padding_has_data_offset_at_end_of_keys(
    tmp_path: Path,
) -> None:
    # GGUFWriter.write_tensors_to_file pads even with no tensors; gguf.cpp puts the data
    # section of a tensorless file right after the key/values, not after the padding.
    path = write_gguf(tmp_path / "vocab-padded.gguf", VOCAB_KVS)
    end = end_of_keys(gguf.GGUFReader(path))
    model = open_and_compare(path)
    assert model.data_offset == end < model.file_size == pad(end, 32)


# -- split models -------------------------------------------------------------------------


def test_split_model_opened_as_one_matches_every_shards_reader(tmp_path: Path) -> None:
    tensors: list[Tensor] = [
        (f"blk.{i}.weight", quantized(QT.Q4_0, (i + 1, 64), seed=i), QT.Q4_0) for i in range(5)
    ]
    kvs: list[KV] = [("llama.block_count", 5, VT.UINT32, None)]
    write_gguf(tmp_path / "model.gguf", kvs, tensors, split_max_tensors=2)
    paths = [tmp_path / ig.shard_name("model", shard, 3) for shard in (1, 2, 3)]
    assert sorted(tmp_path.iterdir()) == paths

    model = ig.open(paths[0])
    assert [shard.path for shard in model.shards] == paths
    assert [tensor.name for tensor in model.tensors] == [name for name, _, _ in tensors]
    assert model.file_size == sum(path.stat().st_size for path in paths)
    for index, path in enumerate(paths):
        alone = open_and_compare(path)
        reader = gguf.GGUFReader(path)
        in_shard = [tensor for tensor in model.tensors if tensor.shard == index]
        assert len(in_shard) == len(reader.tensors) == model.shards[index].n_tensors
        for ours, theirs in zip(in_shard, reader.tensors, strict=True):
            assert_tensor_matches(ours, theirs)
        assert model.shards[index].data_offset == reader.data_offset == alone.data_offset
        assert alone.metadata["split.no"] == index
        assert alone.metadata["split.count"] == 3
        assert alone.metadata["split.tensors.count"] == 5
    summary = model.summary()
    assert summary.split == ig.SplitInfo(
        shard_count=3, tensors_count=5, paths=tuple(str(path) for path in paths)
    )
    assert summary.n_tensors == 5
    assert summary.header_size == sum(shard.data_offset for shard in model.shards)
