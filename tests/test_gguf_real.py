"""Opt-in checks on the real gemma-3-270m-q4_k_m.gguf: the figures measured in
shared/reference/gguf.md section 5, and a full comparison with gguf-py's GGUFReader."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest

import iris_models.gguf as ig

pytestmark = pytest.mark.real_model

BYTES_BY_TYPE = {
    "Q8_0": 179_824_640,
    "Q5_0": 43_591_680,
    "Q4_K": 13_271_040,
    "Q6_K": 9_676_800,
    "F32": 223_744,
}


@pytest.fixture(scope="module")
def gemma(real_gemma_path: Path) -> Iterator[ig.GGUFFile]:
    with ig.open(real_gemma_path) as model:
        yield model


def test_header_figures(gemma: ig.GGUFFile) -> None:
    assert gemma.version == 3
    assert gemma.endianness == "little"
    assert gemma.alignment == 32
    assert len(gemma.fields) == 33
    assert len(gemma.tensors) == 236
    assert gemma.data_offset == 6_525_120
    assert gemma.file_size == 253_113_024
    assert gemma.shards[0].data_size == 253_113_024 - 6_525_120
    assert gemma.warnings == ()


def test_summary_figures(gemma: ig.GGUFFile) -> None:
    summary = gemma.summary()
    assert summary.architecture == "gemma3"
    assert summary.name == "Gemma 3 270m"
    assert summary.context_length == 32768
    assert summary.embedding_length == 640
    assert summary.block_count == 18
    assert summary.feed_forward_length == 2048
    assert summary.head_count == 4
    assert summary.head_count_kv == 1
    assert (summary.key_length, summary.value_length) == (256, 256)
    assert summary.sliding_window == 512
    assert summary.vocab_size == 262_144
    assert summary.n_parameters == 268_098_176
    assert summary.n_tensors == 236
    assert summary.header_size == 6_525_120
    assert (summary.file_type, summary.quantization) == (15, "Q4_K_M")
    assert summary.dominant_type == "Q8_0"  # the label says Q4_K_M, the bytes say Q8_0
    assert summary.split is None


def test_bytes_per_type_largest_first(gemma: ig.GGUFFile) -> None:
    bytes_by_type = gemma.summary().bytes_by_type
    assert bytes_by_type == BYTES_BY_TYPE
    assert list(bytes_by_type) == list(BYTES_BY_TYPE)


def test_tensor_type_counts_and_order(gemma: ig.GGUFFile) -> None:
    counts = Counter(tensor.type for tensor in gemma.tensors)
    assert counts == {"F32": 109, "Q5_0": 81, "Q4_K": 27, "Q8_0": 10, "Q6_K": 9}
    assert [tensor.name for tensor in gemma.tensors[:2]] == [
        "output_norm.weight",
        "token_embd.weight",
    ]
    token_embd = gemma.tensors[1]
    assert (token_embd.shape, token_embd.numpy_shape) == ((640, 262_144), (262_144, 640))
    assert "output.weight" not in {tensor.name for tensor in gemma.tensors}  # tied embeddings


def test_tokens_keep_whitespace_and_literal_replacement_chars(gemma: ig.GGUFFile) -> None:
    tokens = gemma.metadata["tokenizer.ggml.tokens"]
    assert len(tokens) == 262_144
    assert tokens[107:110] == ["\n", "\n\n", "\n\n\n"]
    with_replacement = [index for index, token in enumerate(tokens) if "\ufffd" in token]
    assert with_replacement == [38914, 58588, 89854, 196995, 207933, 238479]
    assert tokens[238479] == "\ufffd"
    assert tokens.raw(38914) == "\ufffd\ufffd".encode()
    # every token is valid UTF-8 (a strict decode raises otherwise) and decodes as such
    assert tokens.tolist() == [raw.decode("utf-8") for raw in tokens.iter_raw()]


def test_everything_matches_gguf_py_reader(real_gemma_path: Path, gemma: ig.GGUFFile) -> None:
    reader = gguf.GGUFReader(real_gemma_path)
    assert gemma.data_offset == reader.data_offset
    assert gemma.alignment == reader.alignment
    their_fields = [field for key, field in reader.fields.items() if not key.startswith("GGUF.")]
    assert list(gemma.fields) == [field.name for field in their_fields]
    for theirs in their_fields:
        ours = gemma.fields[theirs.name]
        assert ours.type == theirs.types[0]
        assert_value_matches(ours, theirs)
    assert len(gemma.tensors) == len(reader.tensors)
    for ours, theirs in zip(gemma.tensors, reader.tensors, strict=True):
        assert ours.name == theirs.name
        assert ours.shape == tuple(int(dim) for dim in theirs.shape)
        assert ours.type_id == int(theirs.tensor_type)
        assert ours.offset == theirs.data_offset
        assert ours.nbytes == theirs.n_bytes
        assert ours.n_elements == theirs.n_elements


def assert_value_matches(ours: ig.GGUFField, theirs: Any) -> None:
    """Values as gguf-py decodes them (strict UTF-8) and as raw bytes."""
    if ours.type is not ig.GGUFValueType.ARRAY:
        expected = theirs.contents()
        assert type(ours.value) is type(expected)
        assert ours.value == expected
        return
    assert ours.element_type == theirs.types[1]
    assert ours.count == len(theirs.data)
    elements = [theirs.parts[index] for index in theirs.data]
    if ours.element_type is ig.GGUFValueType.STRING:
        assert list(ours.value.iter_raw()) == [bytes(element) for element in elements]
        assert ours.value.tolist() == theirs.contents()
        return
    assert ours.value.dtype == elements[0].dtype
    assert np.array_equal(ours.value, np.concatenate(elements))
