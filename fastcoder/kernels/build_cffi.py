"""cffi out-of-line API build of fastcoder.kernels._qmatmul (run by setup.py's cffi_modules).

AVX2/FMA/F16C flags are used on x86-64 unless FASTCODER_NO_SIMD=1; elsewhere the same sources
compile to the portable scalar path. The build is optional: without a compiler the package still
installs and the Numba backend is used.
"""
from __future__ import annotations

import importlib.util
import os
import platform
import re
from pathlib import Path

from cffi import FFI

# setup.py runs this file by path, outside the package: load sources.py the same way
_spec = importlib.util.spec_from_file_location("_fc_sources", Path(__file__).with_name("sources.py"))
_sources = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_sources)
CSRC: Path = _sources.CSRC
SOURCES = ["qmatmul.c", "act_quant.c", "gemv_avx2.c", "gemm_avx2.c", "kernels_vnni.c",
           "float_avx2.c", "scalar.c", "attention.c", "norm.c", "rope.c", "activation.c",
           "decoder.c", "pack.c"]

def header_cdef(header: Path) -> str:
    """qmatmul.h as a cffi cdef: the header is the one declaration of the C API (cffi parses
    declarations and integer #defines, not include guards or includes)."""
    keep = [line for line in header.read_text().splitlines()
            if not line.startswith("#") or re.match(r"#define \w+ \d+$", line)]
    return "\n".join(keep) + "\nconst char *fc_source_hash(void);\n"


CDEF = header_cdef(CSRC / "qmatmul.h")


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
