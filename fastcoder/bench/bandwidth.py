"""Streaming read bandwidth of this machine: the bound for memory-bound decode kernels."""
from __future__ import annotations

import time

import numpy as np


def _reader():
    """A parallel streaming reader: the C extension's (same OpenMP runtime as the kernels), else
    a Numba parallel sum."""
    try:
        from fastcoder.kernels._qmatmul import ffi, lib

        def read_c(buf: np.ndarray, num_threads: int) -> int:
            return lib.fc_stream_read(ffi.from_buffer("uint8_t[]", buf), buf.nbytes, num_threads)
        return read_c
    except ImportError:
        import numba
        from numba import njit, prange

        @njit(parallel=True, fastmath=True)
        def _sum(words):
            total = np.uint64(0)
            for i in prange(words.size):
                total += words[i]
            return total

        def read_numba(buf: np.ndarray, num_threads: int) -> int:
            numba.set_num_threads(min(num_threads, numba.config.NUMBA_NUM_THREADS))
            return int(_sum(buf.view(np.uint64)))
        return read_numba


def measure_read_bandwidth(num_threads: int, nbytes: int = 512 << 20, repeats: int = 5) -> float:
    """Best-of-`repeats` read bandwidth in GB/s (1e9 bytes/s) over a buffer of `nbytes`."""
    buf = np.ones(nbytes // 64 * 64, dtype=np.uint8)  # touched: pages are really mapped
    read = _reader()
    read(buf[: 1 << 20], num_threads)  # warm the thread pool / JIT
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        read(buf, num_threads)
        best = min(best, time.perf_counter() - start)
    return buf.nbytes / best / 1e9
