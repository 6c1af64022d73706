"""GGUF architecture name -> model class. A new family registers itself; nothing else changes."""
from __future__ import annotations

import importlib
from typing import Callable

from fastcoder.errors import UnsupportedArchitectureError

# architecture -> module that registers it; imported lazily so loading one family stays cheap.
ARCHITECTURE_MODULES = {
    "gemma3": "fastcoder.model.gemma3",
    "llama": "fastcoder.model.llama",
    "olmoe": "fastcoder.model.olmoe",
    "qwen2": "fastcoder.model.qwen2",
    "qwen2moe": "fastcoder.model.qwen2moe",
    "qwen3": "fastcoder.model.qwen3",
    "qwen3moe": "fastcoder.model.qwen3moe",
}

_MODEL_CLASSES: dict[str, type] = {}


def register_model(*architectures: str) -> Callable[[type], type]:
    def wrap(cls: type) -> type:
        for arch in architectures:
            _MODEL_CLASSES[arch] = cls
        return cls
    return wrap


def model_class_for(architecture: str) -> type:
    module = ARCHITECTURE_MODULES.get(architecture)
    if module is None:
        supported = ", ".join(sorted(ARCHITECTURE_MODULES))
        raise UnsupportedArchitectureError(
            f"unsupported model architecture '{architecture}' (supported: {supported})")
    importlib.import_module(module)
    return _MODEL_CLASSES[architecture]
