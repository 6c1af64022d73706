"""Qwen2 (Qwen2.5-Coder): the shared pre-norm decoder with q/k/v biases (read from the file),
NEOX RoPE and a SwiGLU MLP: DecoderModel's defaults."""
from fastcoder.model.decoder import DecoderModel, DecoderSpec
from fastcoder.model.registry import register_model


@register_model("qwen2")
class Qwen2Model(DecoderModel):
    spec = DecoderSpec()
