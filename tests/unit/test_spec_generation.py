"""Speculative decoding through the single-sequence engine on tiny random models: greedy output
identical token for token to plain decoding, with prompt lookup and with a draft model that
never agrees (another random model) or always does (the target itself)."""
from __future__ import annotations

import pytest

from fastcoder.engine.llm import LLM
from fastcoder.sampling_params import SamplingParams
from tests.helpers.tiny_gguf import write_tiny_qwen2

GREEDY = SamplingParams(temperature=0, max_tokens=60, ignore_eos=True)
PROMPTS = ["the cat sat on the mat. the cat sat on the", "def f(x):\n  return x\ndef f(x):",
           "abcabcabcabc", "in the beginning", "x"]


@pytest.fixture(scope="module")
def target_path(tmp_path_factory):
    return write_tiny_qwen2(tmp_path_factory.mktemp("spec") / "target.gguf", context_length=256)


@pytest.fixture(scope="module")
def plain(target_path):
    return LLM(str(target_path), kernels="reference", threads=1)


@pytest.fixture(scope="module")
def expected(plain):
    return [plain.generate(p, GREEDY)[0].outputs[0] for p in PROMPTS]


def assert_same_outputs(llm, expected, params=GREEDY):
    for prompt, want in zip(PROMPTS, expected):
        got = llm.generate(prompt, params)[0].outputs[0]
        assert got.token_ids == want.token_ids, prompt
        assert got.text == want.text and got.finish_reason == want.finish_reason


def test_ngram_greedy_identical(target_path, expected):
    llm = LLM(str(target_path), kernels="reference", threads=1, speculative="ngram")
    assert_same_outputs(llm, expected)
    stats = llm.spec_stats
    assert stats.num_accepted > 0 and stats.num_accepted < stats.num_drafted   # both paths ran


def test_draft_model_greedy_identical(tmp_path, target_path, expected):
    draft = write_tiny_qwen2(tmp_path / "draft.gguf", context_length=256, seed=1, hidden=32,
                             num_heads=2, num_kv_heads=1)
    llm = LLM(str(target_path), kernels="reference", threads=1, speculative=f"draft:{draft}")
    assert_same_outputs(llm, expected)
    assert llm.spec_stats.num_drafted > 0 and llm.spec_stats.num_accepted < \
        llm.spec_stats.num_drafted


def test_self_draft_accepts_everything(target_path, expected):
    llm = LLM(str(target_path), kernels="reference", threads=1, speculative=f"draft:{target_path}")
    assert_same_outputs(llm, expected)
    stats = llm.spec_stats
    assert stats.num_accepted == stats.num_drafted > 0


def test_stop_string_and_max_tokens_mid_draft(target_path, plain):
    llm = LLM(str(target_path), kernels="reference", threads=1, speculative=f"draft:{target_path}")
    prompt = PROMPTS[0]
    whole = plain.generate(prompt, GREEDY)[0].outputs[0]
    stop = whole.text[20:23]
    for params in (SamplingParams(temperature=0, max_tokens=60, ignore_eos=True, stop=(stop,)),
                   SamplingParams(temperature=0, max_tokens=7, ignore_eos=True)):
        want = plain.generate(prompt, params)[0].outputs[0]
        got = llm.generate(prompt, params)[0].outputs[0]
        assert (got.token_ids, got.text, got.finish_reason) == \
            (want.token_ids, want.text, want.finish_reason)
    deltas = list(llm.stream(prompt, SamplingParams(temperature=0, max_tokens=7,
                                                    ignore_eos=True)))
    assert len(deltas) == 7 and deltas[-1].finish_reason == "length"


def test_context_end_with_drafts(target_path):
    prompt = [5, 6, 7] * 80                                  # 240 of 256 context tokens
    params = SamplingParams(temperature=0, max_tokens=100, ignore_eos=True)
    want = LLM(str(target_path), kernels="reference", threads=1).generate([prompt], params)[0].outputs[0]
    got = LLM(str(target_path), kernels="reference", threads=1,
              speculative="ngram").generate([prompt], params)[0].outputs[0]
    assert got.token_ids == want.token_ids and len(got.token_ids) == 16


def test_sampling_with_speculation_is_seeded_and_bounded(target_path):
    llm = LLM(str(target_path), kernels="reference", threads=1, speculative="ngram")
    params = SamplingParams(temperature=0.7, seed=5, max_tokens=40, ignore_eos=True)
    first = llm.generate(PROMPTS[2], params)[0].outputs[0]
    assert len(first.token_ids) == 40
    assert llm.generate(PROMPTS[2], params)[0].outputs[0].token_ids == first.token_ids
