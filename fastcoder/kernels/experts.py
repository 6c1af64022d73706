"""Expert-selective matmul over one packed matrix holding all experts of a MoE projection.

A [num_experts, expert_rows, cols] GGUF expert tensor is packed as one [num_experts *
expert_rows, cols] QuantMatrix; expert_rows % 8 == 0, so no 8-row tile straddles two experts and
expert e is the contiguous tile range [e * expert_rows / 8, (e + 1) * expert_rows / 8). Decode
reads only the selected experts' tiles, in one kernel call where the backend has one.
"""
from __future__ import annotations

import numpy as np

from fastcoder.kernels.pack import FLOAT_DTYPES, TILE_ROWS, QuantMatrix


def expert_view(w: QuantMatrix, expert_rows: int, expert: int) -> QuantMatrix:
    """Expert `expert`'s [expert_rows, cols] slice of an all-experts matrix (no copy)."""
    if expert_rows % TILE_ROWS:
        raise ValueError(f"expert_rows must be a multiple of {TILE_ROWS}, got {expert_rows}")
    per = expert_rows if w.ggml_type in FLOAT_DTYPES else expert_rows // TILE_ROWS
    return QuantMatrix(w.ggml_type, expert_rows, w.cols, w.data[expert * per:(expert + 1) * per])


def check_expert_args(x: np.ndarray, w: QuantMatrix, expert_rows: int, expert_ids: np.ndarray,
                      out: np.ndarray) -> None:
    num_selected = len(expert_ids)
    if x.dtype != np.float32 or not x.flags.c_contiguous or x.ndim != 2 \
            or x.shape[1] != w.cols or x.shape[0] not in (1, num_selected):
        raise ValueError(f"x must be C-contiguous float32 [1 or {num_selected}, {w.cols}], got "
                         f"{x.dtype} {x.shape}")
    if out.dtype != np.float32 or not out.flags.c_contiguous \
            or out.shape != (num_selected, expert_rows):
        raise ValueError(f"out must be C-contiguous float32 [{num_selected}, {expert_rows}]")
    if expert_ids.dtype != np.int32 or not expert_ids.flags.c_contiguous:
        raise ValueError("expert_ids must be C-contiguous int32")
    num_experts = w.rows // expert_rows
    if w.rows % expert_rows or num_selected and not (
            0 <= expert_ids.min() and expert_ids.max() < num_experts):
        raise ValueError(f"expert ids out of range for {num_experts} experts")


def matmul_experts_by_views(backend, x: np.ndarray, w: QuantMatrix, expert_rows: int,
                            expert_ids: np.ndarray, out: np.ndarray,
                            num_threads: int | None) -> np.ndarray:
    """Portable form: one backend matmul per selected expert on its view."""
    shared_x = x.shape[0] == 1
    for slot, expert in enumerate(expert_ids.tolist()):
        xs = x if shared_x else x[slot:slot + 1]
        backend.matmul(xs, expert_view(w, expert_rows, expert), out[slot:slot + 1], num_threads)
    return out
