"""The Python API of iris_models.gguf: lifetime, lazy string arrays, the decode policy,
summaries, split models and parsing from buffers, on small files written with GGUFWriter."""

from __future__ import annotations

import gc
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest
from tests.gguf_py_files import QT, VT, write_gguf

import iris_models
import iris_models.gguf as ig


def quantized(ggml_type: QT, shape: Sequence[int]) -> np.ndarray:
    """Zero bytes for a tensor of ``ggml_type`` with element shape ``shape`` (numpy order)."""
    block_size, type_size = gguf.GGML_QUANT_SIZES[ggml_type]
    return np.zeros((*shape[:-1], shape[-1] // block_size * type_size), dtype=np.uint8)


TOKENS: list[str | bytes] = [
    "<pad>",
    "",
    "\ufffd",
    b"\xff\xfe",
    "\n",
    "\n\n",
    " ",
    "héllo",
    "😀",
    b"ok\xc3(",
    *(f"tok{i}" for i in range(10_000)),
]
RAW_TOKENS = [token if isinstance(token, bytes) else token.encode() for token in TOKENS]
DECODED_TOKENS = [raw.decode("utf-8", "surrogateescape") for raw in RAW_TOKENS]


@pytest.fixture(scope="module")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A file with scalars, numeric arrays, a 10,010-token string array and three tensors."""
    return write_gguf(
        tmp_path_factory.mktemp("small") / "small.gguf",
        [
            ("tokenizer.ggml.tokens", TOKENS, VT.ARRAY, VT.STRING),
            ("tokenizer.ggml.scores", [float(i) for i in range(100)], VT.ARRAY, VT.FLOAT32),
            ("test.u64s", [1, 2**63, 2**64 - 1], VT.ARRAY, VT.UINT64),
            ("test.text", "bonjour", VT.STRING, None),
        ],
        [
            ("token_embd.weight", quantized(QT.Q8_0, (4, 64)), QT.Q8_0),
            ("blk.0.attn_q.weight", quantized(QT.Q4_K, (2, 3, 256)), QT.Q4_K),
            ("output_norm.weight", np.ones(64, dtype=np.float32), None),
        ],
    )


# -- lifetime -----------------------------------------------------------------------------


def test_context_manager_closes_the_file(small_model: Path) -> None:
    with ig.open(small_model) as model:
        assert not model.closed
        assert model.version == 3
    assert model.closed
    assert repr(model) == "<GGUFFile (closed)>"
    model.close()  # idempotent
    assert model.closed


ACCESSORS = [
    "fields",
    "metadata",
    "tensors",
    "shards",
    "warnings",
    "file_size",
    "version",
    "endianness",
    "alignment",
    "data_offset",
]


@pytest.mark.parametrize("read_before_close", [False, True], ids=["fresh", "read-before"])
@pytest.mark.parametrize("accessor", ACCESSORS)
def test_accessor_after_close_raises_value_error(
    small_model: Path, accessor: str, read_before_close: bool
) -> None:
    model = ig.open(small_model)
    if read_before_close:
        getattr(model, accessor)
    model.close()
    with pytest.raises(ValueError, match="closed"):
        getattr(model, accessor)


def test_summary_after_close_raises_value_error(small_model: Path) -> None:
    model = ig.open(small_model)
    model.close()
    with pytest.raises(ValueError, match="closed"):
        model.summary()


def test_arrays_taken_before_close_stay_readable_and_read_only(small_model: Path) -> None:
    with ig.open(small_model) as model:
        scores = model.metadata["tokenizer.ggml.scores"]
        big = model.metadata["test.u64s"]
        tokens = model.metadata["tokenizer.ggml.tokens"]
    del model
    gc.collect()
    assert scores.tolist() == [float(i) for i in range(100)]
    assert big.tolist() == [1, 2**63, 2**64 - 1]
    assert tokens[3] == "\udcff\udcfe"
    assert tokens.raw(-1) == b"tok9999"
    for array in (scores, big):
        assert not array.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 0


# -- StringArray --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tokens(small_model: Path) -> ig.StringArray:
    value = ig.open(small_model).metadata["tokenizer.ggml.tokens"]
    assert isinstance(value, ig.StringArray)
    return value


def test_string_array_length_and_indexing(tokens: ig.StringArray) -> None:
    assert len(tokens) == len(TOKENS)
    assert tokens[0] == "<pad>"
    assert tokens[-1] == "tok9999"
    assert tokens[-len(TOKENS)] == "<pad>"
    assert tokens[5000] == DECODED_TOKENS[5000]
    # elements far from and close to the sparse index's 64-element stride
    for index in (63, 64, 65, 127, 128, 4095, 4096, 4097, 8191, len(TOKENS) - 64):
        assert tokens[index] == DECODED_TOKENS[index]
        assert tokens.raw(index) == RAW_TOKENS[index]


@pytest.mark.parametrize("index", [len(TOKENS), len(TOKENS) + 1000, -len(TOKENS) - 1])
def test_string_array_index_out_of_range_raises_index_error(
    tokens: ig.StringArray, index: int
) -> None:
    with pytest.raises(IndexError):
        tokens[index]
    with pytest.raises(IndexError):
        tokens.raw(index)


@pytest.mark.parametrize(
    "window",
    [
        slice(None),
        slice(2, 5),
        slice(None, None, 2),
        slice(1, 4000, 2),
        slice(-3, None),
        slice(5, 2),
        slice(100_000, 100_010),
        slice(None, None, -1),
        slice(4090, 4100),
        slice(-20, -5, 3),
    ],
    ids=repr,
)
def test_string_array_slices_equal_list_slices(tokens: ig.StringArray, window: slice) -> None:
    assert tokens[window] == DECODED_TOKENS[window]


def test_string_array_iteration_equals_tolist_equals_decoded_raw(tokens: ig.StringArray) -> None:
    assert list(tokens) == tokens.tolist() == DECODED_TOKENS
    assert list(tokens.iter_raw()) == RAW_TOKENS
    assert [tokens.raw(i) for i in range(20)] == RAW_TOKENS[:20]
    assert "tok42" in tokens
    assert tokens.index("tok42") == RAW_TOKENS.index(b"tok42")


# -- decode policy ------------------------------------------------------------------------


def test_invalid_utf8_token_round_trips_and_differs_from_a_literal_replacement_char(
    tokens: ig.StringArray,
) -> None:
    invalid = TOKENS.index(b"\xff\xfe")
    literal = TOKENS.index("\ufffd")
    assert tokens.raw(invalid) == b"\xff\xfe"
    assert tokens[invalid] == "\udcff\udcfe"
    assert tokens[invalid].encode("utf-8", "surrogateescape") == b"\xff\xfe"
    assert tokens.raw(literal) == b"\xef\xbf\xbd"
    assert tokens[literal] == "\ufffd"
    assert tokens[invalid] != tokens[literal]


BYTE_STRINGS = {
    "lone-continuation": b"\x80",
    "truncated-4-byte": b"\xf0\x9f\x98",
    "overlong-slash": b"\xc0\xaf",
    "overlong-3-byte": b"\xe0\x80\xaf",
    "encoded-surrogate": b"\xed\xa0\x80",
    "above-max-code-point": b"\xf4\x90\x80\x80",
    "five-byte-lead": b"\xf8\x88\x80\x80\x80",
    "bad-then-good": b"\xc3(\xc3\xa9",
    "nul": b"a\x00b",
    "max-code-point": b"\xf4\x8f\xbf\xbf",
    "emoji": "😀".encode(),
    "replacement-char": "\ufffd".encode(),
}


@pytest.mark.parametrize("raw", list(BYTE_STRINGS.values()), ids=list(BYTE_STRINGS))
def test_strings_decode_like_python_surrogateescape(tmp_path: Path, raw: bytes) -> None:
    path = write_gguf(
        tmp_path / "decode.gguf",
        [
            ("test.scalar", raw, VT.STRING, None),
            ("test.array", [b"x", raw, b"y"], VT.ARRAY, VT.STRING),
        ],
    )
    expected = raw.decode("utf-8", "surrogateescape")
    with ig.open(path) as model:
        assert model.metadata["test.scalar"] == expected
        array = model.metadata["test.array"]
        assert array[1] == expected
        assert array.raw(1) == raw
        assert array.tolist() == ["x", expected, "y"]
    assert "surrogateescape" in ig.decode_policy


# -- summary ------------------------------------------------------------------------------

N_LAYERS = 6


def gemma_like(path: Path, head_count_kv: int | list[int]) -> Path:
    """A small file shaped like gemma-3: architecture keys, a vocabulary and mixed types."""
    kv_type = (VT.ARRAY, VT.INT32) if isinstance(head_count_kv, list) else (VT.UINT32, None)
    tensors: list[tuple[str, np.ndarray, QT | None]] = [
        ("output_norm.weight", np.ones(64, dtype=np.float32), None),
        ("token_embd.weight", quantized(QT.Q8_0, (300, 64)), QT.Q8_0),
    ]
    for layer in range(N_LAYERS):
        tensors += [
            (f"blk.{layer}.attn_q.weight", quantized(QT.Q4_K, (4, 256)), QT.Q4_K),
            (f"blk.{layer}.ffn_down.weight", quantized(QT.Q5_0, (16, 64)), QT.Q5_0),
            (f"blk.{layer}.attn_norm.weight", np.ones(64, dtype=np.float32), None),
        ]
    return write_gguf(
        path,
        [
            ("general.name", "Gemma Like", VT.STRING, None),
            ("general.size_label", "1M", VT.STRING, None),
            ("general.file_type", 15, VT.UINT32, None),
            ("gemma3.context_length", 32768, VT.UINT32, None),
            ("gemma3.block_count", N_LAYERS, VT.UINT32, None),
            ("gemma3.embedding_length", 640, VT.UINT32, None),
            ("gemma3.feed_forward_length", 2048, VT.UINT32, None),
            ("gemma3.attention.head_count", 4, VT.UINT32, None),
            ("gemma3.attention.head_count_kv", head_count_kv, *kv_type),
            ("gemma3.attention.sliding_window", 512, VT.UINT32, None),
            ("gemma3.expert_count", 8, VT.UINT32, None),
            ("gemma3.expert_used_count", 2, VT.UINT64, None),
            ("tokenizer.ggml.model", "llama", VT.STRING, None),
            ("tokenizer.ggml.tokens", [f"t{i}" for i in range(300)], VT.ARRAY, VT.STRING),
        ],
        tensors,
        arch="gemma3",
    )


@pytest.mark.parametrize(
    ("head_count_kv", "expected"),
    [(1, 1), ([2, 2, 1, 2, 2, 1], (2, 2, 1, 2, 2, 1))],
    ids=["scalar", "per-layer-array"],
)
def test_summary_of_gemma_like_file(
    tmp_path: Path, head_count_kv: int | list[int], expected: int | tuple[int, ...]
) -> None:
    with ig.open(gemma_like(tmp_path / "gemma.gguf", head_count_kv)) as model:
        summary = model.summary()
        tensors = model.tensors
        data_offset = model.data_offset
    assert summary.architecture == "gemma3"
    assert summary.name == "Gemma Like"
    assert summary.size_label == "1M"
    assert (summary.file_type, summary.quantization) == (15, "Q4_K_M")
    assert summary.context_length == 32768
    assert summary.block_count == N_LAYERS
    assert summary.embedding_length == 640
    assert summary.feed_forward_length == 2048
    assert summary.head_count == 4
    assert summary.head_count_kv == expected
    assert summary.key_length == summary.value_length == 640 // 4
    assert summary.sliding_window == 512
    assert summary.vocab_size == 300
    assert (summary.expert_count, summary.expert_used_count) == (8, 2)
    assert summary.tokenizer_model == "llama"
    assert (summary.version, summary.endianness, summary.alignment) == (3, "little", 32)

    q8_0 = 300 * 64 // 32 * 34
    q4_k = N_LAYERS * 4 * 256 // 256 * 144
    q5_0 = N_LAYERS * 16 * 64 // 32 * 22
    f32 = (1 + N_LAYERS) * 64 * 4
    assert summary.bytes_by_type == {"Q8_0": q8_0, "Q5_0": q5_0, "Q4_K": q4_k, "F32": f32}
    assert list(summary.bytes_by_type) == ["Q8_0", "Q5_0", "Q4_K", "F32"]  # largest first
    assert summary.dominant_type == "Q8_0"  # while the label says Q4_K_M
    assert math.isclose(sum(summary.type_fractions().values()), 1.0)
    n_parameters = 300 * 64 + 64 + N_LAYERS * (4 * 256 + 16 * 64 + 64)
    assert summary.n_parameters == sum(t.n_elements for t in tensors) == n_parameters
    assert summary.n_tensors == len(tensors) == 2 + 3 * N_LAYERS
    assert summary.header_size == data_offset
    assert summary.data_size == sum(-(-t.nbytes // 32) * 32 for t in tensors if t.nbytes)
    assert summary.file_size == data_offset + summary.data_size
    assert summary.split is None


def test_summary_to_dict_is_json_data_with_tuples_as_lists(tmp_path: Path) -> None:
    per_layer = [2, 2, 1, 2, 2, 1]
    with ig.open(gemma_like(tmp_path / "gemma.gguf", per_layer)) as model:
        as_dict = model.summary().to_dict()
    assert as_dict["dominant_type"] == "Q8_0"
    assert as_dict["bytes_by_type"]["F32"] == (1 + N_LAYERS) * 64 * 4
    assert as_dict["head_count_kv"] == per_layer
    assert json.loads(json.dumps(as_dict)) == as_dict


def test_summary_key_length_given_in_the_file_wins_over_the_default(tmp_path: Path) -> None:
    path = write_gguf(
        tmp_path / "keys.gguf",
        [
            ("llama.embedding_length", 640, VT.UINT32, None),
            ("llama.attention.head_count", 4, VT.UINT32, None),
            ("llama.attention.key_length", 256, VT.UINT32, None),
        ],
    )
    with ig.open(path) as model:
        summary = model.summary()
    assert (summary.key_length, summary.value_length) == (256, 160)
    assert summary.bytes_by_type == {}
    assert summary.n_parameters == 0
    assert summary.dominant_type is None


# -- split models -------------------------------------------------------------------------


def write_split(folder: Path, n_tensors: int = 5, per_shard: int = 2) -> list[Path]:
    tensors = [(f"t{i}", np.full((i + 1, 8), i, dtype=np.float32), None) for i in range(n_tensors)]
    write_gguf(folder / "model.gguf", tensors=tensors, split_max_tensors=per_shard)
    total = -(-n_tensors // per_shard)
    return [folder / ig.shard_name("model", shard, total) for shard in range(1, total + 1)]


@pytest.mark.parametrize("which", [0, 1, 2], ids=["first", "second", "last"])
def test_opening_any_shard_with_all_shards_merges_the_model(tmp_path: Path, which: int) -> None:
    paths = write_split(tmp_path)
    with ig.open(paths[which]) as model:
        assert [tensor.name for tensor in model.tensors] == [f"t{i}" for i in range(5)]
        assert [tensor.shard for tensor in model.tensors] == [0, 0, 1, 1, 2]
        assert [shard.path for shard in model.shards] == paths
        assert model.path == paths[0]
        assert model.summary().split == ig.SplitInfo(3, 5, tuple(str(p) for p in paths))


def test_opening_a_shard_alone_reads_only_that_shard(tmp_path: Path) -> None:
    paths = write_split(tmp_path)
    with ig.open(paths[1], all_shards=False) as model:
        assert [tensor.name for tensor in model.tensors] == ["t2", "t3"]
        assert [tensor.shard for tensor in model.tensors] == [0, 0]
        assert len(model.shards) == 1
        assert model.file_size == paths[1].stat().st_size
        assert model.metadata["split.no"] == 1


def test_missing_shard_raises_gguf_error_naming_the_file(tmp_path: Path) -> None:
    paths = write_split(tmp_path)
    paths[2].unlink()
    with pytest.raises(iris_models.GGUFError, match=paths[2].name) as raised:
        ig.open(paths[0])
    assert raised.value.path == str(paths[2])
    with ig.open(paths[0], all_shards=False) as alone:
        assert len(alone.tensors) == 2


def test_split_file_not_named_like_a_shard_raises_gguf_error(tmp_path: Path) -> None:
    paths = write_split(tmp_path)
    renamed = paths[0].rename(tmp_path / "renamed.gguf")
    with pytest.raises(iris_models.GGUFError, match="all_shards=False"):
        ig.open(renamed)


# -- parsing buffers ----------------------------------------------------------------------


def snapshot(model: ig.GGUFFile) -> dict[str, Any]:
    """Everything a GGUFFile reports except where it came from, as comparable values."""

    def plain(value: Any) -> Any:
        if isinstance(value, ig.StringArray):
            return ("strings", list(value.iter_raw()))
        if isinstance(value, np.ndarray):
            return ("array", value.dtype.str, value.tobytes())
        if isinstance(value, tuple):
            return tuple(plain(item) for item in value)
        if isinstance(value, float) and math.isnan(value):
            return "nan"
        return (type(value).__name__, value)

    fields = [
        (f.key, f.type, f.element_type, f.count, f.offset, f.nbytes, plain(f.value))
        for f in model.fields.values()
    ]
    shards = [
        (s.version, s.endianness, s.alignment, s.data_offset, s.data_size, s.n_tensors)
        for s in model.shards
    ]
    return {
        "header": (model.version, model.endianness, model.alignment, model.data_offset),
        "fields": fields,
        "tensors": model.tensors,
        "shards": shards,
        "warnings": model.warnings,
    }


def test_parse_of_a_whole_file_equals_open(small_model: Path) -> None:
    data = small_model.read_bytes()
    with ig.open(small_model) as opened:
        expected = snapshot(opened)
        assert opened.file_size == len(data)
    parsed = ig.parse(data)
    assert snapshot(parsed) == expected
    assert parsed.path is None
    assert parsed.file_size is None
    sized = ig.parse(data, file_size=len(data))
    assert snapshot(sized) == expected
    assert sized.file_size == len(data)


def test_parse_accepts_bytearray_and_memoryview(small_model: Path) -> None:
    data = small_model.read_bytes()
    expected = snapshot(ig.parse(data))
    padded = b"junk" + data
    for buffer in (bytearray(data), memoryview(data), memoryview(padded)[4:]):
        assert snapshot(ig.parse(buffer)) == expected
    assert ig.parse(memoryview(bytearray(data))).metadata["test.text"] == "bonjour"


def test_parse_uses_the_buffer_in_place_and_keeps_it_exported(small_model: Path) -> None:
    buffer = bytearray(small_model.read_bytes())
    model = ig.parse(buffer)
    with pytest.raises(BufferError):
        buffer.append(0)
    model.close()
    del model
    gc.collect()
    buffer.append(0)  # released with the last reference


def test_parse_error_names_the_buffer() -> None:
    with pytest.raises(iris_models.GGUFError, match=r"remote\.gguf"):
        ig.parse(b"GGML" + bytes(60), name="remote.gguf")


@pytest.fixture(scope="module")
def retry_model(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = write_gguf(
        tmp_path_factory.mktemp("retry") / "retry.gguf",
        [
            ("tokenizer.ggml.tokens", [f"t{i}" * (i % 5) for i in range(200)], VT.ARRAY, VT.STRING),
            ("tokenizer.ggml.scores", [0.5] * 200, VT.ARRAY, VT.FLOAT32),
            ("test.nested", [[1, 2], [3]], VT.ARRAY, None),
            ("test.text", "x" * 300, VT.STRING, None),
        ],
        [(f"t{i}", np.zeros((2, 32), dtype=np.float16), None) for i in range(20)],
    )
    return path.read_bytes()


def parse_with_retries(
    data: bytes, start: int, file_size: int | None
) -> tuple[ig.GGUFFile, list[int]]:
    """Parses growing prefixes of ``data`` as a remote reader would, each time fetching what
    the last GGUFNeedMoreDataError asked for; returns the result and the sizes tried."""
    sizes = [start]
    while len(sizes) <= len(data):
        try:
            return ig.parse(data[: sizes[-1]], file_size=file_size), sizes
        except ig.GGUFNeedMoreDataError as error:
            sizes.append(error.bytes_needed)
    pytest.fail(f"no progress after {len(sizes)} retries: {sizes[-5:]}")


@pytest.mark.parametrize("known_size", [False, True], ids=["size-unknown", "size-known"])
@pytest.mark.parametrize("start", [0, 1, 4, 23, 24, 100, 1000, 2000, 3000])
def test_retrying_with_bytes_needed_converges_to_the_full_parse(
    retry_model: bytes, start: int, known_size: bool
) -> None:
    file_size = len(retry_model) if known_size else None
    expected = snapshot(ig.parse(retry_model, file_size=file_size))
    header_end = expected["header"][3]
    assert start < header_end
    model, sizes = parse_with_retries(retry_model, start, file_size)
    assert len(sizes) > 1
    assert sizes == sorted(set(sizes))  # every retry asks for more
    assert sizes[-1] <= header_end  # and never for more than the header
    assert snapshot(model) == expected
    assert model.file_size == file_size


def test_need_more_data_error_is_a_gguf_error_and_a_value_error(retry_model: bytes) -> None:
    with pytest.raises(ValueError, match="retry with at least") as raised:
        ig.parse(retry_model[:10])
    assert isinstance(raised.value, iris_models.GGUFError)
    assert isinstance(raised.value, ig.GGUFNeedMoreDataError)
    assert raised.value.bytes_needed > 10


def test_tensor_numpy_shape_is_the_ggml_shape_reversed(small_model: Path) -> None:
    with ig.open(small_model) as model:
        by_name = {tensor.name: tensor for tensor in model.tensors}
    attn = by_name["blk.0.attn_q.weight"]
    assert attn.shape == (256, 3, 2)
    assert attn.numpy_shape == (2, 3, 256)
    assert by_name["token_embd.weight"].numpy_shape == (4, 64)
    assert by_name["output_norm.weight"].numpy_shape == by_name["output_norm.weight"].shape


def test_open_of_a_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    missing = tmp_path / "absent.gguf"
    with pytest.raises(FileNotFoundError) as raised:
        ig.open(missing)
    assert raised.value.filename == str(missing)
