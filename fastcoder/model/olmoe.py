"""OLMoE: QK-norm over the whole q and k projections (not per head), NEOX RoPE, softmax top-k
router without renormalisation (norm_topk_prob=False)."""
from fastcoder.model.decoder import DecoderModel, DecoderSpec, QKNorm
from fastcoder.model.registry import register_model


@register_model("olmoe")
class OlmoeModel(DecoderModel):
    spec = DecoderSpec(qk_norm=QKNorm.FULL, default_expert_weights_norm=False)
