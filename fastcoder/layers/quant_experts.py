"""MoE experts on packed GGUF blocks: each projection's experts packed as one matrix, and only
the selected experts' rows read (fastcoder.kernels.experts)."""
from __future__ import annotations

import numpy as np
import torch

from fastcoder.kernels.experts import expert_view
from fastcoder.kernels.pack import QuantMatrix, pack_weight
from fastcoder.kernels.qmatmul import matmul, matmul_experts
from fastcoder.layers.moe import group_by_expert, swiglu
from fastcoder.loader.gguf_file import QuantTensor
from fastcoder.loader.pages import release_pages


def _pack_experts(tensors: list[QuantTensor]) -> QuantMatrix:
    """[num_experts, rows_i, cols] tensors of one type -> one [num_experts * sum(rows_i), cols]
    matrix whose expert e holds the tensors' rows of expert e back to back (gate then up)."""
    num_experts, _, cols = tensors[0].shape
    parts = [t.data.reshape(num_experts, t.shape[1], -1) for t in tensors]
    raw = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
    rows = sum(t.shape[1] for t in tensors)
    packed = pack_weight(raw.reshape(num_experts * rows, -1), tensors[0].ggml_type,
                         (num_experts * rows, cols))
    for t in tensors:
        release_pages(t.data)
    return packed


class QuantExperts(torch.nn.Module):
    """gate/up/down expert tensors [num_experts, ffn, hidden] / [num_experts, hidden, ffn]."""

    def __init__(self, gate: QuantTensor, up: QuantTensor, down: QuantTensor,
                 num_threads: int | None = None):
        super().__init__()
        self.num_experts, self.ffn, self.hidden = gate.shape
        self.num_threads = num_threads
        # gate and up of an expert as one [2 * ffn, hidden] block when their types agree: one
        # kernel call computes both (the common case); otherwise two calls.
        fused = gate.ggml_type == up.ggml_type
        self.gate_up = [_pack_experts([gate, up])] if fused else \
            [_pack_experts([gate]), _pack_experts([up])]
        self.gate_up_rows = [m.rows // self.num_experts for m in self.gate_up]
        self.down = _pack_experts([down])

    def _gate_up(self, x: np.ndarray, expert_ids: np.ndarray) -> torch.Tensor:
        """x [1, hidden] -> [top_k, 2 * ffn] (gate first) for the selected experts."""
        parts = [matmul_experts(x, m, r, expert_ids, np.empty((len(expert_ids), r), np.float32),
                                self.num_threads) for m, r in zip(self.gate_up, self.gate_up_rows)]
        return torch.from_numpy(parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1))

    def _decode(self, x: torch.Tensor, expert_ids: torch.Tensor) -> torch.Tensor:
        ids = expert_ids[0].to(torch.int32).numpy()                  # [top_k]
        h = swiglu(self._gate_up(x.contiguous().numpy(), ids))         # [top_k, ffn]
        out = np.empty((len(ids), self.hidden), np.float32)
        matmul_experts(h.numpy(), self.down, self.hidden, ids, out, self.num_threads)
        return torch.from_numpy(out).unsqueeze(0)                    # [1, top_k, hidden]

    def _expert_ffn(self, x: np.ndarray, expert: int) -> np.ndarray:
        """x [n, hidden] -> [n, hidden] through expert `expert` (GEMM over its n tokens)."""
        parts = [matmul(x, expert_view(m, r, expert), None, self.num_threads)
                 for m, r in zip(self.gate_up, self.gate_up_rows)]
        gate_up = torch.from_numpy(parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1))
        h = swiglu(gate_up).numpy()                                  # [n, ffn]
        return matmul(h, expert_view(self.down, self.hidden, expert), None, self.num_threads)

    def forward(self, x: torch.Tensor, expert_ids: torch.Tensor) -> torch.Tensor:
        """x [num_tokens, hidden], expert_ids [num_tokens, top_k] -> [num_tokens, top_k, hidden]."""
        num_tokens, top_k = expert_ids.shape
        if num_tokens == 1:
            return self._decode(x, expert_ids)
        out = torch.empty(num_tokens * top_k, self.hidden)
        groups = group_by_expert(expert_ids)
        for expert, start, count in zip(groups.expert_ids, groups.starts, groups.counts):
            slots = groups.order[start:start + count]
            xs = x[slots // top_k].contiguous().numpy()              # [count, hidden]
            out[slots] = torch.from_numpy(self._expert_ffn(xs, expert))
        return out.view(num_tokens, top_k, -1)
