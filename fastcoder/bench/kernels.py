"""Kernel benchmark: GEMV (decode) GB/s of weight bytes per quant type at real model shapes, as a
fraction of the read bandwidth measured in the same run, and GEMM (prefill) GFLOP/s."""
from __future__ import annotations

import time

import numpy as np

from fastcoder.bench.bandwidth import measure_read_bandwidth
from fastcoder.kernels import get_backend, pack_weight
from fastcoder.quant import BLOCK_FORMATS, GGMLType

# (type, rows, cols, what): Qwen2.5-Coder 0.5B (hidden 896) and 1.5B (hidden 1536) matrices
GEMV_CASES = (
    (GGMLType.Q5_0, 4864, 896, "0.5B ffn_up/gate"),
    (GGMLType.Q5_0, 896, 896, "0.5B attn_q/o"),
    (GGMLType.Q4_K, 896, 4864, "0.5B ffn_down"),
    (GGMLType.Q6_K, 896, 4864, "0.5B ffn_down"),
    (GGMLType.Q8_0, 151936, 896, "0.5B output"),
    (GGMLType.Q4_K, 8960, 1536, "1.5B ffn_up/gate"),
    (GGMLType.Q4_K, 1536, 8960, "1.5B ffn_down"),
    (GGMLType.Q6_K, 1536, 8960, "1.5B ffn_down"),
    (GGMLType.Q4_0, 4864, 896, "Q4_0 ffn_up"),
    (GGMLType.Q5_K, 8960, 1536, "Q5_K 1.5B ffn_up"),
    (GGMLType.F16, 4864, 896, "F16 ffn_up"),
)
GEMM_CASES = (
    (GGMLType.Q5_0, 4864, 896, "0.5B ffn_up/gate"),
    (GGMLType.Q4_K, 896, 4864, "0.5B ffn_down"),
    (GGMLType.Q6_K, 896, 4864, "0.5B ffn_down"),
    (GGMLType.Q8_0, 896, 896, "Q8_0 896x896"),
)
# f16 scale fields per block type: random bytes there could be inf/NaN
_F16_OFFSETS = {GGMLType.Q4_0: (0,), GGMLType.Q5_0: (0,), GGMLType.Q8_0: (0,),
                GGMLType.Q4_K: (0, 2), GGMLType.Q5_K: (0, 2), GGMLType.Q6_K: (208,)}


