"""How much memory a model needs to run at a given context length, from its shape.

The estimate follows what llama.cpp allocates on a CPU or unified-memory device with its
defaults (one sequence, a 512-token micro-batch, F16 K/V cache, flash attention, weights
memory-mapped), in the same parts as gpustack/gguf-parser-go:

    total = weights + kv_cache + compute + overhead

    weights   = sum tensor bytes. Mapped, not copied, but they must stay resident to run at
                speed, so they count.
    kv_cache  = sum over layers of cells(layer) * (key_length + value_length) * n_head_kv(layer)
                * 2 B (F16), where
                  cells(full layer) = n_ctx, padded to 256
                  cells(sliding-window layer) = min(n_ctx, pad(window * n_seq + n_ubatch, 256))
                as llama.cpp sizes its sliding-window cache. Non-causal models (embeddings)
                keep no cache.
    compute   = graph metadata + graph inputs + the largest of one attention block, one
                feed-forward block and the output layer, for a micro-batch of
                n_tokens = min(n_ctx, n_ubatch) tokens:
                  metadata  = 400 B * (max(1024, 8 * n_tensors) + 2 * (n_tensors + 1 + 3 *
                              n_layer)) + 4 MiB scheduler
                  inputs    = 4 B * n_tokens * (3 + n_embd + n_kv)   tokens, positions,
                              outputs, embeddings, attention mask
                  attention = 4 B * n_tokens * (n_head * key_length + 2 * n_head_kv *
                              key_length + n_head * value_length + n_embd)
                  ffn       = 4 B * n_tokens * (3 * n_ff + 2 * n_embd)
                  output    = 4 B * n_tokens * (n_embd + n_vocab)   the logits: for a
                              256k-vocabulary model this is the largest buffer of all
    overhead  = 5 MiB load bootstrap + header bytes + n_vocab * 96 B (token scores, types and
                the two lookup tables) + merges * 104 B (BPE, "gpt2", tokenizers)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .._frozen import builder
from ..shape import ModelShape

__all__ = ["DEFAULT_UBATCH", "KV_PADDING", "MemoryEstimate", "estimate_memory", "kv_cache_bytes"]

DEFAULT_UBATCH = 512
KV_PADDING = 256
F16_BYTES = 2
F32_BYTES = 4
MiB = 1 << 20
_BOOTSTRAP_BYTES = 5 * MiB
_SCHEDULER_BYTES = 4 * MiB
_TENSOR_OVERHEAD_BYTES = 368 + 32  # ggml_tensor plus its object header
_VOCAB_BYTES_PER_TOKEN = 4 + 4 + 32 + 24 + 32
_BYTES_PER_MERGE = 48 + 56


def _pad(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


@dataclass(frozen=True)
class MemoryEstimate:
    """The memory a model needs at ``context_length`` tokens, in bytes, by part."""

    context_length: int
    weights_bytes: int
    kv_cache_bytes: int
    compute_bytes: int
    output_bytes: int
    """The output layer's buffer (logits); part of ``compute_bytes`` when it is the largest."""
    overhead_bytes: int
    shape: ModelShape = field(repr=False)
    """The shape the estimate was worked out from."""
    n_ubatch: int = DEFAULT_UBATCH
    """The micro-batch the compute buffers were sized for."""

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_cache_bytes + self.compute_bytes + self.overhead_bytes

    @property
    def inputs(self) -> dict[str, Any]:
        """The shape figures and settings the estimate used, by name, for ``explain`` (made
        when read: a recommendation over a large catalog reads few of them)."""
        shape = self.shape
        return {
            "architecture": shape.architecture,
            "layers": shape.block_count,
            "sliding_window_layers": shape.swa_layer_count,
            "sliding_window": shape.sliding_window,
            "n_embd": shape.embedding_length,
            "n_head": shape.head_count,
            "n_head_kv": _most_kv_heads(shape),
            "head_dim_k": shape.key_length,
            "head_dim_v": shape.value_length,
            "n_vocab": shape.vocab_size or 0,
            "n_ctx_cells": _pad(self.context_length, KV_PADDING),
            "n_ubatch": self.n_ubatch,
            "kv_type": "f16",
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "context_length": self.context_length,
            "total_bytes": self.total_bytes,
            "weights_bytes": self.weights_bytes,
            "kv_cache_bytes": self.kv_cache_bytes,
            "compute_bytes": self.compute_bytes,
            "output_bytes": self.output_bytes,
            "overhead_bytes": self.overhead_bytes,
            "inputs": self.inputs,
        }


