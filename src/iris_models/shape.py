"""ModelShape: the facts about a model's architecture that decide what it needs to run
(layers, heads, sliding-window layers, vocabulary, weight bytes), read from a GGUF header or
from a catalog entry's ``gguf`` block, and small enough to cache as JSON."""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from ._frozen import builder

if TYPE_CHECKING:
    from .gguf import GGUFFile

__all__ = ["SWA_PATTERNS", "ModelShape"]

# Architectures whose sliding-window layers follow a fixed period when the header does not
# list them (llama.cpp's set_swa_pattern): in each group of `n` layers the last one attends
# to the whole context and the others to the window.
SWA_PATTERNS: Mapping[str, int] = {"gemma2": 2, "gemma3": 6, "cohere2": 4}


@dataclass(frozen=True)
class ModelShape:
    """What the memory and speed estimates need to know about a model.

    Per-layer lists (``head_count_kv``, ``swa_layers``) have one entry per block.
    ``weights_bytes`` is the sum of the tensors' bytes; ``token_embedding_bytes`` the part
    in ``token_embd`` (a row lookup, not read whole per token unless ``tied_output`` makes it
    the output matrix too); ``expert_bytes`` the part in mixture-of-experts tensors, of
    which a token reads ``expert_used_count / expert_count``.
    """

    architecture: str
    block_count: int
    embedding_length: int
    head_count: int
    head_count_kv: tuple[int, ...]
    key_length: int
    value_length: int
    weights_bytes: int
    feed_forward_length: int = 0
    sliding_window: int | None = None
    swa_layers: tuple[bool, ...] = ()
    context_length: int | None = None
    vocab_size: int | None = None
    token_embedding_bytes: int = 0
    expert_bytes: int = 0
    tied_output: bool = False
    header_bytes: int = 0
    tensor_count: int = 0
    parameter_count: int = 0
    expert_count: int = 0
    expert_used_count: int = 0
    tokenizer_model: str | None = None
    merges_count: int = 0
    causal: bool = True

    def __post_init__(self) -> None:
        if len(self.head_count_kv) != self.block_count:
            message = (
                f"head_count_kv has {len(self.head_count_kv)} entries for {self.block_count} layers"
            )
            raise ValueError(message)
        if self.swa_layers and len(self.swa_layers) != self.block_count:
            message = f"swa_layers has {len(self.swa_layers)} entries for {self.block_count} layers"
            raise ValueError(message)

    @property
    def swa_layer_count(self) -> int:
        return sum(self.swa_layers) if self.sliding_window and self.swa_layers else 0

    # Cached: the K/V estimate reads it for every model of a recommendation, and the shape
    # is frozen, so it cannot go stale.
    @cached_property
    def kv_heads_full_and_sliding(self) -> tuple[int, int]:
        """K/V heads summed over the full-attention layers and over the sliding-window ones
        (none without both a window and per-layer flags: every layer then counts full)."""
        if not (self.sliding_window and self.swa_layers):
            return sum(self.head_count_kv), 0
        pairs = zip(self.head_count_kv, self.swa_layers, strict=True)  # __post_init__ checked
        sliding = sum(heads for heads, flag in pairs if flag)
        return sum(self.head_count_kv) - sliding, sliding

    @classmethod
    def from_gguf(cls, model: GGUFFile) -> ModelShape:
        """The shape of an open GGUF file (all shards); raises ValueError when the header
        lacks what an estimate needs (a vocabulary-only file, an unknown layout)."""
        metadata = model.metadata
        architecture = _text(metadata.get("general.architecture"))
        if not architecture:
            message = "the header names no general.architecture"
            raise ValueError(message)

        def key(suffix: str) -> Any:
            return metadata.get(f"{architecture}.{suffix}")

        block_count = _int(key("block_count"))
        embedding_length = _int(key("embedding_length"))
        if not block_count or not embedding_length or not model.tensors:
            message = f"the header of this {architecture} model has no layers or no tensors"
            raise ValueError(message)
        head_counts = _per_layer(key("attention.head_count"), block_count)
        head_count = max(head_counts) if head_counts else 0
        kv_heads = _per_layer(key("attention.head_count_kv"), block_count) or head_counts
        head_size = embedding_length // head_count if head_count else 0
        sliding_window = _int(key("attention.sliding_window"))
        merges = metadata.get("tokenizer.ggml.merges")
        tokens = metadata.get("tokenizer.ggml.tokens")
        vocab_size = _int(key("vocab_size")) or (len(tokens) if tokens is not None else None)
        token_embedding = expert = weights = parameters = 0
        has_output = False
        for tensor in model.tensors:
            size = tensor.nbytes or 0
            weights += size
            parameters += tensor.n_elements
            if tensor.name.startswith("token_embd."):
                token_embedding += size
            elif tensor.name.startswith("output."):
                has_output = True
            if "_exps" in tensor.name:
                expert += size
        feed_forward = _per_layer(key("feed_forward_length"), block_count)
        causal = key("attention.causal")
        return cls(
            architecture=architecture,
            block_count=block_count,
            embedding_length=embedding_length,
            head_count=head_count,
            head_count_kv=tuple(kv_heads) if kv_heads else (0,) * block_count,
            key_length=_int(key("attention.key_length")) or head_size,
            value_length=_int(key("attention.value_length")) or head_size,
            weights_bytes=weights,
            feed_forward_length=max(feed_forward) if feed_forward else 0,
            sliding_window=sliding_window,
            swa_layers=_swa_layers(
                architecture, key("attention.sliding_window_pattern"), sliding_window, block_count
            ),
            context_length=_int(key("context_length")),
            vocab_size=vocab_size,
            token_embedding_bytes=token_embedding,
            expert_bytes=expert,
            tied_output=not has_output,
            header_bytes=sum(shard.data_offset for shard in model.shards),
            tensor_count=len(model.tensors),
            parameter_count=parameters,
            expert_count=_int(key("expert_count")) or 0,
            expert_used_count=_int(key("expert_used_count")) or 0,
            tokenizer_model=_text(metadata.get("tokenizer.ggml.model")),
            merges_count=len(merges) if merges is not None else 0,
            causal=causal if isinstance(causal, bool) else True,
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["head_count_kv"] = list(self.head_count_kv)
        data["swa_layers"] = list(self.swa_layers)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelShape:
        fields = dict(data)
        fields["head_count_kv"] = tuple(fields.get("head_count_kv", ()))
        fields["swa_layers"] = tuple(fields.get("swa_layers", ()))
        return cls(**fields)

    def to_catalog(self) -> dict[str, Any]:
        """The catalog's camelCase ``gguf`` block for this shape."""
        kv = self.head_count_kv
        block: dict[str, Any] = {
            "architecture": self.architecture,
            "blockCount": self.block_count,
            "embeddingLength": self.embedding_length,
            "headCount": self.head_count,
            "headCountKv": kv[0] if len(set(kv)) == 1 else list(kv),
            "keyLength": self.key_length,
            "valueLength": self.value_length,
            "feedForwardLength": self.feed_forward_length,
            "weightsBytes": self.weights_bytes,
            "tokenEmbeddingBytes": self.token_embedding_bytes,
            "tiedOutput": self.tied_output,
            "headerBytes": self.header_bytes,
            "tensorCount": self.tensor_count,
            "parameterCount": self.parameter_count,
            "causal": self.causal,
        }
        optional = {
            "slidingWindow": self.sliding_window,
            "slidingWindowLayers": list(self.swa_layers)
            if self.sliding_window and self.swa_layers
            else None,
            "contextLength": self.context_length,
            "vocabSize": self.vocab_size,
            "expertBytes": self.expert_bytes or None,
            "expertCount": self.expert_count or None,
            "expertUsedCount": self.expert_used_count or None,
            "tokenizerModel": self.tokenizer_model,
            "mergesCount": self.merges_count or None,
        }
        block.update({name: value for name, value in optional.items() if value is not None})
        return block

    @classmethod
    def from_catalog(cls, block: Mapping[str, Any]) -> ModelShape:
        """A shape from a catalog entry's ``gguf`` block (already schema-checked)."""
        block_count = int(block["blockCount"])
        kv = block["headCountKv"]
        head_count_kv = tuple(kv) if isinstance(kv, list) else (int(kv),) * block_count
        head_count = int(block["headCount"])
        embedding_length = int(block["embeddingLength"])
        head_size = embedding_length // head_count if head_count else 0
        window = block.get("slidingWindow")
        layers = block.get("slidingWindowLayers")
        # Built without the frozen __init__ (a catalog of 10,000 shapes spent most of its
        # build there), so every field is given; the layer checks still run.
        shape = _new_shape(
            block["architecture"],  # architecture
            block_count,  # block_count
            embedding_length,  # embedding_length
            head_count,  # head_count
            head_count_kv,  # head_count_kv
            block.get("keyLength") or head_size,  # key_length
            block.get("valueLength") or head_size,  # value_length
            block["weightsBytes"],  # weights_bytes
            block.get("feedForwardLength", 0),  # feed_forward_length
            window,  # sliding_window
            tuple(layers)
            if layers is not None
            else _swa_layers(block["architecture"], None, window, block_count),  # swa_layers
            block.get("contextLength"),  # context_length
            block.get("vocabSize"),  # vocab_size
            block.get("tokenEmbeddingBytes", 0),  # token_embedding_bytes
            block.get("expertBytes", 0),  # expert_bytes
            block.get("tiedOutput", False),  # tied_output
            block.get("headerBytes", 0),  # header_bytes
            block.get("tensorCount", 0),  # tensor_count
            block.get("parameterCount", 0),  # parameter_count
            block.get("expertCount", 0),  # expert_count
            block.get("expertUsedCount", 0),  # expert_used_count
            block.get("tokenizerModel"),  # tokenizer_model
            block.get("mergesCount", 0),  # merges_count
            block.get("causal", True),  # causal
        )
        shape.__post_init__()
        return shape


_new_shape = builder(ModelShape)


def _swa_layers(
    architecture: str, pattern: Any, sliding_window: int | None, block_count: int
) -> tuple[bool, ...]:
    """Which layers use the sliding window: the header's per-layer list when it has one,
    else its period, else the architecture's known period; with none of those, no layer
    (counting every layer as full errs towards needing more memory, not less)."""
    if not sliding_window:
        return (False,) * block_count
    if pattern is not None and hasattr(pattern, "__len__") and not isinstance(pattern, str):
        flags = [bool(flag) for flag in pattern]
        if len(flags) == block_count:
            return tuple(flags)
    period = _int(pattern) or SWA_PATTERNS.get(architecture)
    if not period:
        return (False,) * block_count
    # llama.cpp: layer il is sliding-window when il % period < period - 1.
    return tuple(layer % period < period - 1 for layer in range(block_count))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    """An integer of any stored width (numpy's too); None for anything else, bools included."""
    if value is None or isinstance(value, bool) or getattr(value, "dtype", None) == "bool":
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def _per_layer(value: Any, block_count: int) -> list[int] | None:
    """A count stored as one integer or as one per layer, as a list per layer."""
    scalar = _int(value)
    if scalar is not None:
        return [scalar] * block_count
    if value is not None and hasattr(value, "__len__") and not isinstance(value, str):
        counts = [int(item) for item in value]
        if len(counts) == block_count:
            return counts
    return None
