"""GGUFSummary: what a model is and what it is made of, read from its header.

The quantization label comes from ``general.file_type``; the byte mix comes from the
tensors themselves, because the two often disagree (a "Q4_K_M" file can be mostly Q8_0 by
bytes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ._types import LLAMA_FILE_TYPES

if TYPE_CHECKING:
    from ._file import GGUFFile

__all__ = ["GGUFSummary", "SplitInfo", "summarize"]

PerLayer = int | tuple[int, ...]


@dataclass(frozen=True)
class SplitInfo:
    """How a split model is spread over files."""

    shard_count: int
    tensors_count: int | None
    """``split.tensors.count``: the tensors over all shards, as the first shard claims."""
    paths: tuple[str, ...]


@dataclass(frozen=True)
class GGUFSummary:
    """The facts about a model that a person or a recommender asks first.

    Counts that some architectures store per layer (``head_count_kv`` in Gemma 4, for
    instance) are a tuple with one entry per layer, otherwise an int. ``key_length`` and
    ``value_length`` fall back to ``embedding_length / head_count``, as llama.cpp does.
    """

    architecture: str | None
    name: str | None
    size_label: str | None
    file_type: int | None
    quantization: str | None
    """The label ``general.file_type`` implies (``"Q4_K_M"``)."""
    bytes_by_type: dict[str, int]
    """Tensor bytes per ggml type, largest first: the real quantization mix."""
    n_parameters: int
    n_tensors: int
    context_length: int | None
    block_count: int | None
    embedding_length: int | None
    feed_forward_length: PerLayer | None
    head_count: PerLayer | None
    head_count_kv: PerLayer | None
    key_length: int | None
    value_length: int | None
    sliding_window: int | None
    vocab_size: int | None
    expert_count: int | None
    expert_used_count: int | None
    tokenizer_model: str | None
    version: int
    endianness: Literal["little", "big"]
    alignment: int
    file_size: int | None
    header_size: int
    """Bytes before the tensor data, summed over shards (mostly tokenizer data)."""
    data_size: int
    split: SplitInfo | None

    @property
    def dominant_type(self) -> str | None:
        """The ggml type holding the most bytes."""
        return next(iter(self.bytes_by_type), None)

    def type_fractions(self) -> dict[str, float]:
        """Share of tensor bytes per ggml type, largest first."""
        total = sum(self.bytes_by_type.values())
        return {name: size / total for name, size in self.bytes_by_type.items()} if total else {}

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (tuples become lists)."""
        data: dict[str, Any] = _lists(asdict(self))
        data["dominant_type"] = self.dominant_type
        return data


def _lists(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _lists(item) for key, item in value.items()}
    if isinstance(value, (tuple, list)):
        return [_lists(item) for item in value]
    return value


def summarize(model: GGUFFile) -> GGUFSummary:
    metadata = model.metadata
    architecture = _text(metadata.get("general.architecture"))

    def arch_key(suffix: str) -> Any:
        return metadata.get(f"{architecture}.{suffix}") if architecture else None

    bytes_by_type: dict[str, int] = {}
    n_parameters = 0
    for tensor in model.tensors:
        n_parameters += tensor.n_elements
        if tensor.nbytes is not None:
            bytes_by_type[tensor.type] = bytes_by_type.get(tensor.type, 0) + tensor.nbytes
    ordered = dict(sorted(bytes_by_type.items(), key=lambda item: (-item[1], item[0])))

    embedding_length = _count(arch_key("embedding_length"))
    head_count = _per_layer(arch_key("attention.head_count"))
    file_type = _count(metadata.get("general.file_type"))
    shards = model.shards
    return GGUFSummary(
        architecture=architecture,
        name=_text(metadata.get("general.name")),
        size_label=_text(metadata.get("general.size_label")),
        file_type=file_type,
        quantization=LLAMA_FILE_TYPES.get(file_type) if file_type is not None else None,
        bytes_by_type=ordered,
        n_parameters=n_parameters,
        n_tensors=len(model.tensors),
        context_length=_count(arch_key("context_length")),
        block_count=_count(arch_key("block_count")),
        embedding_length=embedding_length,
        feed_forward_length=_per_layer(arch_key("feed_forward_length")),
        head_count=head_count,
        head_count_kv=_per_layer(arch_key("attention.head_count_kv")),
        key_length=_count(arch_key("attention.key_length"))
        or _head_size(embedding_length, head_count),
        value_length=_count(arch_key("attention.value_length"))
        or _head_size(embedding_length, head_count),
        sliding_window=_count(arch_key("attention.sliding_window")),
        vocab_size=_vocab_size(metadata, arch_key("vocab_size")),
        expert_count=_count(arch_key("expert_count")),
        expert_used_count=_count(arch_key("expert_used_count")),
        tokenizer_model=_text(metadata.get("tokenizer.ggml.model")),
        version=model.version,
        endianness=model.endianness,
        alignment=model.alignment,
        file_size=model.file_size,
        header_size=sum(shard.data_offset for shard in shards),
        data_size=sum(shard.data_size for shard in shards),
        split=_split_info(model),
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _count(value: Any) -> int | None:
    """An integer of any stored width; None for anything else (bools included)."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    return None


def _per_layer(value: Any) -> PerLayer | None:
    """A scalar count, or a per-layer array of counts as a tuple."""
    if isinstance(value, np.ndarray) and value.dtype.kind in "iu":
        return tuple(int(x) for x in value)
    return _count(value)


def _head_size(embedding_length: int | None, head_count: PerLayer | None) -> int | None:
    if isinstance(head_count, tuple):  # llama.cpp derives head sizes from layer 0
        head_count = head_count[0] if head_count else 0
    if not embedding_length or not head_count or embedding_length <= 0 or head_count <= 0:
        return None
    if embedding_length % head_count:
        return None
    return embedding_length // head_count


def _vocab_size(metadata: Mapping[str, Any], declared: Any) -> int | None:
    count = _count(declared)
    if count is not None:
        return count
    tokens = metadata.get("tokenizer.ggml.tokens")
    return len(tokens) if tokens is not None and hasattr(tokens, "__len__") else None


def _split_info(model: GGUFFile) -> SplitInfo | None:
    count = _count(model.metadata.get("split.count"))
    if count is None or count <= 1:
        return None
    return SplitInfo(
        shard_count=count,
        tensors_count=_count(model.metadata.get("split.tensors.count")),
        paths=tuple(str(shard.path) for shard in model.shards if shard.path is not None),
    )
