"""The C (AVX2 + OpenMP) backend: fastcoder.kernels._qmatmul built by setup.py with cffi."""
from __future__ import annotations

import functools
from typing import Callable

import numpy as np

from fastcoder.kernels.experts import matmul_experts_by_views
from fastcoder.kernels.pack import FLOAT_DTYPES, QuantMatrix
from fastcoder.kernels.qmatmul import check_args, default_num_threads


def check_fresh(built_hash: str) -> None:
    """In a source checkout, refuse an extension built from other C sources than the current
    ones (an editable install does not rebuild by itself)."""
    from fastcoder.kernels.sources import CSRC, source_hash
    if CSRC.is_dir() and source_hash() != built_hash:
        raise ImportError("the C kernels were built from older sources; rebuild them with "
                          "`pip install -e .`")


class CBackend:
    name = "c"

    def __init__(self, scalar: bool = False):
        from fastcoder.kernels._qmatmul import ffi, lib  # ImportError when not built
        built = getattr(lib, "fc_source_hash", None)
        check_fresh(ffi.string(built()).decode() if built else "")
        if lib.fc_simd_level() < 0 and not scalar:
            raise RuntimeError("the C kernels were built for AVX2/FMA/F16C, which this CPU lacks")
        self._from_buffer, self._cast, self._lib = ffi.from_buffer, ffi.cast, lib
        self._fn = lib.fc_matmul_scalar if scalar else lib.fc_matmul
        # one call over the selected experts; the scalar variant goes expert by expert
        self._experts_fn = None if scalar else lib.fc_matmul_experts
        self.simd_level = lib.fc_simd_level()
        self.num_threads = default_num_threads()
        if scalar:
            self.name = "c-scalar"

    def matmul(self, x: np.ndarray, w: QuantMatrix, out: np.ndarray | None = None,
               num_threads: int | None = None) -> np.ndarray:
        out = check_args(x, w, out)
        fb = self._from_buffer
        self._fn(w.ggml_type, fb("uint8_t[]", w.data), w.rows, w.cols, fb("float[]", x),
                 x.shape[0], fb("float[]", out, require_writable=True),
                 num_threads or self.num_threads)
        return out

    def bind(self, x: np.ndarray, w: QuantMatrix, out: np.ndarray,
             num_threads: int | None = None) -> Callable[[], None]:
        """A no-argument call computing out = x @ w.T on these buffers (~0.3 us of overhead)."""
        out = check_args(x, w, out)
        fb = self._from_buffer
        return functools.partial(self._fn, int(w.ggml_type), fb("uint8_t[]", w.data), w.rows,
                                 w.cols, fb("float[]", x), x.shape[0],
                                 fb("float[]", out, require_writable=True),
                                 num_threads or self.num_threads)

    def release_threads(self) -> None:
        self._lib.fc_release_threads()

    def bind_address(self, w: QuantMatrix, out: np.ndarray, num_threads: int | None = None
                     ) -> Callable[[int], None]:
        """A one-argument call computing out[0] = x @ w.T for the float32 row at address x
        (qmatmul.bind_row_matmul)."""
        if out.dtype != np.float32 or out.shape != (1, w.rows) or out.strides[1] != 4:
            raise ValueError(f"out must be float32 [1, {w.rows}] with contiguous rows")
        fb, cast = self._from_buffer, self._cast
        call = functools.partial(self._fn, int(w.ggml_type), fb("uint8_t[]", w.data), w.rows,
                                 w.cols)
        y, threads = fb("float[]", out, require_writable=True), num_threads or self.num_threads
        return lambda x_address: call(cast("float *", x_address), 1, y, threads)

    def matmul_experts(self, x: np.ndarray, w: QuantMatrix, expert_rows: int,
                       expert_ids: np.ndarray, out: np.ndarray,
                       num_threads: int | None = None) -> np.ndarray:
        if self._experts_fn is None or w.ggml_type in FLOAT_DTYPES:
            return matmul_experts_by_views(self, x, w, expert_rows, expert_ids, out, num_threads)
        fb = self._from_buffer
        self._experts_fn(w.ggml_type, fb("uint8_t[]", w.data), expert_rows, w.cols,
                         fb("float[]", x), x.shape[0], fb("int32_t[]", expert_ids),
                         len(expert_ids), fb("float[]", out, require_writable=True),
                         num_threads or self.num_threads)
        return out
