"""Qwen3 (dense): per-head QK-norm, no q/k/v biases, NEOX RoPE, SwiGLU."""
from fastcoder.model.decoder import DecoderModel, DecoderSpec, QKNorm
from fastcoder.model.registry import register_model


@register_model("qwen3")
class Qwen3Model(DecoderModel):
    spec = DecoderSpec(qk_norm=QKNorm.PER_HEAD)
