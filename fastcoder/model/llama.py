"""Llama and Mixtral (GGUF arch `llama`, experts when the file has `ffn_gate_inp`): interleaved
RoPE on the converter's permuted q/k rows, SwiGLU or softmax top-k experts renormalised to sum
to 1 (Mixtral's router)."""
from fastcoder.model.decoder import DecoderModel, DecoderSpec
from fastcoder.model.registry import register_model


@register_model("llama")
class LlamaModel(DecoderModel):
    spec = DecoderSpec(interleaved_rope=True, default_expert_weights_norm=True)
