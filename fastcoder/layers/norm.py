"""RMSNorm."""
from __future__ import annotations

import torch


class RMSNorm(torch.nn.Module):
    def __init__(self, weight: torch.Tensor, eps: float, offset: float = 0.0):
        super().__init__()
        # gemma stores (weight - 1); `offset` adds it back once at load.
        self.weight = torch.nn.Parameter(weight + offset, requires_grad=False)  # [hidden]
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [..., hidden]
        variance = x.pow(2).mean(-1, keepdim=True)
        return x * torch.rsqrt(variance + self.eps) * self.weight
