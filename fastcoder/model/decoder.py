"""The pre-norm decoder shared by llama-like families (qwen2, llama/Mixtral, qwen3, qwen3moe, qwen2moe,
olmoe): GQA attention with optional q/k biases and QK-norm, NEOX or interleaved RoPE, and per
layer either a SwiGLU FFN or a Mixture-of-Experts FFN (chosen by the tensors the layer has).
Each family is a `DecoderSpec` in its own module."""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import torch

from fastcoder.config import ModelConfig
from fastcoder.errors import UnsupportedArchitectureError
from fastcoder.kernels.decoder_stack import (MAX_STACK_TOKENS, DecoderDims, DecoderStack,
                                             LayerWeights, c_decoder_stack)
from fastcoder.kernels.qmatmul import default_num_threads
from fastcoder.layers.activations import Activation, GatedMLP
from fastcoder.layers.attention import cached_attention
from fastcoder.layers.kv_cache import KVCache
from fastcoder.layers.linear import LinearFactory, QuantEmbedding
from fastcoder.layers.moe import MoEFFN, expert_factory
from fastcoder.layers.norm import RMSNorm
from fastcoder.layers.quant_linear import QuantLinear
from fastcoder.layers.rotary import RotaryEmbedding
from fastcoder.loader.gguf_file import GGUFModelFile, QuantTensor
from fastcoder.model.weights import Weights


SOFTMAX_GATING = 1.0   # GGUF {arch}.expert_gating_func (gguf.ExpertGatingFuncType.SOFTMAX)


class QKNorm(Enum):
    NONE = "none"
    PER_HEAD = "per_head"     # qwen3: RMSNorm over each head's head_dim, after the reshape
    FULL = "full"             # olmoe: RMSNorm over the whole q (k) projection, before it


@dataclass(frozen=True)
class DecoderSpec:
    qk_norm: QKNorm = QKNorm.NONE
    # llama.cpp's `llama` arch rotates adjacent pairs (its converter permuted the q/k rows).
    interleaved_rope: bool = False
    # Renormalise top-k router weights when the file does not say (expert_weights_norm).
    default_expert_weights_norm: bool = False


def _as_row_matrix(t: QuantTensor) -> QuantTensor:
    """A [hidden] vector weight (qwen2moe's shared-expert gate) as a [1, hidden] matrix."""
    if len(t.shape) == 2:
        return t
    return QuantTensor(t.name, t.ggml_type, (1, t.shape[-1]), t.data.reshape(1, -1))


class DecoderAttention(torch.nn.Module):
    def __init__(self, config: ModelConfig, spec: DecoderSpec, w: Weights, prefix: str):
        super().__init__()
        self.config, self.spec = config, spec
        names = [f"{prefix}.attn_{p}.weight" for p in "qkv"]
        self.qkv_proj = w.fused_linear(names, [f"{prefix}.attn_{p}.bias" for p in "qkv"])
        self.o_proj = w.linear(f"{prefix}.attn_output.weight")
        if spec.qk_norm != QKNorm.NONE:
            self.q_norm = RMSNorm(w.vector(f"{prefix}.attn_q_norm.weight"), config.rms_norm_eps)
            self.k_norm = RMSNorm(w.vector(f"{prefix}.attn_k_norm.weight"), config.rms_norm_eps)
        self.split = (config.q_size, config.kv_size, config.kv_size)
        self.scale = config.head_dim ** -0.5
        self.rotate = RotaryEmbedding.apply_interleaved if spec.interleaved_rope \
            else RotaryEmbedding.apply

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor],
                positions: torch.Tensor, cache: KVCache, layer: int) -> torch.Tensor:
        c, norm = self.config, self.spec.qk_norm
        num_tokens = x.shape[0]
        qkv = self.qkv_proj(x)                             # [num_tokens, q + 2 * kv size]
        if norm == QKNorm.NONE:                            # fused rotate + store where it can
            q = cache.store_qkv(layer, qkv, rope, self.spec.interleaved_rope, positions)
            if q is not None:
                return self.o_proj(cache.attend_stored(layer, q, positions, self.scale))
        q, k, v = qkv.split(self.split, dim=-1)            # [num_tokens, q/kv size]
        if norm == QKNorm.FULL:
            q, k = self.q_norm(q), self.k_norm(k)
        q = q.reshape(num_tokens, c.num_heads, c.head_dim)
        k = k.reshape(num_tokens, c.num_kv_heads, c.head_dim)
        if norm == QKNorm.PER_HEAD:
            q, k = self.q_norm(q), self.k_norm(k)
        q, k = self.rotate(q, *rope), self.rotate(k, *rope)
        v = v.reshape(num_tokens, c.num_kv_heads, c.head_dim)
        out = cached_attention(q, k, v, positions, cache, layer, self.scale)
        return self.o_proj(out)                            # [num_tokens, hidden]


