"""`fastcoder bench moe`: decode speed of a Mixture-of-Experts FFN layer on synthetic quantized
weights with Qwen3-30B-A3B's per-layer shapes (hidden 2048, 128 experts, 8 active, expert FFN
768), against (a) a dense SwiGLU FFN with the same active parameter count (FFN 8 * 768) and (b)
the same MoE layer evaluating all 128 experts.

Each variant runs one token at a time through a stack of layers whose weights together exceed
the last-level cache, so weights stream from memory as in a real decode; figures are per layer
and as tokens/s of a 48-layer FFN stack (Qwen3-30B-A3B's depth, attention not included).
Weights are random valid GGUF blocks (fastcoder.bench.kernels.random_weight); the router is
fp32, as llama.cpp keeps it. Bytes per token count every weight byte the layer reads."""
from __future__ import annotations

import time

import numpy as np
import torch

from fastcoder.bench.kernels import random_weight
from fastcoder.layers.activations import Activation, GatedMLP
from fastcoder.layers.moe import MoEFFN
from fastcoder.layers.quant_experts import QuantExperts
from fastcoder.layers.quant_linear import QuantLinear
from fastcoder.loader.gguf_file import QuantTensor
from fastcoder.quant import GGMLType

HIDDEN, NUM_EXPERTS, TOP_K, EXPERT_FFN, MODEL_LAYERS = 2048, 128, 8, 768, 48


def _tensor(name: str, ggml_type: GGMLType, shape: tuple[int, ...], seed: int) -> QuantTensor:
    rows = int(np.prod(shape[:-1]))
    data = random_weight(ggml_type, rows, shape[-1], seed)
    if ggml_type == GGMLType.F32:
        data = (data * 0.02).reshape(shape)              # router logits of order 1
    return QuantTensor(name, ggml_type, shape, data)


def moe_layer(ggml_type: GGMLType, seed: int, num_threads: int) -> MoEFFN:
    e, f, h = NUM_EXPERTS, EXPERT_FFN, HIDDEN
    experts = QuantExperts(_tensor("gate", ggml_type, (e, f, h), seed),
                           _tensor("up", ggml_type, (e, f, h), seed + 1),
                           _tensor("down", ggml_type, (e, h, f), seed + 2), num_threads)
    router = QuantLinear([_tensor("router", GGMLType.F32, (e, h), seed + 3)], [None], num_threads)
    return MoEFFN(router, experts, TOP_K, normalize=True)


def dense_layer(ggml_type: GGMLType, seed: int, num_threads: int) -> GatedMLP:
    f = TOP_K * EXPERT_FFN
    gate_up = QuantLinear([_tensor("gate", ggml_type, (f, HIDDEN), seed),
                           _tensor("up", ggml_type, (f, HIDDEN), seed + 1)], [None, None],
                          num_threads)
    down = QuantLinear([_tensor("down", ggml_type, (HIDDEN, f), seed + 2)], [None], num_threads)
    return GatedMLP(gate_up, down, Activation.SILU)


def _layer_seconds(layers: list, xs: torch.Tensor, num_tokens: int) -> float:
    """Seconds per layer per token: each token runs through every layer in turn."""
    with torch.no_grad():
        for layer in layers:                              # warm-up (page faults, buffers)
            layer(xs[0:1])
        start = time.perf_counter()
        for t in range(num_tokens):
            x = xs[t % len(xs)].unsqueeze(0)              # [1, hidden]
            for layer in layers:
                layer(x)
        return (time.perf_counter() - start) / (num_tokens * len(layers))


def _row(name: str, seconds: float, bytes_per_token: int, bandwidth_gbs: float) -> dict:
    bound = bandwidth_gbs * 1e9 / (bytes_per_token * MODEL_LAYERS)
    tok_s = 1.0 / (seconds * MODEL_LAYERS)
    return {"variant": name, "us_per_layer": round(seconds * 1e6, 1),
            "tok_s_48_layers": round(tok_s, 2),
            "weight_mb_per_token_48_layers": round(bytes_per_token * MODEL_LAYERS / 1e6, 1),
            "gb_s": round(bytes_per_token / seconds / 1e9, 2),
            "fraction_of_bound": round(tok_s / bound, 3)}


