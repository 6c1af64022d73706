"""Tiny random GGUFs for the llama-like families fastcoder reads (qwen3, qwen3moe, qwen2moe,
llama with experts = Mixtral, olmoe): 2 layers, hidden 64, 8 experts top-2, the tiny byte-level
tokenizer. Deterministic from the seed, so a test regenerates the very file a golden fixture
(scripts/make_moe_golden.py) was computed from.

Tensors are drawn in the transformers layout; for `llama` the q/k rows are then permuted exactly
as llama.cpp's convert_hf_to_gguf.py (LlamaModel.permute) does for its interleaved RoPE."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType, GGUFWriter, quants

from tests.helpers.tiny_gguf import add_tiny_tokenizer


@dataclass(frozen=True)
class TinyArch:
    qkv_bias: bool = False
    qk_norm: str = ""             # "", "head" (per head_dim) or "full" (whole projection)
    num_experts: int = 8          # 0: dense SwiGLU
    shared_ffn: int = 0           # qwen2moe's shared expert
    head_dim: int = 16
    permute_qk: bool = False      # llama: converter's rope permutation


TINY_ARCHS = {
    "qwen3": TinyArch(qk_norm="head", num_experts=0, head_dim=32),
    "qwen3moe": TinyArch(qk_norm="head", head_dim=32),
    "qwen2moe": TinyArch(qkv_bias=True, shared_ffn=64),
    "llama": TinyArch(permute_qk=True),
    "olmoe": TinyArch(qk_norm="full"),
}
QUANTS = {"f32": None, "q8_0": GGMLQuantizationType.Q8_0, "q4_0": GGMLQuantizationType.Q4_0}
HIDDEN, NUM_LAYERS, NUM_HEADS, NUM_KV_HEADS = 64, 2, 4, 2
FFN, EXPERT_FFN, TOP_K, CONTEXT = 128, 32, 2, 128


def permute_qk(w: np.ndarray, num_heads: int) -> np.ndarray:
    """convert_hf_to_gguf.py LlamaModel.permute: [heads * head_dim, cols] rows (i, i + d/2) of
    each head -> (2i, 2i + 1)."""
    return w.reshape(num_heads, 2, w.shape[0] // num_heads // 2, *w.shape[1:]) \
        .swapaxes(1, 2).reshape(w.shape)


def unpermute_qk(w: np.ndarray, num_heads: int) -> np.ndarray:
    return w.reshape(num_heads, w.shape[0] // num_heads // 2, 2, *w.shape[1:]) \
        .swapaxes(1, 2).reshape(w.shape)


def write_tiny_model(path: Path, arch: str, quant: str = "f32", seed: int = 0) -> Path:
    spec, qtype = TINY_ARCHS[arch], QUANTS[quant]
    rng = np.random.default_rng(seed)
    hd = spec.head_dim
    writer = GGUFWriter(str(path), arch)
    writer.add_block_count(NUM_LAYERS)
    writer.add_context_length(CONTEXT)
    writer.add_embedding_length(HIDDEN)
    writer.add_feed_forward_length(EXPERT_FFN if spec.num_experts else FFN)
    writer.add_head_count(NUM_HEADS)
    writer.add_head_count_kv(NUM_KV_HEADS)
    writer.add_key_length(hd)
    writer.add_value_length(hd)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-6)
    if spec.num_experts:
        writer.add_expert_count(spec.num_experts)
        writer.add_expert_used_count(TOP_K)
        writer.add_expert_feed_forward_length(EXPERT_FFN)
    if spec.shared_ffn:
        writer.add_expert_shared_feed_forward_length(spec.shared_ffn)
    vocab = add_tiny_tokenizer(writer)

    def draw(*shape: int, scale: float = 0.2) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    def add(name: str, data: np.ndarray, quantize: bool = True) -> None:
        if qtype is not None and quantize and data.ndim > 1 and data.shape[-1] % 32 == 0:
            writer.add_tensor(name, quants.quantize(data, qtype), raw_dtype=qtype)
        else:
            writer.add_tensor(name, data)

    def norm_weight(n: int) -> np.ndarray:
        return (1.0 + draw(n, scale=0.1)).astype(np.float32)

    add("token_embd.weight", draw(vocab, HIDDEN, scale=1.0))
    for i in range(NUM_LAYERS):
        p = f"blk.{i}"
        add(f"{p}.attn_norm.weight", norm_weight(HIDDEN))
        add(f"{p}.ffn_norm.weight", norm_weight(HIDDEN))
        q, k = draw(NUM_HEADS * hd, HIDDEN), draw(NUM_KV_HEADS * hd, HIDDEN)
        if spec.permute_qk:
            q, k = permute_qk(q, NUM_HEADS), permute_qk(k, NUM_KV_HEADS)
        add(f"{p}.attn_q.weight", q)
        add(f"{p}.attn_k.weight", k)
        add(f"{p}.attn_v.weight", draw(NUM_KV_HEADS * hd, HIDDEN))
        if spec.qkv_bias:
            for name, n in (("q", NUM_HEADS * hd), ("k", NUM_KV_HEADS * hd), ("v", NUM_KV_HEADS * hd)):
                add(f"{p}.attn_{name}.bias", draw(n))
        add(f"{p}.attn_output.weight", draw(HIDDEN, NUM_HEADS * hd))
        if spec.qk_norm:
            add(f"{p}.attn_q_norm.weight", norm_weight(hd if spec.qk_norm == "head" else NUM_HEADS * hd))
            add(f"{p}.attn_k_norm.weight", norm_weight(hd if spec.qk_norm == "head" else NUM_KV_HEADS * hd))
        if not spec.num_experts:
            add(f"{p}.ffn_gate.weight", draw(FFN, HIDDEN))
            add(f"{p}.ffn_up.weight", draw(FFN, HIDDEN))
            add(f"{p}.ffn_down.weight", draw(HIDDEN, FFN))
            continue
        e = spec.num_experts
        # llama.cpp never quantizes the router (llama-quant.cpp skips ffn_gate_inp).
        add(f"{p}.ffn_gate_inp.weight", draw(e, HIDDEN, scale=0.5), quantize=False)
        add(f"{p}.ffn_gate_exps.weight", draw(e, EXPERT_FFN, HIDDEN))
        add(f"{p}.ffn_up_exps.weight", draw(e, EXPERT_FFN, HIDDEN))
        add(f"{p}.ffn_down_exps.weight", draw(e, HIDDEN, EXPERT_FFN))
        if spec.shared_ffn:
            add(f"{p}.ffn_gate_inp_shexp.weight", draw(HIDDEN), quantize=False)
            add(f"{p}.ffn_gate_shexp.weight", draw(spec.shared_ffn, HIDDEN))
            add(f"{p}.ffn_up_shexp.weight", draw(spec.shared_ffn, HIDDEN))
            add(f"{p}.ffn_down_shexp.weight", draw(HIDDEN, spec.shared_ffn))
    add("output_norm.weight", norm_weight(HIDDEN))
    add("output.weight", draw(vocab, HIDDEN))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
