"""GGUF files written with gguf-py's GGUFWriter (llama.cpp's own writer), for the tests that
check our parser against gguf-py."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gguf
import numpy as np

__all__ = ["KV", "QT", "VT", "Tensor", "make_gguf", "tiny_gguf", "write_gguf"]

VT = gguf.GGUFValueType
QT = gguf.GGMLQuantizationType

# (key, value, value type, element type for arrays)
KV = tuple[str, Any, VT, VT | None]
# (name, data in numpy order, ggml type of raw bytes or None for a plain numpy dtype)
Tensor = tuple[str, np.ndarray, QT | None]


def write_gguf(
    path: Path,
    kvs: Sequence[KV] = (),
    tensors: Sequence[Tensor] = (),
    *,
    arch: str = "llama",
    endianess: gguf.GGUFEndian = gguf.GGUFEndian.LITTLE,
    alignment: int | None = None,
    split_max_tensors: int = 0,
    tensor_data: bool = True,
) -> Path:
    """Writes a GGUF file with GGUFWriter. Without ``tensor_data`` the file ends right after
    the tensor infos, as llama.cpp's vocab-only files do (GGUFWriter would pad it)."""
    writer = gguf.GGUFWriter(path, arch, endianess=endianess, split_max_tensors=split_max_tensors)
    if alignment is not None:
        writer.add_custom_alignment(alignment)
    for key, value, value_type, element_type in kvs:
        writer.add_key_value(key, value, value_type, sub_type=element_type)
    for name, data, raw_dtype in tensors:
        writer.add_tensor(name, data, raw_dtype=raw_dtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    if tensor_data:
        writer.write_tensors_to_file()
    else:
        writer.write_ti_data_to_file()
    writer.close()
    return path


def make_gguf(path: Path, name: str, rows: int = 4) -> Path:
    """A small real GGUF file (one ``rows`` x 8 float32 tensor); a different ``name`` gives
    different bytes (and digest)."""
    return _named(path, name, ("t", np.full((rows, 8), 1.0, dtype=np.float32), None))


def tiny_gguf(path: Path, name: str) -> Path:
    """A smaller one (one tensor of 8 floats, named as llama.cpp names an output norm)."""
    return _named(path, name, ("output_norm.weight", np.arange(8, dtype=np.float32), None))


def _named(path: Path, name: str, tensor: Tensor) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_gguf(path, [("general.name", name, VT.STRING, None)], [tensor])
