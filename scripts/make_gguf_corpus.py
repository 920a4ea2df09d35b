"""Writes the seed corpus for the GGUF fuzz target and its sanitizer replay: every hostile file
of tests/gguf_bytes.py's exploit corpus plus a few valid files, one file each.

Usage (from the repository root): python scripts/make_gguf_corpus.py build/corpus
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# The builder lives with the tests, which are not an installed package; import it by path so
# this script needs neither gguf-py nor the tests on sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from gguf_bytes import (
    ARCH,
    F16,
    F32,
    KV,
    Q4_0,
    Q4_K,
    Q8_0,
    Array,
    Tensor,
    ValueType,
    build_file,
    exploit_cases,
    nested_array,
    small_model,
)


def valid_files() -> dict[str, bytes]:
    """Well-formed seeds, so the fuzzer starts from files that reach the deep checks."""
    tokens = KV("tokenizer.ggml.tokens", ValueType.ARRAY, Array(ValueType.STRING, ["<s>", "a"]))
    scores = KV("tokenizer.ggml.scores", ValueType.ARRAY, Array(ValueType.FLOAT32, [0.0, -1.0]))
    vocab = [ARCH, KV("tokenizer.ggml.model", ValueType.STRING, "llama"), tokens, scores]
    nested = [ARCH, KV("test.nested", ValueType.ARRAY, nested_array(2))]
    tensors = [
        Tensor("token_embd.weight", (64, 2), Q4_0),
        Tensor("blk.0.attn_norm.weight", (64,), F32),
        Tensor("blk.0.ffn_up.weight", (256, 2), Q4_K),
        Tensor("output.weight", (32, 2), Q8_0),
        Tensor("output_norm.weight", (16,), F16),
    ]
    return {
        "valid-v3-little-endian": small_model().data,
        "valid-v3-big-endian": small_model(big_endian=True).data,
        "valid-v2": small_model(version=2).data,
        "valid-v1": small_model(version=1).data,
        "valid-vocab-only": build_file(vocab).data,
        "valid-nested-array": build_file(nested).data,
        "valid-tensor-types": build_file([ARCH], tensors).data,
        "valid-tensor-types-big-endian": build_file([ARCH], tensors, big_endian=True).data,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="directory to write the corpus into")
    output = parser.parse_args(argv).output
    output.mkdir(parents=True, exist_ok=True)
    files = {f"exploit-{case.id}": case.data for case in exploit_cases()}
    files.update(valid_files())
    for name, data in files.items():
        (output / f"{name}.gguf").write_bytes(data)
    print(f"wrote {len(files)} files to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
