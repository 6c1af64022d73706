"""The engine end to end on a tiny random model: determinism, limits, streaming, prefix reuse."""
from __future__ import annotations

import pytest
import torch

from fastcoder.errors import ContextLengthError
from fastcoder.sampling_params import SamplingParams

GREEDY = SamplingParams(temperature=0, max_tokens=12, ignore_eos=True)


def test_greedy_is_deterministic_and_length_limited(tiny_llm):
    a = tiny_llm.generate("the cat", GREEDY)[0].outputs[0]
    b = tiny_llm.generate("the cat", GREEDY)[0].outputs[0]
    assert a.token_ids == b.token_ids and len(a.token_ids) == 12
    assert a.finish_reason == "length"


def test_seed_reproduces_sampling(tiny_llm):
    params = SamplingParams(temperature=1.0, seed=3, max_tokens=16, ignore_eos=True)
    first = tiny_llm.generate("on the", params)[0].outputs[0].token_ids
    assert tiny_llm.generate("on the", params)[0].outputs[0].token_ids == first
    other = SamplingParams(temperature=1.0, seed=4, max_tokens=16, ignore_eos=True)
    assert tiny_llm.generate("on the", other)[0].outputs[0].token_ids != first


def test_stream_concatenates_to_generate(tiny_llm):
    whole = tiny_llm.generate("there", GREEDY)[0].outputs[0]
    deltas = list(tiny_llm.stream("there", GREEDY))
    assert "".join(d.text for d in deltas) == whole.text
    assert tuple(d.token_id for d in deltas if d.token_id is not None) == whole.token_ids
    assert deltas[-1].finish_reason == "length"


def test_stop_string_cuts_output(tiny_llm):
    whole = tiny_llm.generate("in the", GREEDY)[0].outputs[0]
    stop = whole.text[3:5]
    assert stop, "greedy continuation too short for this test"
    cut = tiny_llm.generate("in the", SamplingParams(temperature=0, max_tokens=12,
                                                     ignore_eos=True, stop=(stop,)))[0].outputs[0]
    assert cut.finish_reason == "stop"
    assert cut.text == whole.text[:whole.text.index(stop)]


def test_stop_token_ends_generation(tiny_llm):
    token_ids = tiny_llm.generate("re", GREEDY)[0].outputs[0].token_ids
    stop_id = token_ids[2]
    out = tiny_llm.generate("re", SamplingParams(temperature=0, max_tokens=12, ignore_eos=True,
                                                 stop_token_ids=(stop_id,)))[0].outputs[0]
    assert out.finish_reason == "stop"
    assert out.token_ids == token_ids[:token_ids.index(stop_id)]


def test_generation_stops_at_context_end(tiny_llm):
    prompt = [5] * 60                                    # context is 64
    out = tiny_llm.generate([prompt], SamplingParams(temperature=0, max_tokens=50,
                                                     ignore_eos=True))[0].outputs[0]
    assert len(out.token_ids) == 4 and out.finish_reason == "length"


def test_prompt_longer_than_context_is_a_typed_error(tiny_llm):
    with pytest.raises(ContextLengthError) as info:
        tiny_llm.generate([[5] * 64], GREEDY)
    assert "64 tokens" in info.value.message


def test_prefix_reuse_matches_fresh_prefill(tiny_llm):
    runner = tiny_llm.runner
    prompt = [10, 20, 30, 40, 50, 60]
    runner.cached_ids = []
    fresh = runner.prefill(prompt).clone()
    runner.prefill([10, 20, 30, 99])                      # shares 3 tokens, then diverges
    reused = runner.prefill(prompt)                       # recomputes only from position 3
    assert torch.allclose(fresh, reused, atol=1e-5)


def test_chat_uses_template(tiny_llm):
    ids = tiny_llm.chat_prompt_ids([{"role": "user", "content": "hi"}])
    text = tiny_llm.tokenizer.decode(ids)
    assert text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
