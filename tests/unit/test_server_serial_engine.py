"""SerialEngine (the server's one-request-at-a-time engine) on a tiny model: the same tokens, text,
finish reasons and logprobs as the single-sequence loop and the batching LLMEngine; FIFO order,
prefix reuse, abort, limits."""
from __future__ import annotations

import math

import pytest

from fastcoder.engine.linear_backends import linear_factory
from fastcoder.engine.llm import LLM
from fastcoder.engine.llm_engine import EngineConfig, LLMEngine
from fastcoder.engine.runner import ModelRunner
from fastcoder.engine.serial_engine import SerialEngine
from fastcoder.errors import ContextLengthError, InvalidParameterError
from fastcoder.loader.gguf_file import open_gguf
from fastcoder.sampling_params import SamplingParams
from fastcoder.tokenizer.tokenizer import Tokenizer

GREEDY = SamplingParams(temperature=0, max_tokens=12, ignore_eos=True)
PROMPTS = ["the cat sat on", "hello there", "def f(x):\n  return", "x"]


def make_serial(path) -> SerialEngine:
    gguf = open_gguf(path)
    return SerialEngine(ModelRunner(gguf, 64, linear_factory("reference", 1)),
                        Tokenizer.from_metadata(gguf.metadata))


def make_batched(path) -> LLMEngine:
    gguf = open_gguf(path)
    return LLMEngine(gguf, Tokenizer.from_metadata(gguf.metadata), linear_factory("reference", 1),
                     EngineConfig(max_model_len=64, block_size=4, kv_cache_mb=1))


def run_all(engine) -> dict[str, list]:
    outputs: dict[str, list] = {}
    while engine.has_unfinished_requests():
        for delta in engine.step():
            outputs.setdefault(delta.request_id, []).append(delta)
    return outputs


@pytest.fixture(scope="module")
def tokenizer(tiny_gguf):
    return Tokenizer.from_metadata(open_gguf(tiny_gguf).metadata)


def test_greedy_equals_single_sequence_loop(tiny_gguf, tokenizer):
    engine = make_serial(tiny_gguf)
    single = LLM(str(tiny_gguf), kernels="reference")
    for i, prompt in enumerate(PROMPTS):
        engine.add_request(str(i), tokenizer.encode(prompt), GREEDY)
    outputs = run_all(engine)
    for i, prompt in enumerate(PROMPTS):
        expected = single.generate(prompt, GREEDY)[0].outputs[0]
        deltas = outputs[str(i)]
        assert [d.new_token_ids for d in deltas] == [(t,) for t in expected.token_ids]
        assert "".join(d.text for d in deltas) == expected.text
        assert [d.finish_reason for d in deltas] == [None] * 11 + ["length"]
        assert {d.num_prompt_tokens for d in deltas} == {len(tokenizer.encode(prompt))}
    assert engine.stats()["num_running"] == 0 and engine.stats()["kv_blocks_used"] == 0


@pytest.mark.parametrize("params", [
    SamplingParams(temperature=0, max_tokens=40),                     # stops on its EOS
    SamplingParams(temperature=1.0, seed=3, max_tokens=20, stop=("e", "th")),
    SamplingParams(temperature=0.7, top_p=0.9, seed=1, max_tokens=10, frequency_penalty=1.5),
])
def test_same_deltas_as_batched_engine(tiny_gguf, tokenizer, params):
    serial, batched = make_serial(tiny_gguf), make_batched(tiny_gguf)
    for engine in (serial, batched):
        for i, prompt in enumerate(PROMPTS):
            engine.add_request(str(i), tokenizer.encode(prompt), params, 2)
    got, want = run_all(serial), run_all(batched)
    for i in range(len(PROMPTS)):
        strip = lambda ds: [(d.new_token_ids, d.text, d.finish_reason,
                             [(lp.token_id, round(lp.logprob, 4)) for lp in d.logprobs])
                            for d in ds]
        assert strip(got[str(i)]) == strip(want[str(i)])


def test_one_request_at_a_time_in_arrival_order(tiny_gguf, tokenizer):
    engine = make_serial(tiny_gguf)
    for name in ("a", "b", "c"):
        engine.add_request(name, tokenizer.encode("the cat"), GREEDY)
    assert engine.stats()["num_running"] == 1 and engine.stats()["num_waiting"] == 2
    order = [d.request_id for _ in range(36) for d in engine.step()]
    assert order == ["a"] * 12 + ["b"] * 12 + ["c"] * 12
    assert engine.step() == [] and not engine.has_unfinished_requests()


def test_prefix_reuse_reported(tiny_gguf, tokenizer):
    engine = make_serial(tiny_gguf)
    prompt = tokenizer.encode("the cat sat on the mat")
    engine.add_request("a", prompt, GREEDY)
    first = run_all(engine)["a"]
    engine.add_request("b", prompt + tokenizer.encode(" and"), GREEDY)
    second = run_all(engine)["b"]
    assert first[0].num_cached_tokens == 0
    assert second[0].num_cached_tokens == len(prompt)              # the whole earlier prompt
    stats = engine.stats()
    assert stats["prefix_cache_hits"] == len(prompt)
    assert stats["prefix_cache_queries"] == 2 * len(prompt) + len(tokenizer.encode(" and"))


def test_abort_head_and_waiting(tiny_gguf, tokenizer):
    engine = make_serial(tiny_gguf)
    engine.add_request("a", tokenizer.encode("the cat"), GREEDY)
    engine.add_request("b", tokenizer.encode("hello"), GREEDY)
    engine.add_request("c", tokenizer.encode("one two"), GREEDY)
    engine.step()
    engine.step()
    assert engine.stats()["kv_blocks_used"] == math.ceil((len(tokenizer.encode("the cat")) + 2)
                                                         / 16)
    engine.abort_request("a")
    engine.abort_request("c")
    engine.abort_request("unknown")                                # ignored
    outputs = run_all(engine)
    assert list(outputs) == ["b"] and len(outputs["b"]) == 12
    assert engine.stats()["kv_blocks_used"] == 0


def test_logprobs_top_n(tiny_gguf, tokenizer):
    engine = make_serial(tiny_gguf)
    engine.add_request("a", tokenizer.encode("the cat"), GREEDY, num_logprobs=3)
    engine.add_request("b", tokenizer.encode("the cat"), GREEDY)
    outputs = run_all(engine)
    for delta in outputs["a"]:
        (lp,) = delta.logprobs
        assert len(lp.top) == 3 and lp.top[0][0] == lp.token_id       # greedy picks the best
        assert lp.logprob == lp.top[0][1] and lp.top[0][1] >= lp.top[1][1] >= lp.top[2][1]
    assert all(d.logprobs == () for d in outputs["b"])


def test_limits_and_typed_errors(tiny_gguf, tokenizer):
    engine = make_serial(tiny_gguf)
    with pytest.raises(ContextLengthError):
        engine.add_request("long", list(range(64)), GREEDY)
    with pytest.raises(ContextLengthError):
        engine.add_request("empty", [], GREEDY)
    engine.add_request("a", list(range(60)), SamplingParams(temperature=0, ignore_eos=True,
                                                             max_tokens=None))
    with pytest.raises(InvalidParameterError):
        engine.add_request("a", [1], GREEDY)
    deltas = run_all(engine)["a"]
    assert len(deltas) == 4 and deltas[-1].finish_reason == "length"   # the context's end
