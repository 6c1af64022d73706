"""Named access to a GGUF file's tensors for model constructors."""
from __future__ import annotations

from typing import Sequence

import torch

from fastcoder.errors import ModelFileError
from fastcoder.layers.linear import LinearFactory
from fastcoder.loader.gguf_file import GGUFModelFile, QuantTensor


class Weights:
    """Named access to a GGUF file's tensors with a clear error for a missing one, and the
    linear-layer implementation the engine chose."""

    def __init__(self, gguf: GGUFModelFile, linear: LinearFactory):
        self.gguf = gguf
        self.linear_factory = linear

    def linear(self, name: str, bias: str | None = None) -> torch.nn.Module:
        return self.linear_factory([self.get(name)], [self.optional(bias) if bias else None])

    def fused_linear(self, names: Sequence[str], biases: Sequence[str | None]) -> torch.nn.Module:
        """One projection computing all of `names` (outputs concatenated in that order)."""
        return self.linear_factory([self.get(n) for n in names],
                                   [self.optional(b) if b else None for b in biases])

    def get(self, name: str) -> QuantTensor:
        tensor = self.gguf.tensors.get(name)
        if tensor is None:
            raise ModelFileError(f"{self.gguf.path}: missing tensor {name}")
        return tensor

    def optional(self, name: str) -> QuantTensor | None:
        return self.gguf.tensors.get(name)

    def vector(self, name: str) -> torch.Tensor:
        return torch.from_numpy(self.get(name).dequantize())
