"""The one-call decoder stack (fc_decoder_layers) against the same model run op by op: hidden
states and K/V caches bit for bit, over a contiguous and a paged cache, with linears of one and
of several weight runs (q/k in Q8_0 with v in Q4_0; gate in Q8_0 with up in Q4_0), in every
layer or only in a later one (the staging for split runs is sized over all layers)."""
from __future__ import annotations

import pytest
import torch
from gguf import GGMLQuantizationType as Q

from fastcoder.engine.llm import LLM
from fastcoder.kernels.decoder_stack import MAX_STACK_TOKENS
from fastcoder.layers.kv_cache import KVCache
from fastcoder.layers.paged_kv import BatchLayout, PagedKVCache, SequenceSlice
from tests.helpers.tiny_gguf import write_tiny_qwen2


OVERRIDES = {"one-run": None, "mixed-runs": {"attn_v": Q.Q4_0, "ffn_up": Q.Q4_0},
             "mixed-in-last-layer": {"blk.2.attn_v": Q.Q4_0, "blk.2.ffn_up": Q.Q4_0}}


@pytest.fixture(scope="module", params=list(OVERRIDES))
def model(request, tmp_path_factory):
    overrides = OVERRIDES[request.param]
    path = write_tiny_qwen2(tmp_path_factory.mktemp("stack") / "tiny.gguf", num_layers=3,
                            context_length=128, quant=Q.Q8_0, quant_overrides=overrides)
    model = LLM(str(path), threads=2).runner.model
    assert model.stack is not None, "the decoder stack was not built (C backend missing?)"
    runs = [len(layer.attn.qkv_proj.matrices) for layer in model.layers]
    assert runs == {"one-run": [1, 1, 1], "mixed-runs": [2, 2, 2],
                    "mixed-in-last-layer": [1, 1, 2]}[request.param]
    return model


def run(model, token_ids, positions, cache, use_stack: bool) -> torch.Tensor:
    stack = model.stack
    model.stack = stack if use_stack else None
    try:
        return model(torch.tensor(token_ids), torch.tensor(positions), cache)
    finally:
        model.stack = stack


def contiguous_cache(model) -> KVCache:
    c = model.config
    return KVCache(c.num_layers, 128, c.num_kv_heads, c.head_dim)


def test_contiguous_cache_matches_per_op_path(model):
    caches = {True: contiguous_cache(model), False: contiguous_cache(model)}
    assert caches[True].stack_kv(torch.arange(3)) is not None      # the stack does run
    # a prompt, one decode token, a 4-token verification step
    steps = [([5, 80, 17, 3, 99, 41, 7], range(0, 7)), ([12], [7]), ([4, 4, 60, 2], range(8, 12))]
    for token_ids, positions in steps:
        got, want = (run(model, token_ids, list(positions), caches[s], s) for s in (True, False))
        assert torch.equal(got, want)
    assert torch.equal(caches[True].full.k, caches[False].full.k)
    assert torch.equal(caches[True].full.v, caches[False].full.v)


def paged_cache(model) -> PagedKVCache:
    c = model.config
    return PagedKVCache((tuple(range(c.num_layers)),), (6,), 4, c.num_kv_heads, c.head_dim)


def layout(cache: PagedKVCache, parts: list[tuple[list[int], int, int]]) -> BatchLayout:
    """parts: (block table, first new position, new tokens) per sequence."""
    sequences, slot_mappings, start = [], [], 0
    for blocks, first, count in parts:
        key_slots = cache.slots(blocks, 0, first + count)
        sequences.append(SequenceSlice(start, count, first + count, (key_slots,)))
        slot_mappings.append(key_slots[first:])
        start += count
    return BatchLayout(tuple(sequences), (torch.cat(slot_mappings),))


def test_paged_cache_matches_per_op_path(model):
    caches = {True: paged_cache(model), False: paged_cache(model)}
    assert caches[True].one_group                                   # the stack does run
    # two sequences (blocks 1-2 and 3-4): a mixed first step, then 3 + 1 new tokens
    steps = [([([1, 2], 0, 2), ([3, 4], 0, 6)], [9, 14, 5, 80, 17, 3, 99, 41]),
             ([([1, 2], 2, 3), ([3, 4], 6, 1)], [7, 7, 30, 12])]
    for parts, token_ids in steps:
        positions = [p for _, first, count in parts for p in range(first, first + count)]
        outs = []
        for use_stack, cache in caches.items():
            cache.layout = layout(cache, parts)
            outs.append(run(model, token_ids, positions, cache, use_stack))
        assert torch.equal(outs[0], outs[1])
    assert torch.equal(caches[True].k[0], caches[False].k[0])
    assert torch.equal(caches[True].v[0], caches[False].v[0])


def test_long_steps_take_the_per_op_path(model):
    """A prompt longer than the stack's scratch runs op by op, and the stack refuses it."""
    cache = contiguous_cache(model)
    n = MAX_STACK_TOKENS + 1
    hidden = run(model, list(range(n)), list(range(n)), cache, use_stack=True)
    assert hidden.shape == (n, model.config.hidden_size)
    x = torch.zeros(n, model.config.hidden_size)
    cos, sin = model.rotary.cos_sin(torch.arange(n))
    with pytest.raises(ValueError, match="at most"):
        model.stack(x, cos, sin, cache.stack_kv(torch.arange(n)))
