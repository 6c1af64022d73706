"""Activations by name and the gated MLP that families share: down(act(gate(x)) * up(x))."""
from __future__ import annotations

from enum import Enum
from functools import partial
from typing import Callable

import torch
import torch.nn.functional as F

from fastcoder.kernels.activation import c_silu_mul


class Activation(Enum):
    SILU = "silu"                       # SwiGLU: llama, qwen2
    GELU_TANH = "gelu_pytorch_tanh"     # GeGLU with the tanh approximation: gemma


ACTIVATION_FNS: dict[Activation, Callable[[torch.Tensor], torch.Tensor]] = {
    Activation.SILU: F.silu,
    Activation.GELU_TANH: partial(F.gelu, approximate="tanh"),
}


class GatedMLP(torch.nn.Module):
    """gate_up_proj computes gate and up fused ([num_tokens, 2 * ffn]), gate first."""

    def __init__(self, gate_up_proj: torch.nn.Module, down_proj: torch.nn.Module,
                 activation: Activation):
        super().__init__()
        self.gate_up_proj, self.down_proj = gate_up_proj, down_proj
        self.act = ACTIVATION_FNS[activation]
        # SwiGLU's activation in one C call on the fast path (prefill and decode alike)
        self.silu_mul = c_silu_mul() if activation == Activation.SILU else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:              # [num_tokens, hidden]
        gate_up = self.gate_up_proj(x)                                # [num_tokens, 2 * ffn]
        if self.silu_mul is not None and gate_up.dtype == torch.float32:
            return self.down_proj(self.silu_mul(gate_up))
        gate, up = gate_up.chunk(2, dim=-1)                           # [num_tokens, ffn] each
        return self.down_proj(self.act(gate).mul_(up))
