"""Gemma 3 (text): scaled embeddings, sandwich RMSNorms (before and after attention and MLP),
QK-norm, GeGLU MLP, interleaved sliding-window (local) and global attention layers with their
own RoPE bases, NEOX RoPE, tied output head.

GGUF files from llama.cpp's converter store each RMSNorm multiplier as (1 + w) already, so the
norms use the stored vector as is (transformers subtracts 1 on load and adds it back)."""
from __future__ import annotations

import torch

from fastcoder.config import ModelConfig
from fastcoder.layers.activations import Activation, GatedMLP
from fastcoder.layers.attention import cached_attention
from fastcoder.layers.kv_cache import KVCache
from fastcoder.layers.linear import LinearFactory, QuantEmbedding
from fastcoder.layers.norm import RMSNorm
from fastcoder.layers.rotary import RotaryEmbedding
from fastcoder.loader.gguf_file import GGUFModelFile
from fastcoder.model.registry import register_model
from fastcoder.model.weights import Weights

# Family defaults the gemma3 GGUF metadata does not carry; llama.cpp (llama-model.cpp) and
# transformers (Gemma3TextConfig) hard-code the same: every 6th layer is global, local layers
# use RoPE base 10k. A file that states them (`attention.sliding_window_pattern`,
# `rope.freq_base_swa`) wins.
DEFAULT_SLIDING_WINDOW_PATTERN = 6
DEFAULT_LOCAL_ROPE_THETA = 10_000.0


def is_sliding_layer(config: ModelConfig, layer: int) -> bool:
    """Local (windowed) layer? Layers pattern-1, 2*pattern-1, ... attend globally."""
    if not config.sliding_window:
        return False
    pattern = config.sliding_window_pattern or DEFAULT_SLIDING_WINDOW_PATTERN
    return (layer + 1) % pattern != 0


def gemma3_layer_windows(config: ModelConfig) -> tuple[int, ...]:
    """Each layer's sliding window in tokens, 0 for global layers."""
    return tuple(config.sliding_window if is_sliding_layer(config, i) else 0
                 for i in range(config.num_layers))


class Gemma3Attention(torch.nn.Module):
    def __init__(self, config: ModelConfig, w: Weights, prefix: str, sliding_window: int):
        super().__init__()
        self.config = config
        self.qkv_proj = w.fused_linear(
            [f"{prefix}.attn_q.weight", f"{prefix}.attn_k.weight", f"{prefix}.attn_v.weight"],
            [None, None, None])
        self.o_proj = w.linear(f"{prefix}.attn_output.weight")
        self.q_norm = RMSNorm(w.vector(f"{prefix}.attn_q_norm.weight"), config.rms_norm_eps)
        self.k_norm = RMSNorm(w.vector(f"{prefix}.attn_k_norm.weight"), config.rms_norm_eps)
        self.split = (config.q_size, config.kv_size, config.kv_size)
        self.sliding_window = sliding_window
        # query_pre_attn_scalar = head_dim for every released size but 27B, which llama.cpp
        # special-cases by layer count and no GGUF key records.
        self.scale = config.head_dim ** -0.5

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor],
                positions: torch.Tensor, cache: KVCache, layer: int) -> torch.Tensor:
        c = self.config
        num_tokens = x.shape[0]
        q, k, v = self.qkv_proj(x).split(self.split, dim=-1)
        q = self.q_norm(q.view(num_tokens, c.num_heads, c.head_dim))
        k = self.k_norm(k.view(num_tokens, c.num_kv_heads, c.head_dim))
        q, k = RotaryEmbedding.apply(q, *rope), RotaryEmbedding.apply(k, *rope)
        v = v.view(num_tokens, c.num_kv_heads, c.head_dim)
        out = cached_attention(q, k, v, positions, cache, layer, self.scale,
                               sliding_window=self.sliding_window)
        return self.o_proj(out)                            # [num_tokens, hidden]


class Gemma3Block(torch.nn.Module):
    def __init__(self, config: ModelConfig, w: Weights, layer: int, sliding_window: int):
        super().__init__()
        prefix = f"blk.{layer}"
        self.layer = layer
        self.is_sliding = bool(sliding_window)

        def norm(name: str) -> RMSNorm:
            return RMSNorm(w.vector(f"{prefix}.{name}.weight"), config.rms_norm_eps)

        self.input_norm = norm("attn_norm")
        self.attn = Gemma3Attention(config, w, prefix, sliding_window)
        self.post_attn_norm = norm("post_attention_norm")
        self.pre_mlp_norm = norm("ffn_norm")
        self.mlp = GatedMLP(w.fused_linear([f"{prefix}.ffn_gate.weight",
                                            f"{prefix}.ffn_up.weight"], [None, None]),
                            w.linear(f"{prefix}.ffn_down.weight"), Activation.GELU_TANH)
        self.post_mlp_norm = norm("post_ffw_norm")

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor],
                positions: torch.Tensor, cache: KVCache) -> torch.Tensor:
        attn = self.attn(self.input_norm(x), rope, positions, cache, self.layer)
        x = x + self.post_attn_norm(attn)
        return x + self.post_mlp_norm(self.mlp(self.pre_mlp_norm(x)))


@register_model("gemma3")
class Gemma3Model(torch.nn.Module):
    # KV caches size local layers by their window (model.layer_windows).
    layer_windows = staticmethod(gemma3_layer_windows)

    def __init__(self, gguf: GGUFModelFile, max_positions: int, linear: LinearFactory):
        super().__init__()
        config = self.config = gguf.config
        w = Weights(gguf, linear)
        self.global_rotary = RotaryEmbedding(config.head_dim, max_positions, config.rope_theta,
                                             config.rope_scaling_factor)
        # transformers applies rope scaling to global layers only.
        self.local_rotary = RotaryEmbedding(
            config.head_dim, max_positions,
            config.extra.get("rope_theta_swa", DEFAULT_LOCAL_ROPE_THETA))
        self.layers = torch.nn.ModuleList(
            Gemma3Block(config, w, i, window)
            for i, window in enumerate(gemma3_layer_windows(config)))
        # sqrt(hidden) rounded to fp32 as transformers does (the embedding runs in fp32).
        embed_scale = float(torch.tensor(config.hidden_size ** 0.5, dtype=torch.float32))
        self.embed = QuantEmbedding(w.get("token_embd.weight"), scale=embed_scale)
        self.norm = RMSNorm(w.vector("output_norm.weight"), config.rms_norm_eps)
        # Tied embeddings: no output.weight in the file, the embedding matrix is the head.
        head = "output.weight" if w.optional("output.weight") else "token_embd.weight"
        self.lm_head = w.linear(head)
        self.final_logit_softcapping = config.extra.get("final_logit_softcapping", 0.0)

    def forward(self, token_ids: torch.Tensor, positions: torch.Tensor,
                cache: KVCache) -> torch.Tensor:
        """token_ids, positions: [num_tokens] -> final hidden states [num_tokens, hidden]."""
        x = self.embed(token_ids)
        # Tables computed once per forward, shared by the layers of each kind.
        local_rope = self.local_rotary.cos_sin(positions)
        global_rope = self.global_rotary.cos_sin(positions)
        for block in self.layers:
            x = block(x, local_rope if block.is_sliding else global_rope, positions, cache)
        return self.norm(x)

    def compute_logits(self, hidden: torch.Tensor) -> torch.Tensor:  # [num_tokens, hidden]
        logits = self.lm_head(hidden)                                 # [num_tokens, vocab]
        if self.final_logit_softcapping:
            cap = self.final_logit_softcapping
            logits = torch.tanh(logits / cap) * cap
        return logits
