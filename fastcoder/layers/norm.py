"""RMSNorm."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from fastcoder.kernels.norm import c_rms_norm


class RMSNorm(torch.nn.Module):
    def __init__(self, weight: torch.Tensor, eps: float):
        super().__init__()
        # GGUF stores the effective scale (llama.cpp's converter already adds gemma's +1).
        # [hidden] fp32, contiguous: the C kernel reads it by pointer
        self.weight = torch.nn.Parameter(weight.float().contiguous(), requires_grad=False)
        self.eps = eps
        self.kernel = c_rms_norm()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [..., hidden]
        if self.kernel is not None and x.dtype == torch.float32:
            return self.kernel(x, self.weight, self.eps)
        return F.rms_norm(x, self.weight.shape, self.weight, self.eps)
