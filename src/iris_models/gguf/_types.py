"""Type tables for GGUF: metadata value types, ggml tensor types (from the C++ core's table),
and the llama.cpp file-type labels that ``general.file_type`` encodes."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Literal, cast

from .._native import _core

__all__ = [
    "GGML_TYPES",
    "LLAMA_FILE_TYPES",
    "GGMLType",
    "GGUFValueType",
    "ggml_type_name",
]


class GGUFValueType(IntEnum):
    """Metadata value types, with the ids the GGUF format stores."""

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


_Status = Literal["current", "internal", "removed"]


@dataclass(frozen=True)
class GGMLType:
    """One row of the ggml tensor type table."""

    id: int
    name: str
    block_size: int
    """Elements per block (0 for removed types)."""
    type_size: int
    """Bytes per block (0 for removed types)."""
    status: _Status

    @property
    def bits_per_weight(self) -> float | None:
        """Storage bits per element, or None for a removed type."""
        if self.block_size == 0:
            return None
        return 8 * self.type_size / self.block_size


GGML_TYPES: dict[int, GGMLType] = {
    type_id: GGMLType(type_id, name, block_size, type_size, cast(_Status, status))
    for type_id, name, block_size, type_size, status in _core.ggml_types()
}
"""Every ggml type id this build knows, including removed ones (which files may not use)."""


def ggml_type_name(type_id: int) -> str:
    """The name of a ggml type id, or ``"unknown(<id>)"`` for an id this build does not know."""
    known = GGML_TYPES.get(type_id)
    return known.name if known is not None else f"unknown({type_id})"


# llama.cpp's llama_ftype, which general.file_type stores (gguf-py's LlamaFileType). The label
# is what the file claims its quantization is; the tensors' real byte mix may differ.
LLAMA_FILE_TYPES: dict[int, str] = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    7: "Q8_0",
    8: "Q5_0",
    9: "Q5_1",
    10: "Q2_K",
    11: "Q3_K_S",
    12: "Q3_K_M",
    13: "Q3_K_L",
    14: "Q4_K_S",
    15: "Q4_K_M",
    16: "Q5_K_S",
    17: "Q5_K_M",
    18: "Q6_K",
    19: "IQ2_XXS",
    20: "IQ2_XS",
    21: "Q2_K_S",
    22: "IQ3_XS",
    23: "IQ3_XXS",
    24: "IQ1_S",
    25: "IQ4_NL",
    26: "IQ3_S",
    27: "IQ3_M",
    28: "IQ2_S",
    29: "IQ2_M",
    30: "IQ4_XS",
    31: "IQ1_M",
    32: "BF16",
    36: "TQ1_0",
    37: "TQ2_0",
    38: "MXFP4_MOE",
    39: "NVFP4",
    40: "Q1_0",
}
