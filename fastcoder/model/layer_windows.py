"""Which attention layers of a model are local (sliding-window): the KV caches size them."""
from __future__ import annotations

from fastcoder.config import ModelConfig
from fastcoder.model.registry import model_class_for


def layer_windows(config: ModelConfig) -> tuple[int, ...]:
    """Sliding window (tokens; 0 = global attention) of each layer, from the model class's
    `layer_windows(config)` when the family has local layers."""
    windows = getattr(model_class_for(config.architecture), "layer_windows", None)
    return tuple(windows(config)) if windows else (0,) * config.num_layers
