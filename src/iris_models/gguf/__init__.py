"""Read GGUF model files: metadata, tensor records and a summary, without reading weights.

>>> import iris_models.gguf
>>> with iris_models.gguf.open("model.gguf") as model:  # doctest: +SKIP
...     print(model.summary().architecture, len(model.tensors))

The header is parsed in C++ over a memory map, with every count, length and offset checked
against the bytes present; bad files raise :class:`~iris_models.errors.GGUFError`.
"""

from __future__ import annotations

from ..errors import GGUFError, GGUFNeedMoreDataError, GGUFTruncatedError
from ._file import GGUFFile, GGUFShard, TensorInfo, open, parse
from ._split import shard_name, sibling_shard_paths
from ._summary import GGUFSummary, SplitInfo
from ._types import GGML_TYPES, LLAMA_FILE_TYPES, GGMLType, GGUFValueType, ggml_type_name
from ._values import GGUFField, StringArray, decode_policy

__all__ = [
    "GGML_TYPES",
    "LLAMA_FILE_TYPES",
    "GGMLType",
    "GGUFError",
    "GGUFField",
    "GGUFFile",
    "GGUFNeedMoreDataError",
    "GGUFShard",
    "GGUFSummary",
    "GGUFTruncatedError",
    "GGUFValueType",
    "SplitInfo",
    "StringArray",
    "TensorInfo",
    "decode_policy",
    "ggml_type_name",
    "open",
    "parse",
    "shard_name",
    "sibling_shard_paths",
]


def __dir__() -> list[str]:
    return __all__
