"""fc_silu_mul against torch's silu(gate) * up, and independent of the number of rows."""
from __future__ import annotations

import numpy as np
import torch

from fastcoder.kernels.activation import c_silu_mul


def test_matches_torch_and_is_row_invariant():
    kernel = c_silu_mul()
    assert kernel is not None, "the C backend is not in use: fc_silu_mul cannot be tested"
    rng = np.random.default_rng(0)
    ffn = 8 * 37 + 5                                     # SIMD body and a scalar tail
    gate_up = torch.from_numpy((rng.standard_normal((9, 2 * ffn)) * 6).astype(np.float32))
    gate_up[0, :6] = torch.tensor([0.0, -0.0, 90.0, -90.0, 1e-30, -200.0])
    got = kernel(gate_up)
    gate, up = gate_up.double().chunk(2, dim=-1)
    want = torch.nn.functional.silu(gate) * up
    scale = gate.abs() * up.abs() + 1e-30
    assert ((got.double() - want).abs() / scale).max() < 4e-7   # a few ulp of |gate * up|
    for row in range(9):                                  # a row alone gives the same bits
        assert torch.equal(kernel(gate_up[row:row + 1]), got[row:row + 1])
