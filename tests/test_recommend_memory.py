"""The memory estimate (recommend/_memory.py) and ModelShape: the worked gemma-3-270m example
of shared/reference/gguf.md section 2.3, shapes read from small GGUF files written with gguf-py,
the catalog and dict round trips, and properties of the estimate."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.gguf_py_files import VT, make_gguf, write_gguf

import iris_models.gguf as ig
from iris_models.catalog import load_catalog
from iris_models.device import load_profile
from iris_models.recommend import estimate_memory, estimate_speed, kv_cache_bytes
from iris_models.shape import ModelShape

MiB = 1 << 20
GEMMA_ID = "gemma-3-270m-q4_k_m"

# The reference's worked example: 18 layers, n_embd 640, 4 heads, 1 KV head,
# head_k = head_v = 256, sliding window 512, vocabulary 262,144; llama.cpp's defaults of one
# sequence, a 512-token micro-batch and an F16 cache padded to 256 cells.
LAYERS, FULL_LAYERS = 18, 3  # gemma3: every sixth layer attends to the whole context
SWA_LAYERS = LAYERS - FULL_LAYERS
N_EMBD, N_VOCAB, N_UBATCH = 640, 262_144, 512
KV_BYTES_PER_CELL = (256 + 256) * 2 * 1  # (head_k + head_v) * F16 * one KV head = 1 KiB
SWA_CELLS = 512 * 1 + N_UBATCH  # window * n_seq + n_ubatch, already a multiple of 256
WEIGHTS_BYTES = 246_587_904
HEADER_BYTES = 6_525_120
VOCAB_BYTES_PER_TOKEN = (4 + 4) + (32 + 24 + 32)  # type + score; id->token and token->id
BOOTSTRAP_BYTES = 5 * MiB


@pytest.fixture(scope="module")
def gemma() -> ModelShape:
    shape = load_catalog(environment=False).get(GEMMA_ID).shape
    assert shape is not None
    return shape


def _catalog_block(model_id: str) -> dict[str, Any]:
    text = (resources.files("iris_models.catalog") / "models.json").read_text(encoding="utf-8")
    entries = [entry for group in json.loads(text)["models"].values() for entry in group]
    return next(entry["gguf"] for entry in entries if entry["id"] == model_id)


# -- the reference's worked example ------------------------------------------------------------


def test_gemma_weights_and_header_are_the_references(gemma: ModelShape) -> None:
    estimate = estimate_memory(gemma, 4096)
    assert estimate.weights_bytes == WEIGHTS_BYTES
    assert gemma.header_bytes == HEADER_BYTES
    assert estimate.overhead_bytes == BOOTSTRAP_BYTES + HEADER_BYTES + N_VOCAB * (
        VOCAB_BYTES_PER_TOKEN
    )


def test_gemma_sliding_window_layers_are_llama_cpps(gemma: ModelShape) -> None:
    # llama.cpp's gemma3 rule: layer il is SWA when il % 6 < 5, so 5, 11 and 17 are global.
    assert [layer for layer, swa in enumerate(gemma.swa_layers) if not swa] == [5, 11, 17]
    assert gemma.swa_layer_count == SWA_LAYERS


@pytest.mark.parametrize(("context", "expected_mib"), [(2048, 21.0), (8192, 39.0), (32768, 111.0)])
def test_gemma_kv_cache_follows_the_iswa_rule(
    gemma: ModelShape, context: int, expected_mib: float
) -> None:
    by_rule = (SWA_LAYERS * SWA_CELLS + FULL_LAYERS * context) * KV_BYTES_PER_CELL
    assert by_rule == expected_mib * MiB
    assert kv_cache_bytes(gemma, context) == by_rule
    assert estimate_memory(gemma, context).kv_cache_bytes == by_rule


@pytest.mark.parametrize(("context", "expected_mib"), [(2048, 36), (8192, 144), (32768, 576)])
def test_gemma_kv_cache_with_every_layer_full(
    gemma: ModelShape, context: int, expected_mib: int
) -> None:
    no_window = dataclasses.replace(gemma, sliding_window=None)
    assert LAYERS * context * KV_BYTES_PER_CELL == expected_mib * MiB
    assert kv_cache_bytes(no_window, context) == expected_mib * MiB


@pytest.mark.parametrize("context", [2048, 8192, 32768])
def test_gemma_logits_term_is_the_references_513_mib(gemma: ModelShape, context: int) -> None:
    logits = (N_EMBD + N_VOCAB) * N_UBATCH * 4
    assert logits == 513.25 * MiB
    estimate = estimate_memory(gemma, context)
    assert estimate.output_bytes == logits
    # The output layer is the largest graph buffer, so compute = metadata + inputs + logits.
    tensors = 236
    metadata = 400 * (max(1024, 8 * tensors) + 2 * (tensors + 1 + 3 * LAYERS)) + 4 * MiB
    inputs = 4 * N_UBATCH * (3 + N_EMBD + context)
    assert estimate.compute_bytes == metadata + inputs + logits


def test_gemma_estimate_lists_the_figures_it_used(gemma: ModelShape) -> None:
    estimate = estimate_memory(gemma, 4000)
    assert estimate.inputs == {
        "architecture": "gemma3",
        "layers": LAYERS,
        "sliding_window_layers": SWA_LAYERS,
        "sliding_window": 512,
        "n_embd": N_EMBD,
        "n_head": 4,
        "n_head_kv": 1,
        "head_dim_k": 256,
        "head_dim_v": 256,
        "n_vocab": N_VOCAB,
        "n_ctx_cells": 4096,  # 4000 padded to 256
        "n_ubatch": N_UBATCH,
        "kv_type": "f16",
    }
    assert estimate.to_dict()["inputs"] == estimate.inputs
    assert estimate_memory(gemma, 4000, n_ubatch=256).inputs["n_ubatch"] == 256


def test_catalog_ram_figures_are_the_estimates_they_claim_to_be(gemma: ModelShape) -> None:
    # The entry's notes: minRAM at 4,096 tokens of context, recommendedRAM at 32,768.
    requirements = load_catalog(environment=False).get(GEMMA_ID).requirements
    assert requirements.min_ram_bytes == estimate_memory(gemma, 4096).total_bytes
    assert requirements.recommended_ram_bytes == estimate_memory(gemma, 32768).total_bytes


@pytest.mark.real_model
def test_real_gemma_shape_equals_the_catalog_block(real_gemma_path: Path, gemma: ModelShape):
    with ig.open(real_gemma_path) as model:
        shape = ModelShape.from_gguf(model)
    assert shape == gemma
    assert shape.to_catalog() == _catalog_block(GEMMA_ID)


# -- shapes from synthetic GGUF files ---------------------------------------------------------


def _f32(rows: int, columns: int = 8) -> np.ndarray:
    return np.zeros((rows, columns), dtype=np.float32)


def _shape_of(
    path: Path,
    extra: Sequence[Any] = (),
    tensors: Sequence[Any] | None = None,
    *,
    arch: str = "llama",
    layers: int = 4,
) -> ModelShape:
    """The shape of a small model file: `layers` blocks, 16 wide, 4 heads, plus `extra` keys."""
    kvs = [
        (f"{arch}.block_count", layers, VT.UINT32, None),
        (f"{arch}.embedding_length", 16, VT.UINT32, None),
        (f"{arch}.attention.head_count", 4, VT.UINT32, None),
        *extra,
    ]
    if tensors is None:
        tensors = [("token_embd.weight", _f32(6), None), ("blk.0.attn_q.weight", _f32(2), None)]
    write_gguf(path, kvs, tensors, arch=arch)
    with ig.open(path) as model:
        return ModelShape.from_gguf(model)


def test_per_layer_kv_head_counts_are_read_and_sized_per_layer(tmp_path: Path) -> None:
    heads = [1, 2, 0, 4]
    shape = _shape_of(
        tmp_path / "m.gguf", [("llama.attention.head_count_kv", heads, VT.ARRAY, VT.INT32)]
    )
    assert shape.head_count_kv == (1, 2, 0, 4)
    assert (shape.key_length, shape.value_length) == (16 // 4, 16 // 4)
    assert kv_cache_bytes(shape, 1000) == 1024 * sum(heads) * (4 + 4) * 2
    assert shape.to_catalog()["headCountKv"] == heads


def test_one_kv_head_count_applies_to_every_layer(tmp_path: Path) -> None:
    shape = _shape_of(tmp_path / "m.gguf", [("llama.attention.head_count_kv", 2, VT.UINT32, None)])
    assert shape.head_count_kv == (2, 2, 2, 2)
    assert shape.to_catalog()["headCountKv"] == 2


def test_kv_heads_default_to_the_head_count(tmp_path: Path) -> None:
    assert _shape_of(tmp_path / "m.gguf").head_count_kv == (4, 4, 4, 4)


WINDOW = [("llama.attention.sliding_window", 8, VT.UINT32, None)]


def test_an_integer_sliding_window_pattern_is_a_period(tmp_path: Path) -> None:
    pattern = [("llama.attention.sliding_window_pattern", 3, VT.UINT32, None)]
    shape = _shape_of(tmp_path / "m.gguf", WINDOW + pattern, layers=6)
    # llama.cpp's set_swa_pattern(3): il % 3 < 2 is sliding-window.
    assert shape.swa_layers == (True, True, False, True, True, False)
    assert shape.sliding_window == 8


def test_a_bool_array_sliding_window_pattern_is_taken_as_is(tmp_path: Path) -> None:
    flags = [True, False, False, True]
    pattern = [("llama.attention.sliding_window_pattern", flags, VT.ARRAY, VT.BOOL)]
    shape = _shape_of(tmp_path / "m.gguf", WINDOW + pattern)
    assert shape.swa_layers == tuple(flags)
    # 2 windowed layers of pad(8 + 512) = 768 cells, 2 full ones of 4096.
    per_cell = 4 * (4 + 4) * 2
    assert kv_cache_bytes(shape, 4096) == (2 * 768 + 2 * 4096) * per_cell
    assert shape.to_catalog()["slidingWindowLayers"] == flags


def test_an_explicit_pattern_overrides_the_architectures_period(tmp_path: Path) -> None:
    pattern = [("gemma3.attention.sliding_window_pattern", 2, VT.UINT32, None)]
    window = [("gemma3.attention.sliding_window", 8, VT.UINT32, None)]
    shape = _shape_of(tmp_path / "m.gguf", window + pattern, arch="gemma3", layers=6)
    assert shape.swa_layers == (True, False) * 3


def test_without_a_pattern_the_architectures_period_applies(tmp_path: Path) -> None:
    window = [("gemma3.attention.sliding_window", 8, VT.UINT32, None)]
    gemma3 = _shape_of(tmp_path / "g.gguf", window, arch="gemma3", layers=7)
    assert gemma3.swa_layers == (True,) * 5 + (False, True)
    # An architecture with no known period counts every layer as full (more memory, not less).
    assert _shape_of(tmp_path / "l.gguf", WINDOW).swa_layers == (False,) * 4


def test_a_pattern_without_a_window_makes_no_layer_sliding(tmp_path: Path) -> None:
    pattern = [("llama.attention.sliding_window_pattern", [True] * 4, VT.ARRAY, VT.BOOL)]
    shape = _shape_of(tmp_path / "m.gguf", pattern)
    assert shape.sliding_window is None
    assert shape.swa_layer_count == 0
    assert kv_cache_bytes(shape, 2048) == 4 * 2048 * 4 * (4 + 4) * 2


def _bytes_per_token(shape: ModelShape) -> int:
    speed = estimate_speed(shape, load_profile("raspberry-pi-5"))
    assert speed is not None
    return speed.inputs["bytes_per_token"]


def test_tied_output_reads_the_embedding_table_per_token(tmp_path: Path) -> None:
    embedding, block = _f32(6), _f32(2)
    tied = _shape_of(
        tmp_path / "t.gguf",
        tensors=[("token_embd.weight", embedding, None), ("blk.0.attn_q.weight", block, None)],
    )
    assert tied.tied_output
    assert tied.token_embedding_bytes == embedding.nbytes
    assert tied.weights_bytes == embedding.nbytes + block.nbytes
    assert _bytes_per_token(tied) == embedding.nbytes + block.nbytes

    output = _f32(6)
    untied = _shape_of(
        tmp_path / "u.gguf",
        tensors=[
            ("token_embd.weight", embedding, None),
            ("blk.0.attn_q.weight", block, None),
            ("output.weight", output, None),
        ],
    )
    assert not untied.tied_output
    # The embedding is a row lookup; the output matrix is read whole.
    assert _bytes_per_token(untied) == block.nbytes + output.nbytes


def test_moe_experts_a_token_skips_are_not_read(tmp_path: Path) -> None:
    experts = [(f"blk.0.ffn_{part}_exps.weight", _f32(8 * 4), None) for part in ("up", "down")]
    shared = [("blk.0.ffn_up_shexp.weight", _f32(4), None), ("output.weight", _f32(4), None)]
    counts = [
        ("llama.expert_count", 8, VT.UINT32, None),
        ("llama.expert_used_count", 2, VT.UINT32, None),
    ]
    shape = _shape_of(tmp_path / "moe.gguf", counts, experts + shared)
    expert_bytes = 2 * 8 * 4 * 8 * 4
    assert shape.expert_bytes == expert_bytes
    assert (shape.expert_count, shape.expert_used_count) == (8, 2)
    dense = shape.weights_bytes - expert_bytes
    assert _bytes_per_token(shape) == dense + expert_bytes * 2 // 8

    unknown_use = _shape_of(tmp_path / "moe2.gguf", counts[:1], experts + shared)
    assert _bytes_per_token(unknown_use) == unknown_use.weights_bytes


def test_non_causal_models_keep_no_kv_cache(tmp_path: Path) -> None:
    extra = [
        ("bert.attention.causal", False, VT.BOOL, None),
        ("bert.vocab_size", 100, VT.UINT32, None),
    ]
    shape = _shape_of(tmp_path / "bert.gguf", extra, arch="bert")
    assert not shape.causal
    assert kv_cache_bytes(shape, 8192) == 0
    estimate = estimate_memory(shape, 8192)
    assert estimate.kv_cache_bytes == 0
    assert estimate.output_bytes == 4 * 512 * 16  # the embeddings only: no logits


def test_a_vocabulary_only_file_raises_value_error(tmp_path: Path) -> None:
    path = write_gguf(
        tmp_path / "vocab.gguf",
        [
            ("llama.block_count", 4, VT.UINT32, None),
            ("llama.embedding_length", 16, VT.UINT32, None),
            ("tokenizer.ggml.model", "llama", VT.STRING, None),
            ("tokenizer.ggml.tokens", ["a", "b"], VT.ARRAY, VT.STRING),
        ],
        tensor_data=False,
    )
    with ig.open(path) as model, pytest.raises(ValueError, match="no layers or no tensors"):
        ModelShape.from_gguf(model)


def test_a_file_without_layers_raises_value_error(tmp_path: Path) -> None:
    path = make_gguf(tmp_path / "plain.gguf", "plain")
    with ig.open(path) as model, pytest.raises(ValueError, match="no layers"):
        ModelShape.from_gguf(model)


def test_tokenizer_facts_are_read(tmp_path: Path) -> None:
    extra = [
        ("tokenizer.ggml.model", "gpt2", VT.STRING, None),
        ("tokenizer.ggml.tokens", ["a", "b", "ab"], VT.ARRAY, VT.STRING),
        ("tokenizer.ggml.merges", ["a b"], VT.ARRAY, VT.STRING),
        ("llama.context_length", 4096, VT.UINT32, None),
    ]
    shape = _shape_of(tmp_path / "m.gguf", extra)
    assert (shape.tokenizer_model, shape.vocab_size, shape.merges_count) == ("gpt2", 3, 1)
    assert shape.context_length == 4096
    overhead = estimate_memory(shape, 512).overhead_bytes
    assert overhead == BOOTSTRAP_BYTES + shape.header_bytes + 3 * VOCAB_BYTES_PER_TOKEN + 104


# -- round trips ------------------------------------------------------------------------------


@st.composite
def shapes(draw: st.DrawFn) -> ModelShape:
    """Shapes as from_gguf makes them: one SWA flag per layer, all off without a window."""
    layers = draw(st.integers(1, 48))
    window = draw(st.none() | st.integers(1, 8192))
    flags = st.lists(st.booleans(), min_size=layers, max_size=layers)
    swa = tuple(draw(flags)) if window else (False,) * layers
    kv = draw(
        st.lists(st.integers(0, 16), min_size=layers, max_size=layers)
        | st.integers(0, 16).map(lambda heads: [heads] * layers)
    )
    experts = draw(st.integers(0, 64))
    return ModelShape(
        architecture=draw(st.sampled_from(["llama", "gemma3", "qwen2", "bert"])),
        block_count=layers,
        embedding_length=draw(st.integers(1, 8192)),
        head_count=draw(st.integers(0, 64)),
        head_count_kv=tuple(kv),
        key_length=draw(st.integers(1, 512)),
        value_length=draw(st.integers(1, 512)),
        weights_bytes=draw(st.integers(1, 1 << 40)),
        feed_forward_length=draw(st.integers(0, 1 << 16)),
        sliding_window=window,
        swa_layers=swa,
        context_length=draw(st.none() | st.integers(1, 1 << 20)),
        vocab_size=draw(st.none() | st.integers(1, 1 << 18)),
        token_embedding_bytes=draw(st.integers(0, 1 << 32)),
        expert_bytes=draw(st.integers(0, 1 << 32)) if experts else 0,
        tied_output=draw(st.booleans()),
        header_bytes=draw(st.integers(0, 1 << 26)),
        tensor_count=draw(st.integers(0, 4096)),
        parameter_count=draw(st.integers(0, 1 << 40)),
        expert_count=experts,
        expert_used_count=draw(st.integers(0, experts)),
        tokenizer_model=draw(st.none() | st.sampled_from(["llama", "gpt2", "bert"])),
        merges_count=draw(st.integers(0, 1 << 18)),
        causal=draw(st.booleans()),
    )


_SCHEMA = json.loads(
    (resources.files("iris_models.catalog") / "models.schema.json").read_text(encoding="utf-8")
)
_GGUF_BLOCK_SCHEMA = {**_SCHEMA["definitions"]["gguf"], "definitions": _SCHEMA["definitions"]}


@given(shapes())
def test_catalog_block_round_trips_and_is_schema_valid(shape: ModelShape) -> None:
    block = shape.to_catalog()
    jsonschema.validate(block, _GGUF_BLOCK_SCHEMA)
    assert ModelShape.from_catalog(json.loads(json.dumps(block))) == shape


@given(shapes())
def test_dict_round_trips_through_json(shape: ModelShape) -> None:
    assert ModelShape.from_dict(json.loads(json.dumps(shape.to_dict()))) == shape


def test_the_gemma_catalog_block_round_trips(gemma: ModelShape) -> None:
    assert gemma.to_catalog() == _catalog_block(GEMMA_ID)
    assert ModelShape.from_dict(gemma.to_dict()) == gemma


def test_mismatched_per_layer_lists_are_rejected(gemma: ModelShape) -> None:
    with pytest.raises(ValueError, match="head_count_kv has 2 entries for 18 layers"):
        dataclasses.replace(gemma, head_count_kv=(1, 1))
    with pytest.raises(ValueError, match="swa_layers has 1 entries for 18 layers"):
        dataclasses.replace(gemma, swa_layers=(True,))


def test_a_window_without_layer_flags_counts_every_layer_full() -> None:
    shape = ModelShape(
        architecture="llama",
        block_count=2,
        embedding_length=8,
        head_count=2,
        head_count_kv=(1, 1),
        key_length=4,
        value_length=4,
        weights_bytes=100,
        sliding_window=16,
    )
    assert shape.swa_layer_count == 0
    assert kv_cache_bytes(shape, 512) == 2 * 512 * (4 + 4) * 2


# -- properties of the estimate ---------------------------------------------------------------


@given(shapes(), st.integers(1, 1 << 17), st.integers(1, 1 << 17))
def test_the_estimate_grows_with_the_context(shape: ModelShape, first: int, second: int) -> None:
    shorter, longer = sorted((first, second))
    small, large = estimate_memory(shape, shorter), estimate_memory(shape, longer)
    assert small.total_bytes <= large.total_bytes
    assert small.kv_cache_bytes <= large.kv_cache_bytes
    assert small.compute_bytes <= large.compute_bytes


@given(shapes(), st.integers(1, 1 << 17))
def test_sliding_window_kv_never_exceeds_all_full_kv(shape: ModelShape, context: int) -> None:
    all_full = dataclasses.replace(shape, sliding_window=None)
    assert kv_cache_bytes(shape, context) <= kv_cache_bytes(all_full, context)
    if context <= (shape.sliding_window or 0):
        assert kv_cache_bytes(shape, context) == kv_cache_bytes(all_full, context)


@given(shapes(), st.integers(1, 1 << 17))
def test_total_is_the_sum_of_its_parts(shape: ModelShape, context: int) -> None:
    estimate = estimate_memory(shape, context)
    parts = (
        estimate.weights_bytes
        + estimate.kv_cache_bytes
        + estimate.compute_bytes
        + estimate.overhead_bytes
    )
    assert estimate.total_bytes == parts
    assert estimate.to_dict()["total_bytes"] == parts
    assert estimate.output_bytes <= estimate.compute_bytes
    assert estimate.weights_bytes == shape.weights_bytes


@given(shapes(), st.integers(1, 1 << 17))
def test_the_context_is_counted_in_cells_of_256(shape: ModelShape, context: int) -> None:
    padded = -(-context // 256) * 256
    assert dataclasses.replace(estimate_memory(shape, context), context_length=padded) == (
        estimate_memory(shape, padded)
    )


def test_a_context_below_one_token_is_refused(gemma: ModelShape) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        estimate_memory(gemma, 0)
