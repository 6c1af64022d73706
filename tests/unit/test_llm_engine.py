"""Continuous batching on a tiny model: batched greedy outputs equal one-at-a-time outputs,
prefix-cache hits, aborts free blocks, logprobs."""
from __future__ import annotations

import pytest

from fastcoder.engine.linear_backends import linear_factory
from fastcoder.engine.llm import LLM
from fastcoder.engine.llm_engine import EngineConfig, LLMEngine
from fastcoder.loader.gguf_file import open_gguf
from fastcoder.sampling_params import SamplingParams
from fastcoder.tokenizer.tokenizer import Tokenizer

GREEDY = SamplingParams(temperature=0, max_tokens=16, ignore_eos=True)
PROMPTS = ["the cat sat on", "hello there", "in the beginning", "def f(x):\n  return",
           "one two", "the the the", "on and on", "x"]


def make_engine(path, kernels="reference", **overrides) -> LLMEngine:
    gguf = open_gguf(path)
    config = EngineConfig(**{"max_model_len": 64, "max_num_batched_tokens": 24,
                             "block_size": 4, "kv_cache_mb": 1, **overrides})
    return LLMEngine(gguf, Tokenizer.from_metadata(gguf.metadata), linear_factory(kernels, 1),
                     config)


def run_all(engine: LLMEngine) -> dict[str, list]:
    outputs: dict[str, list] = {}
    while engine.has_unfinished_requests():
        for delta in engine.step():
            outputs.setdefault(delta.request_id, []).append(delta)
    return outputs


def test_batched_greedy_equals_single_request(tiny_gguf):
    engine = make_engine(tiny_gguf)
    single = LLM(str(tiny_gguf), kernels="reference")
    for i, prompt in enumerate(PROMPTS):
        engine.add_request(str(i), single.tokenizer.encode(prompt), GREEDY)
    outputs = run_all(engine)
    for i, prompt in enumerate(PROMPTS):
        expected = single.generate(prompt, GREEDY)[0].outputs[0]
        deltas = outputs[str(i)]
        assert tuple(t for d in deltas for t in d.new_token_ids) == expected.token_ids
        assert "".join(d.text for d in deltas) == expected.text
        assert deltas[-1].finish_reason == "length"
    assert engine.stats()["kv_blocks_used"] == 0


def test_prefix_cache_hit_reported(tiny_gguf):
    engine = make_engine(tiny_gguf)
    prompt = list(range(60, 90))                                   # 30 tokens, 7 full blocks
    engine.add_request("a", prompt, GREEDY)
    first = run_all(engine)["a"]
    engine.add_request("b", prompt, GREEDY)
    second = run_all(engine)["b"]
    assert first[0].num_cached_tokens == 0
    assert second[0].num_cached_tokens == 28                       # 7 blocks of 4
    assert [d.new_token_ids for d in first] == [d.new_token_ids for d in second]
    assert engine.stats()["prefix_cache_hits"] == 28


def test_abort_frees_blocks_at_once(tiny_gguf):
    engine = make_engine(tiny_gguf)
    engine.add_request("a", list(range(60, 80)), GREEDY)
    engine.add_request("b", list(range(80, 100)), GREEDY)
    engine.step()
    assert engine.stats()["kv_blocks_used"] > 0
    engine.abort_request("a")
    engine.abort_request("b")
    stats = engine.stats()
    assert stats["kv_blocks_used"] == 0 and stats["num_running"] == 0
    assert not engine.has_unfinished_requests()


def test_stop_string_and_logprobs(tiny_gguf):
    engine = make_engine(tiny_gguf)
    engine.add_request("a", list(range(60, 70)), GREEDY, num_logprobs=3)
    deltas = run_all(engine)["a"]
    for d in deltas:
        (lp,) = d.logprobs
        assert lp.token_id == d.new_token_ids[0] and len(lp.top) == 3
        assert lp.top[0][0] == lp.token_id                         # greedy picks the best
        assert lp.logprob == pytest.approx(lp.top[0][1])
    text = "".join(d.text for d in deltas)
    stop = text[4:6]
    engine.add_request("b", list(range(60, 70)), SamplingParams(
        temperature=0, max_tokens=16, ignore_eos=True, stop=(stop,)))
    cut = run_all(engine)["b"]
    assert cut[-1].finish_reason == "stop"
    assert "".join(d.text for d in cut) == text[:text.index(stop)]
