"""fastcoder.kernels: packing is lossless and every backend matches the reference dequantization.

Error bounds, per output y[t, r] = sum_c W[r, c] x[t, c]:
- fp32 rounding: any summation order of n products is within gamma = (n + 16) * 2^-24 of
  sum |W x| (the classic n*u bound; +16 for the per-block scale products).
- int8 activations (C SIMD path): x is rounded to d * round(x / d) with d = amax(block) / 127, an
  error of at most amax(block) / 254 per element, so the dot moves by at most
  sum_blocks amax(block) / 254 * sum_{c in block} |W[r, c]| (computed exactly below).
"""
from __future__ import annotations

import numpy as np
import pytest
from gguf import GGMLQuantizationType
from gguf import quants as gguf_quants

from fastcoder.errors import InvalidParameterError, ModelFileError, UnsupportedQuantTypeError
from fastcoder.kernels import get_backend, pack_weight, unpack_weight
from fastcoder.kernels.c_backend import CBackend
from fastcoder.kernels.numba_kernels import NumbaBackend
from fastcoder.kernels.pack import TILE_ROWS
from fastcoder.kernels.qmatmul import BACKENDS
from fastcoder.quant import BLOCK_FORMATS, GGMLType, dequantize

TYPES = (GGMLType.F32, GGMLType.F16, GGMLType.Q8_0, GGMLType.Q5_0, GGMLType.Q4_0,
         GGMLType.Q4_K, GGMLType.Q5_K, GGMLType.Q6_K)
GGUF_QUANTIZABLE = (GGMLType.Q8_0, GGMLType.Q5_0, GGMLType.Q4_0)
F16_FIELD_OFFSETS = {GGMLType.Q4_0: (0,), GGMLType.Q5_0: (0,), GGMLType.Q8_0: (0,),
                     GGMLType.Q4_K: (0, 2), GGMLType.Q5_K: (0, 2), GGMLType.Q6_K: (208,)}
# values per activation scale in the C SIMD path (Q8_0-style blocks, or Q8_K for K-quants)
ACT_BLOCK = {GGMLType.Q4_K: 256, GGMLType.Q5_K: 256, GGMLType.Q6_K: 256}
ROWS, COLS = 21, 512  # 21: a partial last tile


