"""fastcoder.quant: block formats and reference dequantization, checked against gguf-py."""
from __future__ import annotations

import numpy as np
import pytest
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType
from gguf import quants as gguf_quants

from fastcoder.errors import ModelFileError, UnsupportedQuantTypeError
from fastcoder.quant import BLOCK_FORMATS, GGMLType, dequantize, row_nbytes, supported_types

# Byte offsets of the f16 scale fields in each block (ggml-common.h). Random bytes there would
# often be inf/NaN, which compare badly and say nothing about the layout.
F16_FIELD_OFFSETS = {
    GGMLType.Q4_0: (0,), GGMLType.Q4_1: (0, 2), GGMLType.Q5_0: (0,), GGMLType.Q5_1: (0, 2),
    GGMLType.Q8_0: (0,), GGMLType.Q2_K: (80, 82), GGMLType.Q3_K: (108,),
    GGMLType.Q4_K: (0, 2), GGMLType.Q5_K: (0, 2), GGMLType.Q6_K: (208,),
}
FLOAT_TYPES = (GGMLType.F32, GGMLType.F16, GGMLType.BF16)
REQUIRED_TYPES = {*FLOAT_TYPES, GGMLType.Q4_0, GGMLType.Q4_1, GGMLType.Q5_0, GGMLType.Q5_1,
                  GGMLType.Q8_0, GGMLType.Q4_K, GGMLType.Q5_K, GGMLType.Q6_K}


