"""Speculative decoding on the real 0.5B model and three edits of the `bench spec` workload:
greedy output identical token for token to plain decoding, through the single-sequence loop and
through the continuous-batching engine with the three requests running together."""
from __future__ import annotations

import pytest

from fastcoder.bench.spec_workload import edit_tasks
from fastcoder.engine.linear_backends import linear_factory
from fastcoder.engine.llm import LLM
from fastcoder.engine.llm_engine import EngineConfig, LLMEngine
from fastcoder.loader.gguf_file import open_gguf
from fastcoder.sampling_params import SamplingParams
from fastcoder.spec.config import SpeculativeConfig

MAX_TOKENS = 200


@pytest.fixture(scope="module")
def prompts(qwen_llm) -> list[list[int]]:
    return [qwen_llm.chat_prompt_ids([{"role": "user", "content": task.prompt}])
            for task in edit_tasks(3, 30)]


@pytest.fixture(scope="module")
def plain(qwen_llm, prompts) -> list[tuple[int, ...]]:
    params = SamplingParams(temperature=0, max_tokens=MAX_TOKENS)
    return [qwen_llm.generate(ids, params)[0].outputs[0].token_ids for ids in prompts]


def test_prompt_lookup_single_sequence_is_identical(qwen_path, prompts, plain):
    llm = LLM(str(qwen_path), max_model_len=2048, threads=2, speculative="ngram")
    params = SamplingParams(temperature=0, max_tokens=MAX_TOKENS)
    for ids, want in zip(prompts, plain):
        assert llm.generate(ids, params)[0].outputs[0].token_ids == want
    assert llm.spec_stats.acceptance_rate > 0.5        # the edit really was drafted from the prompt


def test_prompt_lookup_in_the_batching_engine_is_identical(qwen_path, qwen_llm, prompts, plain):
    engine = LLMEngine(open_gguf(qwen_path), qwen_llm.tokenizer, linear_factory("quant", 2),
                       EngineConfig(max_model_len=2048, kv_cache_mb=128),
                       speculative=SpeculativeConfig.parse("ngram"))
    params = SamplingParams(temperature=0, max_tokens=MAX_TOKENS)
    for i, ids in enumerate(prompts):
        engine.add_request(str(i), ids, params)
    got: dict[str, list[int]] = {str(i): [] for i in range(len(prompts))}
    while engine.has_unfinished_requests():
        for delta in engine.step():
            got[delta.request_id].extend(delta.new_token_ids)
    for i, want in enumerate(plain):
        assert tuple(got[str(i)]) == want, i
    assert engine.spec_counters.snapshot().num_accepted > 0