def build_ffn(config: ModelConfig, spec: DecoderSpec, w: Weights, prefix: str) -> torch.nn.Module:
    """SwiGLU, or MoE when the layer has a router (`ffn_gate_inp`)."""
    def swiglu(suffix: str) -> GatedMLP:
        return GatedMLP(w.fused_linear([f"{prefix}.ffn_gate{suffix}.weight",
                                        f"{prefix}.ffn_up{suffix}.weight"], [None, None]),
                        w.linear(f"{prefix}.ffn_down{suffix}.weight"), Activation.SILU)

    if w.optional(f"{prefix}.ffn_gate_inp.weight") is None:
        return swiglu("")
    if config.extra.get("expert_gating_func", SOFTMAX_GATING) != SOFTMAX_GATING:
        raise UnsupportedArchitectureError(
            f"{config.architecture}: expert gating function "
            f"{int(config.extra['expert_gating_func'])} (sigmoid-style routers) is not supported")
    experts = expert_factory(w.linear_factory)(*(w.get(f"{prefix}.ffn_{p}_exps.weight")
                                                 for p in ("gate", "up", "down")))
    shared = shared_gate = None
    if w.optional(f"{prefix}.ffn_gate_shexp.weight") is not None:
        shared = swiglu("_shexp")
        gate = w.optional(f"{prefix}.ffn_gate_inp_shexp.weight")
        if gate is not None:
            shared_gate = w.linear_factory([_as_row_matrix(gate)], [None])
    normalize = config.expert_weights_norm
    if normalize is None:
        normalize = spec.default_expert_weights_norm
    return MoEFFN(w.linear(f"{prefix}.ffn_gate_inp.weight"), experts,
                  config.num_experts_per_token, normalize, shared, shared_gate)


class DecoderBlock(torch.nn.Module):
    def __init__(self, config: ModelConfig, spec: DecoderSpec, w: Weights, layer: int):
        super().__init__()
        prefix = f"blk.{layer}"
        self.layer = layer
        self.input_norm = RMSNorm(w.vector(f"{prefix}.attn_norm.weight"), config.rms_norm_eps)
        self.attn = DecoderAttention(config, spec, w, prefix)
        self.post_attn_norm = RMSNorm(w.vector(f"{prefix}.ffn_norm.weight"), config.rms_norm_eps)
        self.mlp = build_ffn(config, spec, w, prefix)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor],
                positions: torch.Tensor, cache: KVCache) -> torch.Tensor:
        x = x + self.attn(self.input_norm(x), rope, positions, cache, self.layer)
        return x + self.mlp(self.post_attn_norm(x))


class DecoderModel(torch.nn.Module):
    """Subclasses set `spec` and register their architectures."""
    spec = DecoderSpec()

    def __init__(self, gguf: GGUFModelFile, max_positions: int, linear: LinearFactory):
        super().__init__()
        config = self.config = gguf.config
        if "rope_freqs.weight" in gguf.tensors:
            # Llama 3.1+ per-frequency RoPE factors: computing without them would be silently
            # wrong past the original context, so refuse the file.
            raise UnsupportedArchitectureError(
                f"{gguf.path}: per-frequency RoPE scaling (rope_freqs.weight, Llama 3.1) is not "
                "supported yet")
        w = Weights(gguf, linear)
        self.rotary = RotaryEmbedding(config.head_dim, max_positions, config.rope_theta,
                                      config.rope_scaling_factor)
        self.embed = QuantEmbedding(w.get("token_embd.weight"))
        self.layers = torch.nn.ModuleList(DecoderBlock(config, self.spec, w, i)
                                          for i in range(config.num_layers))
        self.norm = RMSNorm(w.vector("output_norm.weight"), config.rms_norm_eps)
        # Tied embeddings: no output.weight in the file, the embedding matrix is the head.
        head = "output.weight" if w.optional("output.weight") else "token_embd.weight"
        self.lm_head = w.linear(head)
        self.stack = self._build_stack()

    def _build_stack(self) -> DecoderStack | None:
        """Every layer in one C call for few-token steps, where the layers allow it: C kernels,
        packed weights, no QK-norm, SwiGLU FFNs (no MoE)."""
        make = c_decoder_stack()
        if make is None or self.spec.qk_norm != QKNorm.NONE:
            return None
        layers = []
        for i, block in enumerate(self.layers):
            attn, mlp = block.attn, block.mlp
            linears = (attn.qkv_proj, attn.o_proj, getattr(mlp, "gate_up_proj", None),
                       getattr(mlp, "down_proj", None))
            if (not isinstance(mlp, GatedMLP) or mlp.silu_mul is None
                    or not all(isinstance(lin, QuantLinear) for lin in linears)):
                return None
            qkv, o, gate_up, down = (lin.stack_weights() for lin in linears)
            layers.append(LayerWeights(qkv, o, gate_up, down, block.input_norm.weight.data,
                                       block.post_attn_norm.weight.data, cache_index=i))
        c = self.config
        dims = DecoderDims(c.hidden_size, c.num_heads, c.num_kv_heads, c.head_dim,
                           c.intermediate_size, c.rms_norm_eps, self.layers[0].attn.scale,
                           self.spec.interleaved_rope)
        if any(sum(m.rows for m in layer.gate_up.matrices) != 2 * dims.ffn for layer in layers):
            return None
        return make(dims, layers, attn.qkv_proj.num_threads or default_num_threads())

    def forward(self, token_ids: torch.Tensor, positions: torch.Tensor,
                cache: KVCache) -> torch.Tensor:
        """token_ids, positions: [num_tokens] -> final hidden states [num_tokens, hidden]."""
        x = self.embed(token_ids)
        rope = self.rotary.cos_sin(positions)              # shared by every layer
        stack_kv = (cache.stack_kv(positions) if self.stack is not None
                    and x.shape[0] <= MAX_STACK_TOKENS else None)
        if stack_kv is not None:
            x = self.stack(x.contiguous(), *rope, stack_kv)
        else:
            for block in self.layers:
                x = block(x, rope, positions, cache)
        return self.norm(x)

    def compute_logits(self, hidden: torch.Tensor) -> torch.Tensor:  # [num_tokens, hidden]
        return self.lm_head(hidden)                                   # [num_tokens, vocab]
