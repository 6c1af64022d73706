"""MoE building blocks: the router (softmax top-k, optional renormalisation), grouping tokens by
expert against a dense all-experts loop, the expert-selective kernel against per-expert matmuls,
and batched vs one-token expert evaluation (bitwise, the batching engine relies on it)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fastcoder.bench.kernels import random_weight
from fastcoder.kernels import BACKENDS, matmul, matmul_experts, pack_weight
from fastcoder.kernels.experts import expert_view
from fastcoder.layers.moe import DenseExperts, combine, group_by_expert, route
from fastcoder.layers.quant_experts import QuantExperts
from fastcoder.loader.gguf_file import QuantTensor
from fastcoder.quant import GGMLType
from gguf import GGMLQuantizationType, quants

NUM_EXPERTS, FFN, HIDDEN, TOP_K = 8, 32, 64, 3


def expert_tensor(name: str, shape: tuple[int, int, int], qtype: str, seed: int) -> QuantTensor:
    data = np.random.default_rng(seed).standard_normal(shape).astype(np.float32) * 0.3
    if qtype == "F32":
        return QuantTensor(name, GGMLType.F32, shape, data)
    raw = quants.quantize(data, GGMLQuantizationType[qtype])
    return QuantTensor(name, GGMLType[qtype], shape, raw.reshape(shape[0] * shape[1], -1))


def experts_for(qtype: str) -> tuple[QuantTensor, QuantTensor, QuantTensor]:
    return (expert_tensor("gate", (NUM_EXPERTS, FFN, HIDDEN), qtype, 1),
            expert_tensor("up", (NUM_EXPERTS, FFN, HIDDEN), qtype, 2),
            expert_tensor("down", (NUM_EXPERTS, HIDDEN, FFN), qtype, 3))


def test_route_softmax_topk_and_renormalisation():
    logits = torch.tensor([[0.0, 2.0, 1.0, -1.0], [3.0, 0.0, 0.0, 2.5]])
    probs = torch.softmax(logits, dim=-1)
    weights, ids = route(logits, 2, normalize=False)
    assert ids.tolist() == [[1, 2], [0, 3]]
    assert torch.allclose(weights, probs.gather(1, ids))
    norm_weights, norm_ids = route(logits, 2, normalize=True)
    assert torch.equal(norm_ids, ids)
    assert torch.allclose(norm_weights.sum(-1), torch.ones(2))
    assert torch.allclose(norm_weights, weights / weights.sum(-1, keepdim=True))


def test_grouping_covers_each_slot_once_in_expert_order():
    ids = torch.tensor([[3, 0], [0, 5], [3, 1]])
    groups = group_by_expert(ids)
    assert groups.expert_ids == [0, 1, 3, 5] and groups.counts == [2, 1, 2, 1]
    assert groups.order.tolist() == [1, 2, 5, 0, 4, 3]   # flat slots, token order per expert


def dense_all_experts(x, gate, up, down, ids, weights) -> torch.Tensor:
    """Every expert on every token, then pick: the definition the grouped form must equal."""
    g, u, d = (torch.from_numpy(t.dequantize()) for t in (gate, up, down))
    every = torch.stack([F.linear(F.silu(F.linear(x, g[e])) * F.linear(x, u[e]), d[e])
                         for e in range(NUM_EXPERTS)], dim=1)      # [tokens, experts, hidden]
    picked = every.gather(1, ids[:, :, None].expand(-1, -1, HIDDEN))
    return (picked * weights[:, :, None]).sum(1)


def test_dense_experts_equal_all_experts_loop():
    gate, up, down = experts_for("F32")
    x = torch.randn(7, HIDDEN, generator=torch.Generator().manual_seed(0))
    weights, ids = route(torch.randn(7, NUM_EXPERTS, generator=torch.Generator().manual_seed(1)),
                         TOP_K, normalize=True)
    ours = combine(DenseExperts(gate, up, down)(x, ids), weights)
    assert torch.allclose(ours, dense_all_experts(x, gate, up, down, ids, weights), atol=1e-5)


@pytest.mark.parametrize("backend", list(BACKENDS))
@pytest.mark.parametrize("qtype", ["Q8_0", "Q4_0", "Q4_K", "F32"])
def test_matmul_experts_equals_per_expert_matmul(monkeypatch, backend, qtype):
    from fastcoder.kernels import qmatmul
    monkeypatch.setattr(qmatmul, "get_backend", lambda name=None: BACKENDS[backend]())
    cols = 256                                                     # one K-quant block
    rng = np.random.default_rng(0)
    raw = random_weight(GGMLType[qtype], NUM_EXPERTS * FFN, cols)
    w = pack_weight(raw, GGMLType[qtype], (NUM_EXPERTS * FFN, cols))
    ids = np.array([5, 0, 7], dtype=np.int32)
    for x in (rng.standard_normal((1, cols)), rng.standard_normal((3, cols))):
        x = x.astype(np.float32)
        out = matmul_experts(x, w, FFN, ids, np.empty((3, FFN), np.float32))
        for slot, e in enumerate(ids):
            xs = x[:1] if len(x) == 1 else x[slot:slot + 1]
            np.testing.assert_array_equal(out[slot], matmul(xs, expert_view(w, FFN, e))[0])


@pytest.mark.parametrize("qtype", ["Q8_0", "Q4_0", "F32"])
def test_quant_experts_batched_equal_one_token_and_reference(qtype):
    gate, up, down = experts_for(qtype)
    experts = QuantExperts(gate, up, down)
    x = torch.randn(9, HIDDEN, generator=torch.Generator().manual_seed(2))
    ids = torch.topk(torch.randn(9, NUM_EXPERTS, generator=torch.Generator().manual_seed(3)),
                     TOP_K).indices
    batched = experts(x, ids)                                      # grouped GEMMs
    for t in range(9):
        assert torch.equal(batched[t], experts(x[t:t + 1], ids[t:t + 1])[0])   # selective GEMV
    reference = DenseExperts(gate, up, down)(x, ids)
    tolerance = 1e-5 if qtype == "F32" else 0.05                   # int8 activations
    assert torch.allclose(batched, reference, atol=tolerance * reference.abs().max())
