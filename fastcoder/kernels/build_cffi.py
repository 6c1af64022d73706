"""cffi out-of-line API build of fastcoder.kernels._qmatmul (run by setup.py's cffi_modules).

AVX2/FMA/F16C flags are used on x86-64 unless FASTCODER_NO_SIMD=1; elsewhere the same sources
compile to the portable scalar path. The build is optional: without a compiler the package still
installs and the Numba backend is used.
"""
from __future__ import annotations

import importlib.util
import os
import platform
from pathlib import Path

from cffi import FFI

# setup.py runs this file by path, outside the package: load sources.py the same way
_spec = importlib.util.spec_from_file_location("_fc_sources", Path(__file__).with_name("sources.py"))
_sources = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_sources)
CSRC: Path = _sources.CSRC
SOURCES = ["qmatmul.c", "act_quant.c", "gemv_avx2.c", "gemm_avx2.c", "kernels_vnni.c", "float_avx2.c", "scalar.c", "attention.c",
           "norm.c", "rope.c",
           "activation.c"]

CDEF = """
void fc_matmul(int ggml_type, const uint8_t *w, int64_t rows, int64_t cols, const float *x,
               int64_t num_tokens, float *y, int num_threads);
void fc_matmul_scalar(int ggml_type, const uint8_t *w, int64_t rows, int64_t cols,
                      const float *x, int64_t num_tokens, float *y, int num_threads);
void fc_matmul_experts(int ggml_type, const uint8_t *w, int64_t expert_rows, int64_t cols,
                       const float *x, int64_t x_rows, const int32_t *expert_ids,
                       int64_t num_selected, float *y, int num_threads);
void fc_attention(const float *q, int64_t num_tokens, int64_t num_heads, int64_t head_dim,
                  const uint16_t *k, const uint16_t *v, int64_t num_kv_heads, int64_t num_keys,
                  int64_t kv_head_stride, int64_t kv_key_stride, const int64_t *key_positions,
                  const int64_t *query_positions, int64_t window, float scale, float *out,
                  int num_threads);
void fc_attention_paged(const float *q, int64_t num_tokens, int64_t num_heads, int64_t head_dim,
                        const uint16_t *k_cache, const uint16_t *v_cache, int64_t num_kv_heads,
                        const int64_t *token_seq, const int64_t *seq_slot_start,
                        const int64_t *slots, const int64_t *query_positions, int64_t window,
                        float scale, float *out, int num_threads);
void fc_rms_norm(const float *x, const float *w, int64_t rows, int64_t cols, float eps,
                 float *out, int num_threads);
void fc_rope_store(const float *qkv, int64_t num_tokens, int64_t row_stride, int64_t num_heads,
                   int64_t num_kv_heads, int64_t head_dim, const float *cos, const float *sin,
                   int interleaved, float *q_out, uint16_t *k_cache, uint16_t *v_cache,
                   const int64_t *slots, int64_t slot_stride, int64_t head_stride);
void fc_silu_mul(const float *gate_up, int64_t rows, int64_t cols, float *out);
int fc_simd_level(void);
int fc_use_vnni(int enable);
int fc_supports(int ggml_type);
int64_t fc_stream_read(const uint8_t *p, int64_t nbytes, int num_threads);
void fc_release_threads(void);
const char *fc_source_hash(void);
"""


def compile_args() -> list[str]:
    args = ["-O3", "-fopenmp", "-std=gnu11", "-fno-strict-aliasing"]
    simd = platform.machine().lower() in {"x86_64", "amd64"} and not os.environ.get("FASTCODER_NO_SIMD")
    if simd:
        args += ["-mavx2", "-mfma", "-mf16c"]
    return args


ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source(
    "fastcoder.kernels._qmatmul",
    '#include "qmatmul.h"\n'
    f'const char *fc_source_hash(void) {{ return "{_sources.source_hash()}"; }}\n',
    # relative paths: setuptools rejects absolute ones in an extension's sources
    sources=[os.path.relpath(CSRC / name) for name in SOURCES],
    include_dirs=[str(CSRC)],
    extra_compile_args=compile_args(),
    extra_link_args=["-fopenmp"],
    optional=True,  # no compiler: install anyway, the Numba backend takes over (with a warning)
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
