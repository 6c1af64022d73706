"""RMSNorm."""
from __future__ import annotations

import torch
import torch.nn.functional as F


class RMSNorm(torch.nn.Module):
    def __init__(self, weight: torch.Tensor, eps: float, offset: float = 0.0):
        super().__init__()
        # gemma stores (weight - 1); `offset` adds it back once at load.
        self.weight = torch.nn.Parameter(weight + offset, requires_grad=False)  # [hidden]
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [..., hidden]
        return F.rms_norm(x, self.weight.shape, self.weight, self.eps)
