"""Gemma 3 270M in the batching engine (two KV groups: global layers keep every page, the
sliding-window layers free pages that left the 512-token window): a prompt past the window gives
the same greedy tokens alone, among concurrent requests, and resent with a prefix-cache hit; the
local pages a long request holds stop growing while its global pages keep growing."""
from __future__ import annotations

import pytest

from fastcoder.engine.linear_backends import linear_factory
from fastcoder.engine.llm_engine import EngineConfig, LLMEngine
from fastcoder.kv.hybrid_manager import HybridKVCacheManager
from fastcoder.loader.gguf_file import open_gguf
from fastcoder.sampling_params import SamplingParams
from fastcoder.tokenizer.tokenizer import Tokenizer
from tests.conftest import FIXTURES, model_path
from tests.model.golden import load_golden

MODEL = "gemma-3-270m"
BS, BUDGET, WINDOW = 16, 256, 512
PARAMS = SamplingParams(temperature=0, max_tokens=12, ignore_eos=True)
SHORT = ["def quicksort(arr):", "The capital of France is", "import numpy as np\n"]


@pytest.fixture(scope="module")
def engine() -> LLMEngine:
    gguf = open_gguf(model_path(MODEL))
    config = EngineConfig(max_model_len=1024, max_num_seqs=4, max_num_batched_tokens=BUDGET,
                          block_size=BS, kv_cache_mb=64)
    return LLMEngine(gguf, Tokenizer.from_metadata(gguf.metadata), linear_factory("quant", 2),
                     config)


@pytest.fixture(scope="module")
def long_prompt() -> list[int]:
    data, _, _ = load_golden(FIXTURES / f"golden_{MODEL}.npz")
    return [int(t) for t in data["long_prompt"][:700]]          # past the window


def run(engine: LLMEngine, prompts: dict[str, list[int]], trace=None) -> dict[str, list[int]]:
    for rid, ids in prompts.items():
        engine.add_request(rid, ids, PARAMS)
    outputs: dict[str, list[int]] = {rid: [] for rid in prompts}
    while engine.has_unfinished_requests():
        for delta in engine.step():
            outputs[delta.request_id].extend(delta.new_token_ids)
        if trace is not None:
            trace()
    return outputs


@pytest.fixture(scope="module")
def long_alone(engine, long_prompt) -> tuple[list[int], list[tuple[int, int]]]:
    """The long prompt alone: its greedy tokens and (global, local) pages in use after each step."""
    kv = engine.kv
    used: list[tuple[int, int]] = []
    outputs = run(engine, {"long": long_prompt},
                  trace=lambda: used.append((kv.full.num_used_blocks, kv.local.num_used_blocks)))
    return outputs["long"], used


def test_long_request_holds_a_bounded_number_of_local_pages(engine, long_prompt, long_alone):
    assert isinstance(engine.kv, HybridKVCacheManager)
    assert engine.kv_layout.group_layers[0] == (5, 11, 17)
    assert len(engine.kv_layout.group_layers[1]) == 15
    tokens, used = long_alone
    assert len(tokens) == PARAMS.max_tokens
    used = used[:-1]                          # the last step finished it: pages freed
    num_prefill_steps = -(-len(long_prompt) // BUDGET)
    global_pages = [g for g, _ in used]
    local_pages = [loc for _, loc in used]
    assert global_pages[-1] == -(-(len(long_prompt) + PARAMS.max_tokens - 1) // BS)
    # At most the window plus one chunk, ever.
    assert max(local_pages) <= -(-(WINDOW - 1) // BS) + 1 + BUDGET // BS + 1
    # Decoding past the window: the global pages grow, the local ones stay at the window's.
    decode_local = local_pages[num_prefill_steps:]
    assert max(decode_local) <= -(-(WINDOW - 1) // BS) + 2
    assert global_pages[-1] > global_pages[num_prefill_steps - 1]


def test_same_greedy_tokens_alone_batched_and_with_a_prefix_hit(engine, long_prompt, long_alone):
    tokenizer = engine.tokenizer
    shorts = {f"s{i}": tokenizer.encode(p) for i, p in enumerate(SHORT)}
    alone = {rid: run(engine, {rid: ids})[rid] for rid, ids in shorts.items()}
    alone["long"] = long_alone[0]
    hits_before = engine.kv.prefix_cache_stats.hits
    # The long prompt again (its global pages and the last window of its local pages are
    # cached), now among the short requests, which hit their own earlier runs.
    batched = run(engine, {"long": long_prompt, **shorts})
    assert batched == alone
    long_hit = engine.kv.prefix_cache_stats.hits - hits_before
    assert long_hit >= (len(long_prompt) - 1) // BS * BS
    assert engine.kv.num_used_blocks == 0