def random_weight(ggml_type: GGMLType, rows: int, cols: int, seed: int = 0) -> np.ndarray:
    """GGUF-shaped random data: uint8 [rows, row_bytes] with finite f16 scales (or floats)."""
    rng = np.random.default_rng(seed)
    if ggml_type == GGMLType.F32:
        return rng.standard_normal((rows, cols), dtype=np.float32)
    if ggml_type == GGMLType.F16:
        return rng.standard_normal((rows, cols), dtype=np.float32).astype(np.float16)
    fmt = BLOCK_FORMATS[ggml_type]
    blocks = rng.integers(0, 256, size=(rows * cols // fmt.block_size, fmt.type_size), dtype=np.uint8)
    for offset in _F16_OFFSETS[ggml_type]:
        scales = rng.uniform(-0.01, 0.01, size=(blocks.shape[0], 1)).astype(np.float16)
        blocks[:, offset:offset + 2] = scales.view(np.uint8)
    return blocks.reshape(rows, -1)


def _best_seconds(fn, min_time: float = 0.2, max_repeats: int = 200) -> float:
    fn()
    best, spent, n = float("inf"), 0.0, 0
    while (spent < min_time or n < 5) and n < max_repeats:
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
        best, spent, n = min(best, elapsed), spent + elapsed, n + 1
    return best


def run_kernel_bench(num_threads: int, backend: str | None = None, gemm_tokens: int = 512,
                     gemm: bool = True) -> list[dict]:
    """Times each case; GEMV rows carry `gbps` (weight bytes / s / 1e9) and `fraction` of the
    measured read bandwidth; GEMM rows carry `gflops` (2 * rows * cols * tokens / s / 1e9)."""
    be = get_backend(backend)
    bandwidth = measure_read_bandwidth(num_threads)
    rng = np.random.default_rng(1)
    results = [{"kind": "bandwidth", "threads": num_threads, "gbps": bandwidth}]
    for ggml_type, rows, cols, what in GEMV_CASES:
        w = pack_weight(random_weight(ggml_type, rows, cols), ggml_type, (rows, cols))
        x = rng.standard_normal((1, cols), dtype=np.float32)
        out = np.empty((1, rows), dtype=np.float32)
        seconds = _best_seconds(lambda: be.matmul(x, w, out, num_threads))
        gbps = w.nbytes / seconds / 1e9
        results.append({"kind": "gemv", "type": ggml_type.name, "shape": (rows, cols),
                        "what": what, "threads": num_threads, "backend": be.name,
                        "us": seconds * 1e6, "gbps": gbps, "fraction": gbps / bandwidth})
    for ggml_type, rows, cols, what in GEMM_CASES if gemm else ():
        w = pack_weight(random_weight(ggml_type, rows, cols), ggml_type, (rows, cols))
        x = rng.standard_normal((gemm_tokens, cols), dtype=np.float32)
        out = np.empty((gemm_tokens, rows), dtype=np.float32)
        seconds = _best_seconds(lambda: be.matmul(x, w, out, num_threads), max_repeats=10)
        results.append({"kind": "gemm", "type": ggml_type.name, "shape": (rows, cols),
                        "what": what, "threads": num_threads, "backend": be.name,
                        "tokens": gemm_tokens, "ms": seconds * 1e3,
                        "gflops": 2 * rows * cols * gemm_tokens / seconds / 1e9})
    return results


def qwen05_decode_weights() -> list[tuple[GGMLType, int, int]]:
    """(type, rows, cols) of every matmul of one Qwen2.5-Coder-0.5B Q4_K_M decode step."""
    layers = []
    for layer in range(24):
        down = GGMLType.Q6_K if layer % 2 == 0 else GGMLType.Q4_K  # Q4_K_M mixes the two
        v = GGMLType.Q8_0 if layer % 2 == 0 else GGMLType.Q5_0
        layers += [(GGMLType.Q5_0, 896, 896), (GGMLType.Q5_0, 128, 896), (v, 128, 896),
                   (GGMLType.Q5_0, 896, 896), (GGMLType.Q5_0, 4864, 896),
                   (GGMLType.Q5_0, 4864, 896), (down, 896, 4864)]
    return layers + [(GGMLType.Q8_0, 151936, 896)]


def run_decode_sweep(num_threads: int, backend: str | None = None, repeats: int = 5) -> dict:
    """One decode step's matmuls (~400 MB of distinct weights, streamed from memory as in real
    decoding): best seconds per step, effective GB/s and the implied tokens/s upper bound."""
    be = get_backend(backend)
    bandwidth = measure_read_bandwidth(num_threads)
    rng = np.random.default_rng(2)
    weights = [pack_weight(random_weight(t, r, c, seed=i), t, (r, c))
               for i, (t, r, c) in enumerate(qwen05_decode_weights())]
    xs = {c: rng.standard_normal((1, c), dtype=np.float32) for c in {w.cols for w in weights}}
    outs = [np.empty((1, w.rows), dtype=np.float32) for w in weights]

    def step() -> None:
        for w, out in zip(weights, outs):
            be.matmul(xs[w.cols], w, out, num_threads)
    seconds = _best_seconds(step, min_time=0.5, max_repeats=repeats)
    nbytes = sum(w.nbytes for w in weights)
    return {"kind": "decode", "threads": num_threads, "backend": be.name, "calls": len(weights),
            "mb": nbytes / 1e6, "ms": seconds * 1e3, "tok_s": 1 / seconds,
            "gbps": nbytes / seconds / 1e9, "fraction": nbytes / seconds / 1e9 / bandwidth,
            "bandwidth": bandwidth}


def format_results(results: list[dict]) -> str:
    lines = []
    for r in results:
        if r["kind"] == "bandwidth":
            lines.append(f"read bandwidth, {r['threads']} threads: {r['gbps']:.1f} GB/s")
        elif r["kind"] == "gemv":
            lines.append(f"gemv {r['type']:5} {r['shape'][0]:>6}x{r['shape'][1]:<5} {r['what']:18} "
                         f"{r['us']:9.1f} us {r['gbps']:6.1f} GB/s {r['fraction']:6.0%}")
        elif r["kind"] == "decode":
            lines.append(f"decode step (0.5B Q4_K_M matmuls, {r['calls']} calls, {r['mb']:.0f} MB), "
                         f"{r['threads']} threads: {r['ms']:.2f} ms = {r['tok_s']:.1f} tok/s, "
                         f"{r['gbps']:.1f} GB/s = {r['fraction']:.0%} of {r['bandwidth']:.1f} GB/s")
        else:
            lines.append(f"gemm {r['type']:5} {r['shape'][0]:>6}x{r['shape'][1]:<5} {r['what']:18} "
                         f"T={r['tokens']} {r['ms']:8.2f} ms {r['gflops']:7.1f} GFLOP/s")
    return "\n".join(lines)


if __name__ == "__main__":
    import sys
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    print(format_results(run_kernel_bench(threads)))
