"""Qwen2 (Qwen2.5-Coder): pre-norm decoder, GQA with q/k/v biases, SwiGLU MLP, NEOX RoPE."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from fastcoder.config import ModelConfig
from fastcoder.layers.attention import cached_attention
from fastcoder.layers.kv_cache import KVCache
from fastcoder.layers.linear import LinearFactory, QuantEmbedding
from fastcoder.layers.norm import RMSNorm
from fastcoder.layers.rotary import RotaryEmbedding
from fastcoder.loader.gguf_file import GGUFModelFile
from fastcoder.model.registry import register_model
from fastcoder.model.weights import Weights


class Qwen2Attention(torch.nn.Module):
    def __init__(self, config: ModelConfig, w: Weights, prefix: str):
        super().__init__()
        self.config = config
        self.qkv_proj = w.fused_linear(
            [f"{prefix}.attn_q.weight", f"{prefix}.attn_k.weight", f"{prefix}.attn_v.weight"],
            [f"{prefix}.attn_q.bias", f"{prefix}.attn_k.bias", f"{prefix}.attn_v.bias"])
        self.o_proj = w.linear(f"{prefix}.attn_output.weight")
        self.split = (config.q_size, config.kv_size, config.kv_size)
        self.scale = config.head_dim ** -0.5

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor],
                positions: torch.Tensor, cache: KVCache, layer: int) -> torch.Tensor:
        c = self.config
        num_tokens = x.shape[0]
        qkv = self.qkv_proj(x)                             # [num_tokens, q_size + 2 * kv_size]
        q, k, v = qkv.split(self.split, dim=-1)
        q = RotaryEmbedding.apply(q.view(num_tokens, c.num_heads, c.head_dim), *rope)
        k = RotaryEmbedding.apply(k.view(num_tokens, c.num_kv_heads, c.head_dim), *rope)
        v = v.view(num_tokens, c.num_kv_heads, c.head_dim)
        out = cached_attention(q, k, v, positions, cache, layer, self.scale)
        return self.o_proj(out)                            # [num_tokens, hidden]


class SwiGLU(torch.nn.Module):
    def __init__(self, w: Weights, prefix: str):
        super().__init__()
        self.gate_up_proj = w.fused_linear([f"{prefix}.ffn_gate.weight", f"{prefix}.ffn_up.weight"],
                                           [None, None])
        self.down_proj = w.linear(f"{prefix}.ffn_down.weight")

    def forward(self, x: torch.Tensor) -> torch.Tensor:              # [num_tokens, hidden]
        gate, up = self.gate_up_proj(x).chunk(2, dim=-1)             # [num_tokens, ffn] each
        return self.down_proj(F.silu(gate).mul_(up))


class Qwen2Block(torch.nn.Module):
    def __init__(self, config: ModelConfig, w: Weights, layer: int):
        super().__init__()
        prefix = f"blk.{layer}"
        self.layer = layer
        self.input_norm = RMSNorm(w.vector(f"{prefix}.attn_norm.weight"), config.rms_norm_eps)
        self.attn = Qwen2Attention(config, w, prefix)
        self.post_attn_norm = RMSNorm(w.vector(f"{prefix}.ffn_norm.weight"), config.rms_norm_eps)
        self.mlp = SwiGLU(w, prefix)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor],
                positions: torch.Tensor, cache: KVCache) -> torch.Tensor:
        x = x + self.attn(self.input_norm(x), rope, positions, cache, self.layer)
        return x + self.mlp(self.post_attn_norm(x))


@register_model("qwen2")
class Qwen2Model(torch.nn.Module):
    def __init__(self, gguf: GGUFModelFile, max_positions: int, linear: LinearFactory):
        super().__init__()
        config = self.config = gguf.config
        w = Weights(gguf, linear)
        self.rotary = RotaryEmbedding(config.head_dim, max_positions, config.rope_theta,
                                      config.rope_scaling_factor)
        self.embed = QuantEmbedding(w.get("token_embd.weight"))
        self.layers = torch.nn.ModuleList(Qwen2Block(config, w, i) for i in range(config.num_layers))
        self.norm = RMSNorm(w.vector("output_norm.weight"), config.rms_norm_eps)
        # Tied embeddings: no output.weight in the file, the embedding matrix is the head.
        head = "output.weight" if w.optional("output.weight") else "token_embd.weight"
        self.lm_head = w.linear(head)

    def forward(self, token_ids: torch.Tensor, positions: torch.Tensor,
                cache: KVCache) -> torch.Tensor:
        """token_ids, positions: [num_tokens] -> final hidden states [num_tokens, hidden]."""
        x = self.embed(token_ids)
        rope = self.rotary.cos_sin(positions)              # shared by every layer
        for block in self.layers:
            x = block(x, rope, positions, cache)
        return self.norm(x)

    def compute_logits(self, hidden: torch.Tensor) -> torch.Tensor:  # [num_tokens, hidden]
        return self.lm_head(hidden)                                   # [num_tokens, vocab]
