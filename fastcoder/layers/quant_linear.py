"""Linear layers on packed GGUF blocks (fastcoder.kernels): no dequantized copy of the weights."""
from __future__ import annotations

import itertools
from typing import Callable, Sequence

import numpy as np
import torch

from fastcoder.kernels.decoder_stack import LinearWeights
from fastcoder.kernels.pack import pack_weight
from fastcoder.kernels.qmatmul import bind_matmul, bind_row_matmul, matmul
from fastcoder.layers.linear import fused_bias
from fastcoder.loader.gguf_file import QuantTensor
from fastcoder.loader.pages import release_pages


class QuantLinear(torch.nn.Module):
    """y = x [W1; W2; ...]^T + b with each run of same-type weights packed into one matrix, so
    a fused q/k/v or gate/up projection is one kernel call when the types agree. Single-token
    calls write a preallocated output through pre-bound kernel calls."""

    def __init__(self, weights: Sequence[QuantTensor], biases: Sequence[QuantTensor | None],
                 num_threads: int | None = None):
        super().__init__()
        self.in_features = weights[0].shape[1]
        self.num_threads = num_threads
        self.matrices = []
        for _, group in itertools.groupby(weights, key=lambda w: w.ggml_type):
            group = list(group)
            rows = sum(w.shape[0] for w in group)
            self.matrices.append(pack_weight([w.data for w in group], group[0].ggml_type,
                                             (rows, self.in_features)))
            for w in group:
                release_pages(w.data)
        self.out_features = sum(m.rows for m in self.matrices)
        self.bias = fused_bias(weights, biases)
        # Decode output y [1, out], preallocated; each matrix writes its contiguous slice of it.
        self.y_one = torch.zeros(1, self.out_features)
        y_np = self.y_one.numpy()
        offsets = np.cumsum([0] + [m.rows for m in self.matrices])
        outs = [y_np[:, a:b] for a, b in zip(offsets[:-1], offsets[1:])]
        self.decode = (_decode_by_address(self.matrices, outs, num_threads)
                       or _decode_by_copy(self.matrices, outs, self.in_features, num_threads))

    def forward(self, x: torch.Tensor) -> torch.Tensor:              # [num_tokens, in]
        if x.shape[0] == 1:
            self.decode(x)
            y = self.y_one                                            # reused next call
        else:
            x_np = x.contiguous().numpy()
            parts = [torch.from_numpy(matmul(x_np, m, None, self.num_threads))
                     for m in self.matrices]
            y = parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)
        return y + self.bias if self.bias is not None else y          # [num_tokens, out]

    def stack_weights(self) -> LinearWeights:
        """The packed weights for a one-call decoder stack (fastcoder.kernels.decoder_stack)."""
        bias = self.bias.float().contiguous() if self.bias is not None else None
        return LinearWeights(tuple(self.matrices), bias)


DecodeCall = Callable[[torch.Tensor], None]   # x [1, in] -> the bound outputs


def _decode_by_address(matrices, outs, num_threads) -> DecodeCall | None:
    """Kernel calls that read the input row where it is (C backend); None elsewhere."""
    calls = [bind_row_matmul(m, out, num_threads) for m, out in zip(matrices, outs)]
    if any(call is None for call in calls):
        return None

    def decode(x: torch.Tensor) -> None:
        if x.dtype != torch.float32 or not x.is_contiguous():   # never, in a decoder layer
            x = x.float().contiguous()
        address = x.data_ptr()
        for call in calls:
            call(address)
    return decode


def _decode_by_copy(matrices, outs, in_features: int, num_threads) -> DecodeCall:
    """Kernel calls bound to a preallocated input row that each step copies into."""
    x_one = torch.zeros(1, in_features)
    calls = [bind_matmul(x_one.numpy(), m, out, num_threads) for m, out in zip(matrices, outs)]

    def decode(x: torch.Tensor) -> None:
        x_one.copy_(x)
        for call in calls:
            call()
    return decode