def run_moe_bench(num_threads: int, ggml_type: GGMLType = GGMLType.Q4_K, moe_layers: int = 4,
                  dense_layers: int = 32, num_tokens: int = 32) -> dict:
    """moe_layers / dense_layers: distinct layers cycled through (sized past the LLC)."""
    from fastcoder.bench.bandwidth import measure_read_bandwidth
    torch.set_num_threads(num_threads)
    moe = [moe_layer(ggml_type, 10 * i, num_threads) for i in range(moe_layers)]
    dense = [dense_layer(ggml_type, 1000 + 10 * i, num_threads) for i in range(dense_layers)]
    xs = torch.randn(64, HIDDEN, generator=torch.Generator().manual_seed(0))
    experts = moe[0].experts
    expert_bytes = (sum(m.nbytes for m in experts.gate_up) + experts.down.nbytes) // NUM_EXPERTS
    router_bytes = sum(m.nbytes for m in moe[0].router.matrices)
    dense_bytes = sum(m.nbytes for d in dense[:1] for p in (d.gate_up_proj, d.down_proj)
                      for m in p.matrices)
    moe_s = _layer_seconds(moe, xs, num_tokens)
    dense_s = _layer_seconds(dense, xs, num_tokens)
    for layer in moe:                                     # (b): every expert, equal weights
        layer.top_k, layer.normalize = NUM_EXPERTS, False
    all_s = _layer_seconds(moe, xs, max(2, num_tokens // 8))
    bandwidth = measure_read_bandwidth(num_threads)
    rows = [_row(f"moe top-{TOP_K}/{NUM_EXPERTS}", moe_s, TOP_K * expert_bytes + router_bytes,
                 bandwidth),
            _row(f"dense ffn {TOP_K * EXPERT_FFN}", dense_s, dense_bytes, bandwidth),
            _row(f"moe all {NUM_EXPERTS} experts", all_s,
                 NUM_EXPERTS * expert_bytes + router_bytes, bandwidth)]
    return {"suite": "moe", "threads": num_threads, "weight_type": ggml_type.name,
            "shapes": {"hidden": HIDDEN, "experts": NUM_EXPERTS, "active": TOP_K,
                       "expert_ffn": EXPERT_FFN},
            "moe_layers": moe_layers, "dense_layers": dense_layers, "tokens": num_tokens,
            "read_bandwidth_gb_s": round(bandwidth, 1), "results": rows,
            "moe_over_dense_time": round(moe_s / dense_s, 3),
            "all_experts_over_moe_time": round(all_s / moe_s, 2)}


def format_moe(report: dict) -> str:
    lines = [f"MoE FFN decode, {report['weight_type']}, hidden {HIDDEN}, {NUM_EXPERTS} experts "
             f"top-{TOP_K}, expert ffn {EXPERT_FFN}; {report['threads']} threads, read bandwidth "
             f"{report['read_bandwidth_gb_s']} GB/s",
             f"{'variant':<24}{'us/layer':>10}{'tok/s (48 layers)':>19}{'MB/token':>10}"
             f"{'GB/s':>7}{'of bound':>10}"]
    for r in report["results"]:
        lines.append(f"{r['variant']:<24}{r['us_per_layer']:>10}{r['tok_s_48_layers']:>19}"
                     f"{r['weight_mb_per_token_48_layers']:>10}{r['gb_s']:>7}"
                     f"{r['fraction_of_bound']:>10}")
    lines.append(f"moe time / dense time: {report['moe_over_dense_time']} (target <= 1.3); "
                 f"all experts / moe: {report['all_experts_over_moe_time']}x (target >= 8)")
    return "\n".join(lines)
