"""matmul(x, w): y = x @ W.T on packed GGUF weights, through a registry of backends.

The backend comes from FASTCODER_KERNELS (`c` or `numba`); by default the C extension when it
imports and this CPU runs it, else Numba with a one-line warning.
"""
from __future__ import annotations

import functools
import logging
import os
from types import MappingProxyType
from typing import Callable, Mapping, Protocol

import numpy as np

from fastcoder.errors import InvalidParameterError
from fastcoder.kernels.pack import QuantMatrix

logger = logging.getLogger(__name__)


class Backend(Protocol):
    name: str

    def matmul(self, x: np.ndarray, w: QuantMatrix, out: np.ndarray | None,
               num_threads: int | None) -> np.ndarray: ...

    def bind(self, x: np.ndarray, w: QuantMatrix, out: np.ndarray,
             num_threads: int | None) -> Callable[[], None]: ...

    def matmul_experts(self, x: np.ndarray, w: QuantMatrix, expert_rows: int,
                       expert_ids: np.ndarray, out: np.ndarray,
                       num_threads: int | None) -> np.ndarray: ...


@functools.cache
def default_num_threads() -> int:
    """FASTCODER_NUM_THREADS, else the CPUs this process may run on."""
    env = os.environ.get("FASTCODER_NUM_THREADS")
    if env:
        return max(1, int(env))
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def check_args(x: np.ndarray, w: QuantMatrix, out: np.ndarray | None) -> np.ndarray:
    """Validates shapes/dtypes (no copies) and returns `out` ([num_tokens, rows] float32)."""
    if x.dtype != np.float32 or not x.flags.c_contiguous or x.ndim != 2 or x.shape[1] != w.cols:
        raise ValueError(f"x must be C-contiguous float32 [num_tokens, {w.cols}], got "
                         f"{x.dtype} {x.shape}")
    if out is None:
        return np.empty((x.shape[0], w.rows), dtype=np.float32)
    if (out.dtype != np.float32 or not out.flags.c_contiguous
            or out.shape != (x.shape[0], w.rows)):
        raise ValueError(f"out must be C-contiguous float32 [{x.shape[0]}, {w.rows}], got "
                         f"{out.dtype} {out.shape}")
    return out


def _make_c() -> Backend:
    from fastcoder.kernels.c_backend import CBackend
    return CBackend()


def _make_numba() -> Backend:
    from fastcoder.kernels.numba_kernels import NumbaBackend
    return NumbaBackend()


BACKENDS: Mapping[str, Callable[[], Backend]] = MappingProxyType({
    "c": _make_c, "numba": _make_numba})


@functools.cache
def get_backend(name: str | None = None) -> Backend:
    """The backend `name`, or the default one (FASTCODER_KERNELS, else c, else numba)."""
    name = name or os.environ.get("FASTCODER_KERNELS") or None
    if name is not None:
        factory = BACKENDS.get(name)
        if factory is None:
            raise InvalidParameterError(
                f"FASTCODER_KERNELS={name!r} is not a kernel backend; choose one of "
                f"{', '.join(BACKENDS)}", param="FASTCODER_KERNELS")
        return factory()
    try:
        return _make_c()
    except (ImportError, OSError, RuntimeError) as exc:
        logger.warning("fastcoder: C kernels unavailable (%s); using the slower Numba kernels", exc)
        return _make_numba()


def matmul(x: np.ndarray, w: QuantMatrix, out: np.ndarray | None = None,
           num_threads: int | None = None) -> np.ndarray:
    """out[t, r] = sum_c w[r, c] * x[t, c].

    x: float32 C-contiguous [num_tokens, cols] (a torch tensor's .numpy() view works, no copy).
    out: float32 [num_tokens, rows], written in place when given. num_threads: None = default.
    """
    return get_backend().matmul(x, w, out, num_threads)


def bind_matmul(x: np.ndarray, w: QuantMatrix, out: np.ndarray,
                num_threads: int | None = None) -> Callable[[], object]:
    """matmul(x, w, out) as a no-argument call on fixed buffers, for hot loops: the buffers are
    validated and their pointers taken once (C backend: ~0.3 us per call instead of ~1.5 us).
    Write new inputs into x in place; the call keeps x, w and out alive."""
    return get_backend().bind(x, w, out, num_threads)


def release_threads() -> None:
    """Call on a thread that ran kernels (or torch ops) before another thread takes the kernel
    calls over (a server's engine thread, an eval worker). libgomp stops spin-waiting once it
    manages more threads than CPUs, and the pool this thread left behind would count: every
    parallel region of the new thread then starts through a futex wake-up (~70 us instead of
    ~1 us, ~12 ms per 0.5B decode step). Frees this thread's pool; no-op without C kernels, and
    loads no backend when none is in use yet."""
    if get_backend.cache_info().currsize == 0:
        return
    release = getattr(get_backend(), "release_threads", None)
    if release is not None:
        release()


def bind_row_matmul(w: QuantMatrix, out: np.ndarray, num_threads: int | None = None
                    ) -> Callable[[int], object] | None:
    """out[0] = x @ w.T as a call taking the address of x (a float32 C-contiguous [cols] row,
    e.g. a torch tensor's data_ptr()), so a decode step hands the previous op's output straight
    to the kernel instead of copying it into a bound buffer. None where the backend has no
    pointer entry (Numba): use bind_matmul."""
    bind = getattr(get_backend(), "bind_address", None)
    return bind(w, out, num_threads) if bind is not None else None


def matmul_experts(x: np.ndarray, w: QuantMatrix, expert_rows: int, expert_ids: np.ndarray,
                   out: np.ndarray, num_threads: int | None = None) -> np.ndarray:
    """out[s] = W_e @ x[s] (or x[0] when x has one row) with W_e = rows [e * expert_rows,
    (e + 1) * expert_rows) of w and e = expert_ids[s]: only the selected experts are read.

    x: float32 [1 or num_selected, cols]; expert_ids: int32 [num_selected]; out: float32
    [num_selected, expert_rows], written in place. See fastcoder.kernels.experts."""
    from fastcoder.kernels.experts import check_expert_args
    check_expert_args(x, w, expert_rows, expert_ids, out)
    return get_backend().matmul_experts(x, w, expert_rows, expert_ids, out, num_threads)
