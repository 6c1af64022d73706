"""ModelConfig: everything the model layer needs, read from GGUF metadata alone."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ModelConfig:
    architecture: str                 # GGUF general.architecture, e.g. "qwen2"
    num_layers: int
    hidden_size: int
    intermediate_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int
    context_length: int
    rms_norm_eps: float
    rope_theta: float
    rope_scaling_factor: float = 1.0
    tie_word_embeddings: bool = False
    # Sparse attention (gemma3): window in tokens and the period of global layers; 0 = none.
    sliding_window: int = 0
    sliding_window_pattern: int = 0
    # Mixture-of-Experts; 0 experts means dense.
    num_experts: int = 0
    num_experts_per_token: int = 0
    expert_intermediate_size: int = 0
    # Shared expert (qwen2moe): its FFN width; 0 = none.
    expert_shared_intermediate_size: int = 0
    # Renormalise the top-k router probabilities to sum to 1; None = the family's default
    # (files only record it when a converter chose to).
    expert_weights_norm: bool | None = None
    name: str = ""
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def q_size(self) -> int:
        return self.num_heads * self.head_dim

    @property
    def kv_size(self) -> int:
        return self.num_kv_heads * self.head_dim
