"""RMSNorm."""
from __future__ import annotations

import torch
import torch.nn.functional as F


class RMSNorm(torch.nn.Module):
    def __init__(self, weight: torch.Tensor, eps: float):
        super().__init__()
        # GGUF stores the effective scale (llama.cpp's converter already adds gemma's +1).
        self.weight = torch.nn.Parameter(weight, requires_grad=False)  # [hidden]
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [..., hidden]
        return F.rms_norm(x, self.weight.shape, self.weight, self.eps)
