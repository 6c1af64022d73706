"""Mixture-of-Experts FFN: softmax top-k router, experts grouped by token, optional shared expert.

Routing follows transformers (Mixtral/Qwen2-MoE/Qwen3-MoE/OLMoE TopKRouter) and llama.cpp's
build_moe_ffn: softmax over all experts in fp32, top-k, then optionally renormalise the k
probabilities to sum to 1 (the family decides; see ModelConfig.expert_weights_norm).

Each (token, slot) pair's expert output is written to its own slot and the slots are summed in
slot order, so a token's result does not depend on which other tokens share its batch (the
kernels are batch-invariant; a scatter-add in expert order would not be)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from fastcoder.layers.linear import DequantizedLinear, LinearFactory
from fastcoder.loader.gguf_file import QuantTensor


@dataclass(frozen=True)
class ExpertGroups:
    """(token, slot) pairs of a batch sorted by expert: rows order[starts[i]:starts[i]+counts[i]]
    of the flat [num_tokens * top_k] slot array go to expert expert_ids[i]."""
    order: torch.Tensor        # [num_tokens * top_k] flat slot indices, grouped by expert
    expert_ids: list[int]      # active experts, ascending
    starts: list[int]
    counts: list[int]


def route(logits: torch.Tensor, top_k: int, normalize: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """logits [num_tokens, num_experts] -> (weights [num_tokens, top_k] fp32, expert ids
    [num_tokens, top_k] int64), highest probability first."""
    probs = torch.softmax(logits.float(), dim=-1)
    weights, expert_ids = torch.topk(probs, top_k, dim=-1)
    if normalize:
        weights = weights / weights.sum(dim=-1, keepdim=True)
    return weights, expert_ids


def group_by_expert(expert_ids: torch.Tensor) -> ExpertGroups:
    """expert_ids [num_tokens, top_k] -> the slots grouped by expert (stable: token order kept
    inside a group)."""
    flat = expert_ids.flatten()
    order = torch.argsort(flat, stable=True)
    active, counts = torch.unique_consecutive(flat[order], return_counts=True)
    counts_list = counts.tolist()
    starts = np.concatenate([[0], np.cumsum(counts_list)[:-1]]).astype(int).tolist()
    return ExpertGroups(order, active.tolist(), starts, counts_list)


def combine(slot_outputs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """slot_outputs [num_tokens, top_k, hidden], weights [num_tokens, top_k] -> [num_tokens,
    hidden]: weighted sum in slot order (elementwise ops only, so bitwise batch-invariant)."""
    out = slot_outputs[:, 0] * weights[:, 0:1]
    for slot in range(1, slot_outputs.shape[1]):
        out += slot_outputs[:, slot] * weights[:, slot:slot + 1]
    return out


def swiglu(gate_up: torch.Tensor) -> torch.Tensor:
    """[n, 2 * ffn] (gate first) -> silu(gate) * up: [n, ffn], contiguous."""
    gate, up = gate_up.chunk(2, dim=-1)
    return F.silu(gate).mul_(up)


class DenseExperts(torch.nn.Module):
    """Reference experts: weights dequantized to fp32 at load, one torch matmul per active expert
    over the tokens routed to it."""

    def __init__(self, gate: QuantTensor, up: QuantTensor, down: QuantTensor):
        super().__init__()
        # [num_experts, 2 * ffn, hidden] and [num_experts, hidden, ffn]
        self.gate_up = torch.cat([torch.from_numpy(gate.dequantize()),
                                  torch.from_numpy(up.dequantize())], dim=1)
        self.down = torch.from_numpy(down.dequantize())

    def forward(self, x: torch.Tensor, expert_ids: torch.Tensor) -> torch.Tensor:
        """x [num_tokens, hidden], expert_ids [num_tokens, top_k] -> [num_tokens, top_k, hidden]."""
        num_tokens, top_k = expert_ids.shape
        out = torch.empty(num_tokens * top_k, x.shape[1])
        groups = group_by_expert(expert_ids)
        for expert, start, count in zip(groups.expert_ids, groups.starts, groups.counts):
            slots = groups.order[start:start + count]
            h = swiglu(F.linear(x[slots // top_k], self.gate_up[expert]))   # [count, ffn]
            out[slots] = F.linear(h, self.down[expert])                     # [count, hidden]
        return out.view(num_tokens, top_k, -1)


def _quant_experts(num_threads: int | None):
    from fastcoder.layers.quant_experts import QuantExperts   # loads the compiled kernels
    return lambda gate, up, down: QuantExperts(gate, up, down, num_threads)


def expert_factory(linear: LinearFactory):
    """The experts implementation matching the engine's linear layers: fp32 torch for the
    reference path, packed quantized blocks for the kernel path."""
    cls = getattr(linear, "func", linear)               # functools.partial(QuantLinear, ...)
    if cls is DequantizedLinear:
        return DenseExperts
    return _quant_experts(getattr(linear, "keywords", {}).get("num_threads"))


class MoEFFN(torch.nn.Module):
    """router -> top-k experts -> weighted sum, plus a sigmoid-gated shared expert if given."""

    def __init__(self, router: torch.nn.Module, experts: torch.nn.Module, top_k: int,
                 normalize: bool, shared: torch.nn.Module | None = None,
                 shared_gate: torch.nn.Module | None = None):
        super().__init__()
        self.router, self.experts, self.shared = router, experts, shared
        self.top_k, self.normalize = top_k, normalize
        self.shared_gate = shared_gate                  # hidden -> 1 linear, or None

    def forward(self, x: torch.Tensor) -> torch.Tensor:              # [num_tokens, hidden]
        weights, expert_ids = route(self.router(x), self.top_k, self.normalize)
        out = combine(self.experts(x, expert_ids), weights)          # [num_tokens, hidden]
        if self.shared is not None:
            shared = self.shared(x)
            if self.shared_gate is not None:
                shared = shared * torch.sigmoid(self.shared_gate(x))   # [num_tokens, 1] gate
            out += shared
        return out
