"""A stack of pre-norm decoder layers in one C call (`fc_decoder_layers`) over torch tensors.

Built once at load from the layers' packed weights; each forward passes only where the cache
puts this step's keys (`StackKV`). Bit-identical to running the layers op by op with the C
kernels, because it runs those kernels in the same order with the same arguments.

`c_decoder_stack()` is the constructor when the C backend is the one in use, else None."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from fastcoder.kernels.pack import QuantMatrix
from fastcoder.kernels.qmatmul import get_backend

MAX_SEGMENTS = 4          # fc_linear's runs of same-type rows (FC_MAX_SEGMENTS)
# Steps of more tokens take the per-op path: their Python overhead is small next to the
# kernels, and the scratch would grow with the prompt.
MAX_STACK_TOKENS = 32


@dataclass(frozen=True)
class LinearWeights:
    matrices: tuple[QuantMatrix, ...]            # packed rows, written side by side
    bias: torch.Tensor | None                    # [sum of rows] fp32 contiguous


@dataclass(frozen=True)
class LayerWeights:
    qkv: LinearWeights
    o: LinearWeights
    gate_up: LinearWeights                       # [gate | up]
    down: LinearWeights
    attn_norm: torch.Tensor                      # [hidden] fp32 contiguous
    ffn_norm: torch.Tensor
    cache_index: int                             # the layer's K/V within the cache buffers


@dataclass(frozen=True)
class DecoderDims:
    hidden: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    ffn: int
    eps: float
    scale: float
    interleaved: bool


@dataclass(frozen=True)
class StackKV:
    """Where one forward's keys go and come from, for every layer: fp16 buffers k, v whose
    layer i starts cache_index * layer_stride elements in. New K/V of token t go to slot
    store_slots[t] (fc_rope_store's slot_stride / head_stride). Attention reads either a
    contiguous cache (key_positions set: fc_attention's kv_head_stride, key_stride, num_keys)
    or a paged one (token_seq, seq_slot_start, slots: fc_attention_paged's). Every layer attends
    globally (no sliding window)."""
    k: torch.Tensor
    v: torch.Tensor
    layer_stride: int
    store_slots: torch.Tensor                    # [num_tokens] int64
    slot_stride: int
    head_stride: int
    query_positions: torch.Tensor                # [num_tokens] int64
    kv_head_stride: int
    key_stride: int = 0
    num_keys: int = 0
    key_positions: torch.Tensor | None = None    # [num_keys] int64
    token_seq: torch.Tensor | None = None        # [num_tokens] int64
    seq_slot_start: torch.Tensor | None = None   # [num_seqs + 1] int64
    slots: torch.Tensor | None = None


StackConstructor = Callable[[DecoderDims, Sequence[LayerWeights], int], "DecoderStack"]


@functools.cache
def c_decoder_stack() -> StackConstructor | None:
    if get_backend().name != "c":
        return None
    return DecoderStack


class DecoderStack:
    """x [num_tokens, hidden] -> x after every layer, in place (num_tokens <= MAX_STACK_TOKENS)."""

    def __init__(self, dims: DecoderDims, layers: Sequence[LayerWeights], num_threads: int):
        from fastcoder.kernels._qmatmul import ffi, lib
        self._ffi, self._fn = ffi, lib.fc_decoder_layers
        self.num_threads = num_threads
        self._keep: list = []                         # buffers the C structs point into
        self._dims = ffi.new("fc_decoder_dims *", dict(
            hidden=dims.hidden, num_heads=dims.num_heads, num_kv_heads=dims.num_kv_heads,
            head_dim=dims.head_dim, ffn=dims.ffn, eps=dims.eps, scale=dims.scale,
            interleaved=int(dims.interleaved)))
        self._layers = ffi.new("fc_decoder_layer[]", len(layers))
        for c_layer, layer in zip(self._layers, layers):
            for name in ("qkv", "o", "gate_up", "down"):
                self._fill_linear(getattr(c_layer, name), getattr(layer, name))
            c_layer.attn_norm = self._float_ptr(layer.attn_norm)
            c_layer.ffn_norm = self._float_ptr(layer.ffn_norm)
            c_layer.cache_index = layer.cache_index
        self.num_layers = len(layers)
        floats = lib.fc_decoder_scratch_floats(self._layers, len(layers), self._dims,
                                               MAX_STACK_TOKENS)
        self._scratch = torch.empty(int(floats))
        self._step = ffi.new("fc_decoder_step *")

    def _float_ptr(self, t: torch.Tensor):
        if t.dtype != torch.float32 or not t.is_contiguous():
            raise ValueError("decoder stack: norm weights and biases must be contiguous fp32")
        self._keep.append(t)
        return self._ffi.cast("float *", t.data_ptr())

    def _fill_linear(self, c_linear, linear: LinearWeights) -> None:
        if not 1 <= len(linear.matrices) <= MAX_SEGMENTS:
            raise ValueError(f"decoder stack: {len(linear.matrices)} weight runs in one linear")
        c_linear.num_segments = len(linear.matrices)
        for i, m in enumerate(linear.matrices):
            c_linear.ggml_type[i], c_linear.rows[i] = int(m.ggml_type), m.rows
            c_linear.w[i] = self._ffi.from_buffer("uint8_t[]", m.data)
            self._keep.append(c_linear.w[i])
        c_linear.cols = linear.matrices[0].cols
        c_linear.out_features = sum(m.rows for m in linear.matrices)
        c_linear.bias = self._float_ptr(linear.bias) if linear.bias is not None else self._ffi.NULL

    def __call__(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                 kv: StackKV) -> torch.Tensor:
        """x: [num_tokens, hidden] fp32 contiguous, updated in place; cos, sin: [num_tokens, 1,
        head_dim / 2] contiguous."""
        num_tokens = x.shape[0]
        if num_tokens > MAX_STACK_TOKENS or x.dtype != torch.float32 or not x.is_contiguous():
            raise ValueError(f"decoder stack: x must be contiguous fp32 with at most "
                             f"{MAX_STACK_TOKENS} rows, got {tuple(x.shape)} {x.dtype}")
        if kv.k.dtype != torch.float16 or kv.v.dtype != torch.float16:
            raise TypeError(f"decoder stack: KV cache must be float16, got {kv.k.dtype}")
        # the C side reads these as int64 arrays: another dtype would be read as garbage
        indices = (kv.store_slots, kv.query_positions, kv.key_positions, kv.token_seq,
                   kv.seq_slot_start, kv.slots)
        if any(t is not None and (t.dtype != torch.int64 or not t.is_contiguous())
               for t in indices):
            raise TypeError("decoder stack: slots and positions must be contiguous int64")
        cast, step = self._ffi.cast, self._step
        i64 = lambda t: cast("int64_t *", t.data_ptr()) if t is not None else self._ffi.NULL
        step.cos, step.sin = cast("float *", cos.data_ptr()), cast("float *", sin.data_ptr())
        step.k, step.v = cast("uint16_t *", kv.k.data_ptr()), cast("uint16_t *", kv.v.data_ptr())
        step.layer_stride, step.store_slots = kv.layer_stride, i64(kv.store_slots)
        step.slot_stride, step.head_stride = kv.slot_stride, kv.head_stride
        step.kv_head_stride, step.key_stride, step.num_keys = (kv.kv_head_stride, kv.key_stride,
                                                               kv.num_keys)
        step.key_positions, step.token_seq = i64(kv.key_positions), i64(kv.token_seq)
        step.seq_slot_start, step.slots = i64(kv.seq_slot_start), i64(kv.slots)
        step.query_positions = i64(kv.query_positions)
        self._fn(self._dims, self._layers, self.num_layers, step, cast("float *", x.data_ptr()),
                 num_tokens, cast("float *", self._scratch.data_ptr()), self.num_threads,
                 torch.get_num_threads())
        return x
