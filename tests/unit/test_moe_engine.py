"""MoE models through the continuous-batching engine with the quantized kernels: greedy tokens
of requests batched together (prefill chunks and decodes mixed, experts grouped across requests)
equal each request run alone, and a prefix-cache hit gives the same tokens."""
from __future__ import annotations

import pytest

from fastcoder.engine.linear_backends import linear_factory
from fastcoder.engine.llm import LLM
from fastcoder.engine.llm_engine import EngineConfig, LLMEngine
from fastcoder.loader.gguf_file import open_gguf
from fastcoder.sampling_params import SamplingParams
from fastcoder.tokenizer.tokenizer import Tokenizer
from tests.helpers.tiny_moe_gguf import write_tiny_model

GREEDY = SamplingParams(temperature=0, max_tokens=12, ignore_eos=True)
PROMPTS = ["the cat sat on", "hello there", "in the beginning", "def f(x):\n  return",
           "one two", "x"]


def run_all(engine: LLMEngine) -> dict[str, list[int]]:
    outputs: dict[str, list[int]] = {}
    while engine.has_unfinished_requests():
        for delta in engine.step():
            outputs.setdefault(delta.request_id, []).extend(delta.new_token_ids)
    return outputs


@pytest.mark.parametrize("arch", ["qwen3moe", "qwen2moe", "llama", "olmoe"])
def test_batched_greedy_equals_alone_and_prefix_hit(tmp_path, arch):
    path = write_tiny_model(tmp_path / f"{arch}.gguf", arch, "q8_0")
    gguf = open_gguf(path)
    engine = LLMEngine(gguf, Tokenizer.from_metadata(gguf.metadata), linear_factory("quant", 1),
                       EngineConfig(max_model_len=64, max_num_batched_tokens=24, block_size=4,
                                    kv_cache_mb=1))
    single = LLM(str(path), kernels="quant", threads=1)
    prompts = [single.tokenizer.encode(p) for p in PROMPTS]
    for i, ids in enumerate(prompts):
        engine.add_request(str(i), ids, GREEDY)
    batched = run_all(engine)
    for i, ids in enumerate(prompts):
        alone = list(single.generate([ids], GREEDY)[0].outputs[0].token_ids)
        assert batched[str(i)] == alone, (arch, i)
    engine.add_request("again", prompts[2], GREEDY)               # its blocks are cached now
    assert run_all(engine)["again"] == batched["2"]
    assert engine.stats()["prefix_cache_hits"] > 0


def test_server_completion_on_moe_model(tmp_path):
    """The OpenAI app over the batching engine serves an MoE model: greedy completion text and
    usage equal the in-process generation."""
    from fastapi.testclient import TestClient

    from fastcoder.engine.async_engine import AsyncEngine
    from fastcoder.server.app import create_app
    path = write_tiny_model(tmp_path / "qwen3moe.gguf", "qwen3moe", "q4_0")
    gguf = open_gguf(path)
    tokenizer = Tokenizer.from_metadata(gguf.metadata)
    engine = AsyncEngine(LLMEngine(gguf, tokenizer, linear_factory("quant", 1),
                                   EngineConfig(max_model_len=64, kv_cache_mb=1, block_size=4)))
    try:
        client = TestClient(create_app(engine, tokenizer, "tiny-moe"), raise_server_exceptions=False)
        body = client.post("/v1/completions", json={
            "model": "tiny-moe", "prompt": "the cat", "max_tokens": 8, "temperature": 0,
            "ignore_eos": True}).json()
    finally:
        engine.shutdown()
    expected = LLM(str(path), kernels="quant", threads=1).generate(
        "the cat", SamplingParams(temperature=0, max_tokens=8, ignore_eos=True))[0].outputs[0]
    assert body["choices"][0]["text"] == expected.text
    assert body["usage"]["completion_tokens"] == 8
