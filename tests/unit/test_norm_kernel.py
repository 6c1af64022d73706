"""fc_rms_norm (C) against torch's rms_norm, and a row's result does not depend on the rows or
threads beside it."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from fastcoder.kernels.norm import c_rms_norm
from fastcoder.layers.norm import RMSNorm


def kernel():
    found = c_rms_norm()
    assert found is not None, "the C kernels are not built: run `pip install -e .`"
    return found


# 13 columns: no full 8-lane vector tail handling; 300 x 1536 crosses the threading threshold
@pytest.mark.parametrize("shape", [(1, 896), (5, 7, 256), (300, 1536), (2, 13)])
def test_matches_torch(shape):
    gen = torch.Generator().manual_seed(sum(shape))
    x = torch.randn(*shape, generator=gen) * 3
    weight = torch.randn(shape[-1], generator=gen)
    got = kernel()(x, weight, 1e-6)
    assert got.shape == x.shape
    torch.testing.assert_close(got, F.rms_norm(x, (shape[-1],), weight, 1e-6),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("num_threads", [1, 2])
def test_rows_do_not_depend_on_the_batch(num_threads):
    gen = torch.Generator().manual_seed(num_threads)
    x = torch.randn(300, 1536, generator=gen)
    weight = torch.randn(1536, generator=gen)
    previous = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        batched = kernel()(x, weight, 1e-5)
        for row in (0, 151, 299):
            assert torch.equal(kernel()(x[row:row + 1], weight, 1e-5)[0], batched[row])
    finally:
        torch.set_num_threads(previous)


def test_module_uses_the_kernel_and_keeps_non_contiguous_inputs_right():
    weight = torch.randn(64)
    norm = RMSNorm(weight, 1e-6)
    assert norm.kernel is not None
    x = torch.randn(64, 10).t()                     # [10, 64], not contiguous
    torch.testing.assert_close(norm(x), F.rms_norm(x, (64,), weight, 1e-6), rtol=1e-5,
                               atol=1e-6)
