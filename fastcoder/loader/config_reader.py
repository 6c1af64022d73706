"""ModelConfig from GGUF metadata alone: `{arch}.*` keys, no per-model constants."""
from __future__ import annotations

from typing import Any

from fastcoder.config import ModelConfig
from fastcoder.errors import ModelFileError


def config_from_metadata(metadata: dict[str, Any], source: str = "") -> ModelConfig:
    arch = metadata.get("general.architecture")
    if not arch:
        raise ModelFileError(f"{source}: GGUF metadata has no general.architecture")

    def key(suffix: str, default: Any = None, required: bool = False) -> Any:
        value = metadata.get(f"{arch}.{suffix}", default)
        if required and value is None:
            raise ModelFileError(f"{source}: GGUF metadata lacks {arch}.{suffix}")
        return value

    hidden_size = int(key("embedding_length", required=True))
    num_heads = int(key("attention.head_count", required=True))
    num_kv_heads = key("attention.head_count_kv", num_heads)
    if isinstance(num_kv_heads, list):  # per-layer lists exist in some files; all equal here
        num_kv_heads = max(num_kv_heads)
    tokens = metadata.get("tokenizer.ggml.tokens") or []
    sliding_window = int(key("attention.sliding_window", 0) or 0)
    pattern = key("attention.sliding_window_pattern", 0)   # a per-layer list in gemma3n files
    # Optional keys only some converters write; families fall back to their published defaults.
    extra = {name: float(value) for name, value in (
        ("rope_theta_swa", key("rope.freq_base_swa")),
        ("final_logit_softcapping", key("final_logit_softcapping")),
        ("expert_gating_func", key("expert_gating_func"))) if value is not None}
    return ModelConfig(
        architecture=arch,
        num_layers=int(key("block_count", required=True)),
        hidden_size=hidden_size,
        intermediate_size=int(key("feed_forward_length", 0) or 0),
        num_heads=num_heads,
        num_kv_heads=int(num_kv_heads),
        head_dim=int(key("attention.key_length", hidden_size // num_heads)),
        vocab_size=int(key("vocab_size", len(tokens)) or len(tokens)),
        context_length=int(key("context_length", 4096)),
        rms_norm_eps=float(key("attention.layer_norm_rms_epsilon", 1e-6)),
        rope_theta=float(key("rope.freq_base", 10000.0)),
        rope_scaling_factor=float(key("rope.scaling.factor", 1.0) or 1.0),
        sliding_window=sliding_window,
        sliding_window_pattern=0 if isinstance(pattern, list) else int(pattern or 0),
        num_experts=int(key("expert_count", 0) or 0),
        num_experts_per_token=int(key("expert_used_count", 0) or 0),
        expert_intermediate_size=int(key("expert_feed_forward_length", 0) or 0),
        expert_shared_intermediate_size=int(key("expert_shared_feed_forward_length", 0) or 0),
        expert_weights_norm=None if key("expert_weights_norm") is None
        else bool(key("expert_weights_norm")),
        name=str(metadata.get("general.name", "")),
        extra=extra,
    )
