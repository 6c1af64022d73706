"""Qwen2-MoE: qwen2 attention (q/k/v biases), softmax top-k router without renormalisation
(norm_topk_prob=False), plus a shared expert gated by sigmoid(ffn_gate_inp_shexp . x)."""
from fastcoder.model.decoder import DecoderModel, DecoderSpec
from fastcoder.model.registry import register_model


@register_model("qwen2moe")
class Qwen2MoeModel(DecoderModel):
    spec = DecoderSpec(default_expert_weights_norm=False)
