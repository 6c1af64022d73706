"""Linear layers over GGUF weights and the quantized embedding lookup."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

from fastcoder.loader.gguf_file import QuantTensor
from fastcoder.quant.dequant import dequantize


# (weights, biases) -> module computing x [W1; W2; ...]^T + [b1; b2; ...]: several projections
# of the same input (q/k/v, gate/up) fused into one call. Models build every projection with one.
LinearFactory = Callable[[Sequence[QuantTensor], Sequence["QuantTensor | None"]], torch.nn.Module]


def fused_bias(weights: Sequence[QuantTensor], biases: Sequence[QuantTensor | None]
               ) -> torch.Tensor | None:
    """Concatenated biases ([sum of out features]); zeros where a projection has none."""
    if all(b is None for b in biases):
        return None
    return torch.cat([torch.from_numpy(b.dequantize()) if b is not None
                      else torch.zeros(w.shape[0]) for w, b in zip(weights, biases)])


class DequantizedLinear(torch.nn.Module):
    """Reference path: the weight is dequantized to fp32 once at load. y = x W^T + b."""

    def __init__(self, weights: Sequence[QuantTensor], biases: Sequence[QuantTensor | None]):
        super().__init__()
        self.in_features = weights[0].shape[1]
        self.weight = torch.cat([torch.from_numpy(w.dequantize()) for w in weights])  # [out, in]
        self.out_features = self.weight.shape[0]
        self.bias = fused_bias(weights, biases)

    def forward(self, x: torch.Tensor) -> torch.Tensor:             # [num_tokens, in]
        return torch.nn.functional.linear(x, self.weight, self.bias)  # [num_tokens, out]


class QuantEmbedding(torch.nn.Module):
    """Embedding rows stay quantized; only the rows looked up are dequantized."""

    def __init__(self, weight: QuantTensor, scale: float = 1.0):
        super().__init__()
        self.weight = weight
        self.scale = scale
        self.num_embeddings, self.embedding_dim = weight.shape

    def forward(self, token_ids: torch.Tensor) -> torch.Tensor:      # [num_tokens]
        ids = token_ids.numpy()
        rows = np.ascontiguousarray(self.weight.data[ids])
        out = dequantize(rows, self.weight.ggml_type, (len(ids), self.embedding_dim))
        out = torch.from_numpy(out)                                   # [num_tokens, hidden]
        return out * self.scale if self.scale != 1.0 else out