def random_weight(ggml_type: GGMLType, rows: int, cols: int, seed: int) -> np.ndarray:
    """GGUF data for a [rows, cols] weight: gguf-py's quantizer where it has one, else random
    bytes with finite f16 scales (every bit pattern of the quants is then exercised)."""
    rng = np.random.default_rng(seed)
    dense = rng.standard_normal((rows, cols), dtype=np.float32)
    if ggml_type == GGMLType.F32:
        return dense
    if ggml_type == GGMLType.F16:
        return dense.astype(np.float16)
    if ggml_type in GGUF_QUANTIZABLE and seed % 2 == 0:
        return gguf_quants.quantize(dense, GGMLQuantizationType(int(ggml_type)))
    fmt = BLOCK_FORMATS[ggml_type]
    blocks = rng.integers(0, 256, size=(rows * cols // fmt.block_size, fmt.type_size), dtype=np.uint8)
    for offset in F16_FIELD_OFFSETS[ggml_type]:
        scales = rng.uniform(-2.0, 2.0, size=(blocks.shape[0], 1)).astype(np.float16)
        blocks[:, offset:offset + 2] = scales.view(np.uint8)
    return blocks.reshape(rows, -1)


BACKEND_NAMES = ("c", "c-scalar", "numba")


def make_backend(name: str):
    if name == "c":
        return CBackend()
    if name == "c-scalar":
        return CBackend(scalar=True)
    return NumbaBackend()


@pytest.fixture(scope="module", params=BACKEND_NAMES)
def backend(request):
    return make_backend(request.param)


def fp32_bound(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """[T, R] gamma * sum |W x|"""
    return (x.shape[1] + 16) * 2.0 ** -24 * (np.abs(x) @ np.abs(w).T)


def int8_activation_bound(x: np.ndarray, w: np.ndarray, block: int) -> np.ndarray:
    """[T, R] sum_blocks amax(x block) / 254 * sum_{c in block} |W[r, c]|"""
    num_blocks = x.shape[1] // block
    amax = np.abs(x).reshape(x.shape[0], num_blocks, block).max(axis=2)  # [T, nb]
    w_abs = np.abs(w).reshape(w.shape[0], num_blocks, block).sum(axis=2)  # [R, nb]
    return amax @ w_abs.T / 254.0


def reference(raw: np.ndarray, ggml_type: GGMLType, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w = dequantize(raw, ggml_type, (raw.shape[0], x.shape[1])).astype(np.float64)
    return x.astype(np.float64) @ w.T, w


def uses_int8(backend, ggml_type: GGMLType) -> bool:
    return backend.name == "c" and ggml_type not in (GGMLType.F32, GGMLType.F16)


@pytest.mark.parametrize("ggml_type", TYPES, ids=lambda t: t.name)
def test_pack_is_lossless(ggml_type: GGMLType):
    for seed in (0, 1):
        raw = random_weight(ggml_type, ROWS, COLS, seed)
        packed = pack_weight(raw, ggml_type, (ROWS, COLS))
        if ggml_type not in (GGMLType.F32, GGMLType.F16):
            assert packed.data.shape[0] == -(-ROWS // TILE_ROWS)
            assert packed.nbytes == packed.data.shape[0] * TILE_ROWS * raw.shape[1]
        np.testing.assert_array_equal(unpack_weight(packed).view(np.uint8), raw.view(np.uint8))


@pytest.mark.parametrize("ggml_type", TYPES[2:], ids=lambda t: t.name)
def test_c_packing_matches_numpy_packing(ggml_type: GGMLType):
    """fc_pack_tiles (the load-time gather) writes the numpy packers' layout, fused parts packed
    in place included (8 + 21 rows: a part boundary on a tile edge and a partial last tile)."""
    from fastcoder.kernels.pack import _pack_numpy, tile_block_bytes
    assert get_backend().name == "c", "the C backend is not in use: fc_pack_tiles is untested"
    parts = [random_weight(ggml_type, rows, COLS, seed) for seed, rows in enumerate((8, ROWS))]
    full = np.concatenate(parts)
    want = np.empty((-(-full.shape[0] // TILE_ROWS),
                     COLS // BLOCK_FORMATS[ggml_type].block_size * tile_block_bytes(ggml_type)),
                    dtype=np.uint8)
    _pack_numpy(ggml_type, full, want)
    np.testing.assert_array_equal(pack_weight(parts, ggml_type, (full.shape[0], COLS)).data, want)
    np.testing.assert_array_equal(pack_weight(full, ggml_type, (full.shape[0], COLS)).data, want)


# The fp32-activation paths only: the AVX2 path quantizes activations to int8, which
# test_integer_path_is_exact covers.
FP32_PATHS = [(b, t) for b in BACKEND_NAMES for t in TYPES
              if not (b == "c" and t not in (GGMLType.F32, GGMLType.F16))]


@pytest.mark.parametrize("backend_name, ggml_type", FP32_PATHS,
                         ids=[f"{b}-{t.name}" for b, t in FP32_PATHS])
def test_packed_dequantization_is_bit_exact(backend_name: str, ggml_type: GGMLType):
    # x = identity: the fp32 paths (scalar C, Numba) return the dequantized packed weights
    backend = make_backend(backend_name)
    assert not uses_int8(backend, ggml_type)
    raw = random_weight(ggml_type, ROWS, COLS, seed=3)
    y = backend.matmul(np.eye(COLS, dtype=np.float32), pack_weight(raw, ggml_type, (ROWS, COLS)))
    np.testing.assert_array_equal(y.T, dequantize(raw, ggml_type, (ROWS, COLS)))


@pytest.mark.parametrize("num_tokens", [1, 3, 37])
@pytest.mark.parametrize("ggml_type", TYPES, ids=lambda t: t.name)
def test_matmul_matches_reference(backend, ggml_type: GGMLType, num_tokens: int):
    for seed in (0, 1):
        raw = random_weight(ggml_type, ROWS, COLS, seed)
        x = np.random.default_rng(seed + 10).standard_normal((num_tokens, COLS), dtype=np.float32)
        x[0, :7] *= 30.0  # uneven block magnitudes
        expected, w = reference(raw, ggml_type, x)
        got = backend.matmul(x, pack_weight(raw, ggml_type, (ROWS, COLS)))
        bound = fp32_bound(x, w)
        if uses_int8(backend, ggml_type):
            bound = bound + int8_activation_bound(x, w, ACT_BLOCK.get(ggml_type, 32))
        assert got.shape == (num_tokens, ROWS) and got.dtype == np.float32
        assert np.all(np.abs(got - expected) <= bound), np.max(np.abs(got - expected) / bound)


@pytest.mark.parametrize("num_tokens", [1, 3, 37])
@pytest.mark.parametrize("ggml_type", TYPES, ids=lambda t: t.name)
def test_integer_path_is_exact(ggml_type: GGMLType, num_tokens: int):
    # integers in [-127, 127] with a +-127 in every 32-block quantize with scale 1 exactly, so
    # the int8 dot products must be exact: only fp32 rounding remains
    rng = np.random.default_rng(num_tokens)
    x = rng.integers(-127, 128, size=(num_tokens, COLS)).astype(np.float32)
    x[:, ::32] = np.where(rng.random((num_tokens, COLS // 32)) < 0.5, -127.0, 127.0)
    raw = random_weight(ggml_type, ROWS, COLS, seed=5)
    expected, w = reference(raw, ggml_type, x)
    got = CBackend().matmul(x, pack_weight(raw, ggml_type, (ROWS, COLS)))
    assert np.all(np.abs(got - expected) <= fp32_bound(x, w))


@pytest.mark.parametrize("ggml_type", [GGMLType.Q5_0, GGMLType.Q6_K, GGMLType.F16], ids=lambda t: t.name)
def test_threads_and_out_buffer(ggml_type: GGMLType):
    rows, cols = 203, 768
    raw = random_weight(ggml_type, rows, cols, seed=7)
    w = pack_weight(raw, ggml_type, (rows, cols))
    x = np.random.default_rng(8).standard_normal((5, cols), dtype=np.float32)
    be = CBackend()
    one = be.matmul(x, w, num_threads=1)
    out = np.full((5, rows), np.nan, dtype=np.float32)
    assert be.matmul(x, w, out, num_threads=2) is out
    np.testing.assert_array_equal(out, one)  # each row is computed by one thread, same order
    expected, wd = reference(raw, ggml_type, x[2:3])
    bound = fp32_bound(x[2:3], wd) + int8_activation_bound(x[2:3], wd, ACT_BLOCK.get(ggml_type, 32))
    for num_threads in (1, 2, 3):  # the decode kernel splits each thread's rows into streams
        single = be.matmul(x[2:3].copy(), w, num_threads=num_threads)
        assert np.all(np.abs(single - expected) <= bound)


def test_float_weights_with_odd_columns():
    raw = random_weight(GGMLType.F32, 9, 101, seed=0)
    x = np.random.default_rng(1).standard_normal((2, 101), dtype=np.float32)
    for be in (CBackend(), NumbaBackend()):
        expected, w = reference(raw, GGMLType.F32, x)
        got = be.matmul(x, pack_weight(raw, GGMLType.F32, (9, 101)))
        assert np.all(np.abs(got - expected) <= fp32_bound(x, w))


def test_bad_arguments_raise():
    w = pack_weight(random_weight(GGMLType.Q8_0, 8, 64, seed=1), GGMLType.Q8_0, (8, 64))
    be = CBackend()
    with pytest.raises(ValueError):
        be.matmul(np.zeros((1, 32), dtype=np.float32), w)  # wrong cols
    with pytest.raises(ValueError):
        be.matmul(np.zeros((1, 64), dtype=np.float64), w)  # wrong dtype
    with pytest.raises(ValueError):
        be.matmul(np.zeros((64, 2), dtype=np.float32).T, w)  # not C-contiguous
    with pytest.raises(ValueError):
        be.matmul(np.zeros((1, 64), dtype=np.float32), w, out=np.zeros((1, 9), dtype=np.float32))
    with pytest.raises(ModelFileError):
        pack_weight(np.zeros((8, 34), dtype=np.uint8), GGMLType.Q8_0, (8, 48))
    with pytest.raises(UnsupportedQuantTypeError):
        pack_weight(np.zeros((8, 84), dtype=np.uint8), GGMLType.Q2_K, (8, 256))


def test_backend_registry(monkeypatch):
    assert set(BACKENDS) == {"c", "numba"}
    assert get_backend("numba").name == "numba"
    assert get_backend("c").name == "c"
    with pytest.raises(InvalidParameterError):
        get_backend("cuda")


@pytest.mark.parametrize("backend_name", ["c", "numba"])
def test_bound_call_sees_new_inputs(backend_name):
    be = get_backend(backend_name)
    raw = random_weight(GGMLType.Q8_0, 16, 64, seed=2)
    w = pack_weight(raw, GGMLType.Q8_0, (16, 64))
    x = np.zeros((1, 64), dtype=np.float32)
    out = np.empty((1, 16), dtype=np.float32)
    call = be.bind(x, w, out)
    for seed in (1, 2):
        x[:] = np.random.default_rng(seed).standard_normal((1, 64), dtype=np.float32)
        call()
        np.testing.assert_array_equal(out, be.matmul(x, w))


@pytest.mark.parametrize("ggml_type", TYPES, ids=lambda t: t.name)
def test_batch_invariance(backend, ggml_type: GGMLType):
    # each (row, token) result is bit-identical whatever the batch around it (size, other tokens,
    # decode vs prefill kernel) and the thread count: batched serving must match a lone request
    raw = random_weight(ggml_type, ROWS, COLS, seed=11)
    w = pack_weight(raw, ggml_type, (ROWS, COLS))
    rng = np.random.default_rng(12)
    x = rng.standard_normal((512, COLS), dtype=np.float32)
    x[::5] *= rng.uniform(0.01, 30.0, size=(x[::5].shape[0], 1)).astype(np.float32)
    x[3, :7] *= 50.0  # uneven block magnitudes
    alone = np.concatenate([backend.matmul(x[t:t + 1].copy(), w, num_threads=1) for t in range(512)])
    for num_threads in (1, 2):
        for num_tokens in (1, 2, 3, 8, 37, 512):
            got = backend.matmul(x[:num_tokens].copy(), w, num_threads=num_threads)
            np.testing.assert_array_equal(got, alone[:num_tokens], err_msg=f"{num_tokens=} {num_threads=}")
        perm = rng.permutation(512)[:37]  # other neighbours
        got = backend.matmul(x[perm].copy(), w, num_threads=num_threads)
        np.testing.assert_array_equal(got, alone[perm])


@pytest.fixture
def vnni_lib():
    from fastcoder.kernels._qmatmul import lib
    if not lib.fc_use_vnni(1):
        pytest.skip("this CPU has no AVX-VNNI: only the AVX2 kernels can run here")
    yield lib
    lib.fc_use_vnni(1)  # the default where the CPU has it


@pytest.mark.parametrize("ggml_type", TYPES[2:], ids=lambda t: t.name)
def test_vnni_kernels_are_bit_identical_to_avx2(vnni_lib, ggml_type: GGMLType):
    # vpdpbusd forms the same exact int32 per block as maddubs + madd, and the fp32 steps are
    # shared: switching the ISA must not change a single bit (decode, small batches, prefill)
    be = CBackend()
    raw = random_weight(ggml_type, ROWS, COLS, seed=5)
    w = pack_weight(raw, ggml_type, (ROWS, COLS))
    x = np.random.default_rng(6).standard_normal((67, COLS), dtype=np.float32)
    x[::3] *= 40.0
    for num_tokens in (1, 2, 3, 4, 8, 67):  # GEMV, small-batch and GEMM kernels
        vnni_lib.fc_use_vnni(1)
        fast = be.matmul(x[:num_tokens].copy(), w)
        vnni_lib.fc_use_vnni(0)
        plain = be.matmul(x[:num_tokens].copy(), w)
        vnni_lib.fc_use_vnni(1)
        np.testing.assert_array_equal(fast, plain, err_msg=f"{num_tokens=}")


def test_kernels_run_on_another_thread_after_release_threads():
    # the server's engine thread takes over kernel calls from the thread that loaded the model:
    # release_threads() frees the loader's OpenMP pool first; results must not change
    import threading
    from fastcoder.kernels import release_threads
    raw = random_weight(GGMLType.Q4_K, 64, 512, seed=9)
    w = pack_weight(raw, GGMLType.Q4_K, (64, 512))
    x = np.random.default_rng(9).standard_normal((3, 512), dtype=np.float32)
    want = [CBackend().matmul(x[:n].copy(), w, num_threads=2) for n in (1, 3)]
    release_threads()
    got = []
    worker = threading.Thread(target=lambda: got.extend(
        CBackend().matmul(x[:n].copy(), w, num_threads=2) for n in (1, 3)))
    worker.start()
    worker.join()
    for a, b in zip(want, got, strict=True):
        np.testing.assert_array_equal(a, b)