def random_tensor(ggml_type: GGMLType, shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Raw bytes as GGUFReader returns them: uint8 [*shape[:-1], row_bytes]; finite scales."""
    rng = np.random.default_rng(seed)
    fmt = BLOCK_FORMATS[ggml_type]
    if ggml_type == GGMLType.F32:
        return rng.standard_normal(shape, dtype=np.float32)
    if ggml_type == GGMLType.F16:
        return rng.standard_normal(shape).astype(np.float16)
    if ggml_type == GGMLType.BF16:
        # top halves of random f32s, as uint16 like some gguf versions return
        return (rng.standard_normal(shape, dtype=np.float32).view(np.uint32) >> 16).astype(np.uint16)
    num_blocks = int(np.prod(shape)) // fmt.block_size
    blocks = rng.integers(0, 256, size=(num_blocks, fmt.type_size), dtype=np.uint8)
    for offset in F16_FIELD_OFFSETS[ggml_type]:
        scale = rng.uniform(-2.0, 2.0, size=(num_blocks, 1)).astype(np.float16)
        blocks[:, offset:offset + 2] = scale.view(np.uint8)
    return blocks.reshape(*shape[:-1], shape[-1] // fmt.block_size * fmt.type_size)


def test_required_types_are_supported():
    assert REQUIRED_TYPES <= set(supported_types())


def test_ggml_type_values_match_gguf():
    for t in GGMLType:
        assert GGMLQuantizationType[t.name].value == t.value


def test_block_formats_match_gguf():
    for t, fmt in BLOCK_FORMATS.items():
        if t == GGMLType.Q8_1:
            # ggml's block_q8_1 is {ggml_half d, s; int8 qs[32]} = 36 bytes; gguf-py says 40
            assert (fmt.block_size, fmt.type_size) == (32, 36)
            continue
        assert GGML_QUANT_SIZES[GGMLQuantizationType(t.value)] == (fmt.block_size, fmt.type_size), t


@pytest.mark.parametrize("ggml_type", supported_types(), ids=lambda t: t.name)
def test_dequantize_matches_gguf_bit_exact(ggml_type: GGMLType):
    shape = (6, 4 * max(BLOCK_FORMATS[ggml_type].block_size, 32))
    data = random_tensor(ggml_type, shape, seed=int(ggml_type))
    ours = dequantize(data, ggml_type, shape)
    # gguf-py wants quantized (and BF16) buffers as uint8 [..., row_bytes]
    gguf_data = data.view(np.uint8) if ggml_type == GGMLType.BF16 else data
    ref = gguf_quants.dequantize(gguf_data, GGMLQuantizationType(int(ggml_type))).reshape(shape)
    assert ours.dtype == np.float32 and ours.shape == shape
    assert np.isfinite(ours).all()
    np.testing.assert_array_equal(ours, ref)


@pytest.mark.parametrize("ggml_type", [GGMLType.Q4_K, GGMLType.Q8_0, GGMLType.F16],
                         ids=lambda t: t.name)
def test_dequantize_3d_and_flat_buffers(ggml_type: GGMLType):
    shape = (2, 3, 512)  # e.g. [num_experts, rows, cols]
    data = random_tensor(ggml_type, shape, seed=7)
    expected = gguf_quants.dequantize(data, GGMLQuantizationType(int(ggml_type))).reshape(shape)
    np.testing.assert_array_equal(dequantize(data, ggml_type, shape), expected)
    flat = np.ascontiguousarray(data).view(np.uint8).reshape(-1)
    np.testing.assert_array_equal(dequantize(flat, int(ggml_type), shape), expected)


def test_hand_built_q4_0_block():
    # d = 0.5; byte j holds weight j (low nibble) and weight j + 16 (high nibble)
    block = np.zeros(18, dtype=np.uint8)
    block[0:2] = np.array([0.5], dtype=np.float16).view(np.uint8)
    block[2:] = np.arange(16, dtype=np.uint8) | (np.uint8(15) << 4)
    out = dequantize(block, GGMLType.Q4_0, (32,))
    expected = np.concatenate([np.arange(16) - 8, np.full(16, 15 - 8)]) * 0.5
    np.testing.assert_array_equal(out, expected.astype(np.float32))


def test_hand_built_q5_0_high_bits():
    # qh is a little-endian u32 whose bit j is the 5th bit of weight j
    block = np.zeros(22, dtype=np.uint8)
    block[0:2] = np.array([1.0], dtype=np.float16).view(np.uint8)
    block[2:6] = np.array([1 << 0 | 1 << 17], dtype="<u4").view(np.uint8)
    out = dequantize(block, GGMLType.Q5_0, (32,))
    expected = np.full(32, -16.0, dtype=np.float32)
    expected[0] = expected[17] = 0.0
    np.testing.assert_array_equal(out, expected)


def test_hand_built_q8_0_and_bf16():
    block = np.zeros(34, dtype=np.uint8)
    block[0:2] = np.array([0.25], dtype=np.float16).view(np.uint8)
    block[2:] = np.arange(-16, 16, dtype=np.int8).view(np.uint8)
    np.testing.assert_array_equal(dequantize(block, GGMLType.Q8_0, (1, 32))[0],
                                  np.arange(-16, 16, dtype=np.float32) * 0.25)
    bf16 = np.array([0x3F80, 0xC000, 0x3EAA], dtype=np.uint16)  # 1.0, -2.0, 0.33203125
    np.testing.assert_array_equal(dequantize(bf16.view(np.uint8), GGMLType.BF16, (3,)),
                                  np.array([1.0, -2.0, 0.33203125], dtype=np.float32))


# gguf-py quantizes these. Error bound relative to the block's max |w|: half a step (Q8_0 1/254,
# Q5_1 1/31, Q4_1 1/15), or for the symmetric Q4_0/Q5_0 the clipped far end (d = max / -8, so
# -max lands on 7/8 of it: 1/8, Q5_0 1/16); plus a margin for rounding d to f16.
ROUND_TRIP_REL_ERROR = {
    GGMLType.BF16: 2.0 ** -8, GGMLType.Q8_0: 0.0045, GGMLType.Q5_0: 0.0635, GGMLType.Q5_1: 0.033,
    GGMLType.Q4_0: 0.1255, GGMLType.Q4_1: 0.0675,
}


@pytest.mark.parametrize("ggml_type", list(ROUND_TRIP_REL_ERROR), ids=lambda t: t.name)
def test_round_trip_from_gguf_quantize(ggml_type: GGMLType):
    rng = np.random.default_rng(3)
    weights = rng.standard_normal((16, 256), dtype=np.float32)  # [rows, cols]
    gguf_type = GGMLQuantizationType(int(ggml_type))
    raw = gguf_quants.quantize(weights, gguf_type)
    ours = dequantize(raw, ggml_type, weights.shape)
    np.testing.assert_array_equal(ours, gguf_quants.dequantize(raw, gguf_type))
    block = BLOCK_FORMATS[ggml_type].block_size
    block_absmax = np.abs(weights).reshape(16, -1, block).max(axis=-1, keepdims=True)
    rel_error = np.abs(ours - weights).reshape(16, -1, block) / block_absmax
    assert rel_error.max() <= ROUND_TRIP_REL_ERROR[ggml_type]
    assert rel_error.max() > 0  # a lossy format really was exercised


def test_unsupported_type_is_named():
    with pytest.raises(UnsupportedQuantTypeError, match="IQ2_XXS"):
        dequantize(np.zeros(66, dtype=np.uint8), GGMLType.IQ2_XXS, (256,))
    with pytest.raises(UnsupportedQuantTypeError, match="4"):
        dequantize(np.zeros(18, dtype=np.uint8), 4, (32,))  # Q4_2, removed from ggml


def test_wrong_sizes_raise_model_file_error():
    with pytest.raises(ModelFileError, match="block size 32"):
        dequantize(np.zeros(18, dtype=np.uint8), GGMLType.Q4_0, (1, 48))
    with pytest.raises(ModelFileError, match="needs 36 bytes"):
        dequantize(np.zeros(35, dtype=np.uint8), GGMLType.Q4_0, (2, 32))


def test_row_nbytes():
    assert row_nbytes(GGMLType.F32, 896) == 3584
    assert row_nbytes(GGMLType.Q8_0, 896) == 28 * 34
    assert row_nbytes(int(GGMLType.Q4_K), 4864) == 19 * 144
    assert row_nbytes(GGMLType.Q6_K, 4864) == 19 * 210
    with pytest.raises(ModelFileError):
        row_nbytes(GGMLType.Q4_K, 896)  # why Q4_K_M files fall back to Q5_0/Q8_0 for such rows
    with pytest.raises(UnsupportedQuantTypeError, match="5"):
        row_nbytes(5, 32)
