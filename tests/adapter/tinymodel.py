"""A tiny random-weight llama model in GGUF, written with the `gguf` package: what the tests serve.

2 layers, 64 wide, a byte-level vocabulary (the 256 byte tokens SentencePiece falls back to, plus printable
ASCII); or, for the tests of long generations, a wider and deeper one (`SLOW`) that takes tens of
milliseconds a token on these machines, with a longer context. The output rows of every token but printable
ASCII are zero and those of printable ASCII are large, so the model never picks end-of-sequence and always
generates exactly `max_tokens` printable characters: token counts in the tests are exact. The text is
gibberish, which is fine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gguf
import numpy as np


@dataclass(frozen=True)
class Shape:
    n_embd: int = 64
    n_layers: int = 2
    n_heads: int = 4
    n_ff: int = 128
    n_ctx: int = 2048


TINY = Shape()
# About 400 MB of float32 weights: every token reads them all, so a token costs tens of milliseconds here.
SLOW = Shape(n_embd=1024, n_layers=8, n_heads=16, n_ff=2816, n_ctx=8192)
SPECIALS = ("<unk>", "<s>", "</s>")
PRINTABLE = ["\u2581"] + [chr(i) for i in range(33, 127)]  # SentencePiece spells the space as U+2581


def write_tiny_llama(path: Path, seed: int = 0, shape: Shape = TINY) -> Path:
    rng = np.random.default_rng(seed)
    tokens = [*SPECIALS, *(f"<0x{b:02X}>" for b in range(256)), *PRINTABLE]
    types = ([gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
             + [gguf.TokenType.BYTE] * 256 + [gguf.TokenType.NORMAL] * len(PRINTABLE))
    n_vocab = len(tokens)

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("selfhost-tiny-random")
    writer.add_context_length(shape.n_ctx)
    writer.add_embedding_length(shape.n_embd)
    writer.add_block_count(shape.n_layers)
    writer.add_feed_forward_length(shape.n_ff)
    writer.add_head_count(shape.n_heads)
    writer.add_head_count_kv(shape.n_heads)
    writer.add_rope_dimension_count(shape.n_embd // shape.n_heads)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(n_vocab)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_scores([0.0] * n_vocab)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)

    def weights(*shape: int, scale: float = 0.02) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    # numpy shapes are GGML's dimensions reversed: a (rows=out, cols=in) matrix.
    d, ff = shape.n_embd, shape.n_ff
    output = np.zeros((n_vocab, d), dtype=np.float32)
    output[-len(PRINTABLE):] = weights(len(PRINTABLE), d, scale=2.0)
    writer.add_tensor("token_embd.weight", weights(n_vocab, d, scale=1.0))
    writer.add_tensor("output_norm.weight", np.ones(d, dtype=np.float32))
    writer.add_tensor("output.weight", output)
    for i in range(shape.n_layers):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(d, dtype=np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(f"blk.{i}.{name}.weight", weights(d, d))
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(d, dtype=np.float32))
        writer.add_tensor(f"blk.{i}.ffn_gate.weight", weights(ff, d))
        writer.add_tensor(f"blk.{i}.ffn_up.weight", weights(ff, d))
        writer.add_tensor(f"blk.{i}.ffn_down.weight", weights(d, ff))

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def write_tiny_lora(path: Path, seed: int = 1, shape: Shape = TINY, rank: int = 8, alpha: float = 8.0) -> Path:
    """A LoRA adapter of `write_tiny_llama`'s model, as llama.cpp loads one (src/llama-adapter.cpp): general.type
    `adapter`, adapter.type `lora`, and a `.lora_a`/`.lora_b` pair per adapted matrix W, with A (rank, in) and B
    (out, rank) in numpy's order, so that W + (alpha / rank) B A has W's shape. Large enough weights on every
    attention and feed-forward matrix that greedy output differs from the base model's."""
    rng = np.random.default_rng(seed)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
    d, ff = shape.n_embd, shape.n_ff
    sizes = {"attn_q": (d, d), "attn_k": (d, d), "attn_v": (d, d), "attn_output": (d, d),
             "ffn_gate": (ff, d), "ffn_up": (ff, d), "ffn_down": (d, ff)}
    for i in range(shape.n_layers):
        for name, (out, inp) in sizes.items():
            writer.add_tensor(f"blk.{i}.{name}.weight.lora_a",
                              (rng.standard_normal((rank, inp)) * 0.5).astype(np.float32))
            writer.add_tensor(f"blk.{i}.{name}.weight.lora_b",
                              (rng.standard_normal((out, rank)) * 0.5).astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
