"""Linear layers on packed GGUF blocks (fastcoder.kernels): no dequantized copy of the weights."""
from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np
import torch

from fastcoder.kernels.pack import pack_weight
from fastcoder.kernels.qmatmul import bind_matmul, bind_row_matmul, matmul
from fastcoder.layers.linear import fused_bias
from fastcoder.loader.gguf_file import QuantTensor
from fastcoder.loader.pages import release_pages


class QuantLinear(torch.nn.Module):
    """y = x [W1; W2; ...]^T + b with each run of same-type weights packed into one matrix, so
    a fused q/k/v or gate/up projection is one kernel call when the types agree. Single-token
    calls run on preallocated buffers through a pre-bound kernel call."""

    def __init__(self, weights: Sequence[QuantTensor], biases: Sequence[QuantTensor | None],
                 num_threads: int | None = None):
        super().__init__()
        self.in_features = weights[0].shape[1]
        self.num_threads = num_threads
        self.matrices = []
        for _, group in itertools.groupby(weights, key=lambda w: w.ggml_type):
            group = list(group)
            raw = group[0].data if len(group) == 1 else np.concatenate([w.data for w in group])
            rows = sum(w.shape[0] for w in group)
            self.matrices.append(pack_weight(raw, group[0].ggml_type, (rows, self.in_features)))
            for w in group:
                release_pages(w.data)
        self.out_features = sum(m.rows for m in self.matrices)
        self.bias = fused_bias(weights, biases)
        # Decode buffers: x [1, in], y [1, out]; each matrix writes its contiguous slice of y.
        self.x_one = torch.zeros(1, self.in_features)
        self.y_one = torch.zeros(1, self.out_features)
        x_np, y_np = self.x_one.numpy(), self.y_one.numpy()
        offsets = np.cumsum([0] + [m.rows for m in self.matrices])
        self.decode_calls = [bind_matmul(x_np, m, y_np[:, a:b], num_threads)
                             for m, a, b in zip(self.matrices, offsets[:-1], offsets[1:])]
        # The same calls reading the input row in place (C backend): no copy into x_one.
        row_calls = [bind_row_matmul(m, y_np[:, a:b], num_threads)
                     for m, a, b in zip(self.matrices, offsets[:-1], offsets[1:])]
        self.row_calls = row_calls if all(c is not None for c in row_calls) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:              # [num_tokens, in]
        if x.shape[0] == 1:
            if self.row_calls is not None and x.dtype == torch.float32 and x.is_contiguous():
                address = x.data_ptr()
                for call in self.row_calls:
                    call(address)
            else:
                self.x_one.copy_(x)
                for call in self.decode_calls:
                    call()
            y = self.y_one                                            # reused next call
        else:
            x_np = x.contiguous().numpy()
            parts = [torch.from_numpy(matmul(x_np, m, None, self.num_threads))
                     for m in self.matrices]
            y = parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)
        return y + self.bias if self.bias is not None else y          # [num_tokens, out]
