"""Linear layers over GGUF weights and the quantized embedding lookup."""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from fastcoder.loader.gguf_file import QuantTensor
from fastcoder.quant.dequant import dequantize


# (weight, bias) -> module computing x W^T + b; models build every projection through one.
LinearFactory = Callable[[QuantTensor, "QuantTensor | None"], torch.nn.Module]


class DequantizedLinear(torch.nn.Module):
    """Reference path: the weight is dequantized to fp32 once at load. y = x W^T + b."""

    def __init__(self, weight: QuantTensor, bias: QuantTensor | None = None):
        super().__init__()
        self.in_features, self.out_features = weight.shape[1], weight.shape[0]
        self.weight = torch.from_numpy(weight.dequantize())         # [out, in]
        self.bias = torch.from_numpy(bias.dequantize()) if bias is not None else None

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
