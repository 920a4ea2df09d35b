"""Writes src/iris_models/data/sample.gguf: the small synthetic model that
`iris-models inspect --sample` shows. Run it again after changing it; the output is
deterministic.

The file is synthetic and says so in general.name and general.description: a llama-shaped
header (1 block, 256-wide embedding, 4 heads, 2 KV heads, 320-token vocabulary) with a real
Q4_K_M-style type mix over random weights. It is made with gguf-py (the `gguf` package),
the writer llama.cpp's own conversion scripts use.
"""

from __future__ import annotations

import sys
from pathlib import Path

import gguf
import numpy as np

OUTPUT = Path(__file__).resolve().parent.parent / "src" / "iris_models" / "data" / "sample.gguf"

N_EMBD, N_FF, N_LAYERS, N_HEAD, N_HEAD_KV, N_CTX = 256, 256, 1, 4, 2, 2048
BYTE_TOKENS = [f"<0x{b:02X}>" for b in range(256)]
WORDS = ["<unk>", "<s>", "</s>", "\n", " ", "the", "model", "device", "gguf", "▁hello", "世界"]


def vocabulary() -> list[str]:
    tokens = WORDS + BYTE_TOKENS
    tokens += [f"tok{i}" for i in range(320 - len(tokens))]
    return tokens


def quantized(rng: np.random.Generator, qtype: gguf.GGMLQuantizationType, rows: int, cols: int):
    block, type_size = gguf.GGML_QUANT_SIZES[qtype]
    return rng.integers(0, 256, size=(rows, cols // block * type_size), dtype=np.uint8)


def main() -> int:
    rng = np.random.default_rng(20261123)
    tokens = vocabulary()
    writer = gguf.GGUFWriter(OUTPUT, "llama")
    writer.add_name("iris-models sample (synthetic, random weights)")
    writer.add_description(
        "A tiny synthetic GGUF file bundled with iris-models for `iris-models inspect --sample`. "
        "Its weights are random numbers: it is not a usable model."
    )
    writer.add_size_label("0.4M")
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_K_M)
    writer.add_context_length(N_CTX)
    writer.add_embedding_length(N_EMBD)
    writer.add_feed_forward_length(N_FF)
    writer.add_block_count(N_LAYERS)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD_KV)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_rope_freq_base(10000.0)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores([float(-i) for i in range(len(tokens))])
    writer.add_token_types([3 if t.startswith("<") and len(t) > 3 else 1 for t in tokens])
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)

    q = gguf.GGMLQuantizationType
    n_vocab = len(tokens)
    writer.add_tensor(
        "token_embd.weight", quantized(rng, q.Q8_0, n_vocab, N_EMBD), raw_dtype=q.Q8_0
    )
    writer.add_tensor("output_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    for layer in range(N_LAYERS):
        prefix = f"blk.{layer}"
        head_dim = N_EMBD // N_HEAD
        writer.add_tensor(f"{prefix}.attn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        writer.add_tensor(f"{prefix}.ffn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        for name, rows, qtype in (
            ("attn_q", N_EMBD, q.Q4_K),
            ("attn_k", head_dim * N_HEAD_KV, q.Q4_K),
            ("attn_v", head_dim * N_HEAD_KV, q.Q6_K),
            ("attn_output", N_EMBD, q.Q4_K),
            ("ffn_gate", N_FF, q.Q4_K),
            ("ffn_up", N_FF, q.Q4_K),
        ):
            writer.add_tensor(
                f"{prefix}.{name}.weight", quantized(rng, qtype, rows, N_EMBD), raw_dtype=qtype
            )
        writer.add_tensor(
            f"{prefix}.ffn_down.weight", quantized(rng, q.Q6_K, N_EMBD, N_FF), raw_dtype=q.Q6_K
        )
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    print(f"wrote {OUTPUT} ({OUTPUT.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
