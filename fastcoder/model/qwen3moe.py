"""Qwen3-MoE (Qwen3-Coder-30B-A3B): qwen3 attention, softmax top-k router with the top-k
weights renormalised (transformers norm_topk_prob=True), no shared expert."""
from fastcoder.model.decoder import DecoderModel, DecoderSpec, QKNorm
from fastcoder.model.registry import register_model


@register_model("qwen3moe")
class Qwen3MoeModel(DecoderModel):
    spec = DecoderSpec(qk_norm=QKNorm.PER_HEAD, default_expert_weights_norm=True)
