"""Writes tiny random-weight GGUF models (a few KB) for fast tests without real weights.

The vocabulary is byte-level BPE over the 256 byte symbols plus a few merges and the Qwen chat
special tokens, so the real tokenizer, chat template and engine paths all run."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from gguf import GGUFWriter, GGMLQuantizationType, quants

# Byte-level alphabet in GPT-2 order (the `tokenizers` ByteLevel mapping).
def _byte_symbols() -> list[str]:
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) \
        + list(range(0xAE, 0xFF + 1))
    symbols, extra = {}, 0
    for b in range(256):
        if b in printable:
            symbols[b] = chr(b)
        else:
            symbols[b] = chr(256 + extra)
            extra += 1
    return [symbols[b] for b in range(256)]


MERGES = ["Ġ t", "Ġ a", "h e", "i n", "r e", "o n", "Ġt he", "e r"]
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|fim_prefix|>", "<|fim_suffix|>",
            "<|fim_middle|>"]
CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}"
                 "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
                 "{% endif %}")


def add_tiny_tokenizer(writer: GGUFWriter) -> int:
    """Writes the byte-level BPE vocabulary, merges and Qwen chat specials; returns vocab size."""
    tokens = _byte_symbols() + [m.replace(" ", "") for m in MERGES] + SPECIALS
    token_types = [1] * (len(tokens) - len(SPECIALS)) + [3] * len(SPECIALS)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list(tokens)
    writer.add_token_types(token_types)
    writer.add_token_merges(MERGES)
    writer.add_eos_token_id(tokens.index("<|im_end|>"))
    writer.add_bos_token_id(tokens.index("<|endoftext|>"))
    writer.add_add_bos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)
    return len(tokens)


def write_tiny_qwen2(path: Path, *, architecture: str = "qwen2", hidden: int = 64,
                     num_layers: int = 2, num_heads: int = 4, num_kv_heads: int = 2,
                     ffn: int = 128, context_length: int = 64, seed: int = 0,
                     quant: GGMLQuantizationType | None = None,
                     quant_overrides: dict[str, GGMLQuantizationType] | None = None) -> Path:
    """quant_overrides: another type for some weights by name part (e.g. {"attn_v": Q4_0})."""
    rng = np.random.default_rng(seed)
    head_dim = hidden // num_heads
    writer = GGUFWriter(str(path), architecture)
    writer.add_block_count(num_layers)
    writer.add_context_length(context_length)
    writer.add_embedding_length(hidden)
    writer.add_feed_forward_length(ffn)
    writer.add_head_count(num_heads)
    writer.add_head_count_kv(num_kv_heads)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-6)
    vocab = add_tiny_tokenizer(writer)

    def add(name: str, *shape: int, scale: float = 0.2, weight: bool = True) -> None:
        data = (rng.standard_normal(shape) * scale).astype(np.float32)
        ggml_type = next((t for part, t in (quant_overrides or {}).items() if part in name), quant)
        if ggml_type is not None and weight and shape[-1] % 32 == 0:
            writer.add_tensor(name, quants.quantize(data, ggml_type), raw_dtype=ggml_type)
        else:
            writer.add_tensor(name, data)

    add("token_embd.weight", vocab, hidden, scale=1.0)
    for i in range(num_layers):
        p = f"blk.{i}"
        add(f"{p}.attn_norm.weight", hidden, weight=False)
        add(f"{p}.ffn_norm.weight", hidden, weight=False)
        add(f"{p}.attn_q.weight", num_heads * head_dim, hidden)
        add(f"{p}.attn_q.bias", num_heads * head_dim, weight=False)
        add(f"{p}.attn_k.weight", num_kv_heads * head_dim, hidden)
        add(f"{p}.attn_k.bias", num_kv_heads * head_dim, weight=False)
        add(f"{p}.attn_v.weight", num_kv_heads * head_dim, hidden)
        add(f"{p}.attn_v.bias", num_kv_heads * head_dim, weight=False)
        add(f"{p}.attn_output.weight", hidden, num_heads * head_dim)
        add(f"{p}.ffn_gate.weight", ffn, hidden)
        add(f"{p}.ffn_up.weight", ffn, hidden)
        add(f"{p}.ffn_down.weight", hidden, ffn)
    add("output_norm.weight", hidden, weight=False)
    add("output.weight", vocab, hidden)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