_new_memory = builder(MemoryEstimate)


def _most_kv_heads(shape: ModelShape) -> int:
    """The most K/V heads of any layer: the attention buffer is sized for that layer."""
    return max(shape.head_count_kv) if shape.head_count_kv else 0


def kv_cache_bytes(
    shape: ModelShape, context_length: int, *, n_seq: int = 1, n_ubatch: int = DEFAULT_UBATCH
) -> int:
    """The K/V cache at `context_length` tokens, sliding-window layers as llama.cpp counts them."""
    if not shape.causal:
        return 0
    cells = _pad(context_length, KV_PADDING)
    window_cells = cells
    if shape.sliding_window:
        window_cells = min(cells, _pad(shape.sliding_window * n_seq + n_ubatch, KV_PADDING))
    per_head_cell = (shape.key_length + shape.value_length) * F16_BYTES
    # No per-layer flags: every layer counted full, which errs towards more memory.
    full_heads, sliding_heads = shape.kv_heads_full_and_sliding
    return (cells * full_heads + window_cells * sliding_heads) * per_head_cell


def estimate_memory(
    shape: ModelShape, context_length: int, *, n_ubatch: int = DEFAULT_UBATCH, n_seq: int = 1
) -> MemoryEstimate:
    """The memory `shape` needs at `context_length` tokens (see the module's formula)."""
    if context_length < 1:
        message = f"context_length must be at least 1, not {context_length}"
        raise ValueError(message)
    n_ctx = _pad(context_length, KV_PADDING)
    n_tokens = min(n_ctx, n_ubatch)
    n_embd = shape.embedding_length
    n_vocab = shape.vocab_size or 0
    n_head_kv = _most_kv_heads(shape)
    kv = kv_cache_bytes(shape, context_length, n_seq=n_seq, n_ubatch=n_ubatch)

    metadata = (
        _TENSOR_OVERHEAD_BYTES
        * (max(1024, 8 * shape.tensor_count) + 2 * (shape.tensor_count + 1 + 3 * shape.block_count))
        + _SCHEDULER_BYTES
    )
    kv_width = n_ctx if shape.causal else n_tokens
    inputs = F32_BYTES * n_tokens * (3 + n_embd + kv_width)
    attention = (
        F32_BYTES
        * n_tokens
        * (
            shape.head_count * shape.key_length
            + 2 * n_head_kv * shape.key_length
            + shape.head_count * shape.value_length
            + n_embd
        )
    )
    ffn = F32_BYTES * n_tokens * (3 * shape.feed_forward_length + 2 * n_embd)
    output = F32_BYTES * n_tokens * (n_embd + (n_vocab if shape.causal else 0))
    compute = metadata + inputs + max(attention, ffn, output)
    overhead = (
        _BOOTSTRAP_BYTES
        + shape.header_bytes
        + n_vocab * _VOCAB_BYTES_PER_TOKEN
        + (shape.merges_count * _BYTES_PER_MERGE if shape.tokenizer_model == "gpt2" else 0)
    )
    return _new_memory(
        context_length,  # context_length
        shape.weights_bytes,  # weights_bytes
        kv,  # kv_cache_bytes
        compute,  # compute_bytes
        output,  # output_bytes
        overhead,  # overhead_bytes
        shape,  # shape
        n_ubatch,  # n_ubatch
    )
