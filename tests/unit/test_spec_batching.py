"""Speculative verification inside continuous batching. Scheduler: a draft is "compute the next
1 + k tokens"; after verification num_computed_tokens rolls back to the accepted length and the
blocks of rejected positions return to the pool (exact block ids, block size 4), never hashed.
Engine: greedy outputs of several concurrent requests equal plain decoding, token for token."""
from __future__ import annotations

import pytest

from fastcoder.engine.linear_backends import linear_factory
from fastcoder.engine.llm import LLM
from fastcoder.engine.llm_engine import EngineConfig, LLMEngine
from fastcoder.kv.kv_cache_manager import KVCacheManager
from fastcoder.engine.scheduler import Scheduler
from fastcoder.loader.gguf_file import open_gguf
from fastcoder.sampling_params import SamplingParams
from fastcoder.spec.config import SpeculativeConfig
from fastcoder.tokenizer.tokenizer import Tokenizer
from tests.helpers.tiny_gguf import write_tiny_qwen2

BS = 4
GREEDY = SamplingParams(temperature=0, max_tokens=60, ignore_eos=True)


def decoding_request(scheduler: Scheduler, prompt_len: int = 6):
    scheduler.add_request("a", list(range(prompt_len)), GREEDY)
    scheduler.schedule()
    scheduler.update_from_output({"a": 50})                 # prompt computed, 1 token out
    return scheduler.get_request("a")


def test_draft_is_scheduled_with_the_last_token_and_rejections_roll_back():
    kv = KVCacheManager(11, BS)
    scheduler = Scheduler(kv, max_num_seqs=4, max_num_batched_tokens=32, max_model_len=40)
    request = decoding_request(scheduler)                   # 7 tokens, 6 computed, blocks 1, 2
    request.spec_token_ids = [51, 52, 53, 54, 55, 56]
    (item,) = scheduler.schedule().scheduled
    assert item.token_ids_to_compute == (50, 51, 52, 53, 54, 55, 56)
    assert (item.start_position, item.num_draft_tokens, item.is_last_chunk) == (6, 6, True)
    assert item.block_table == (1, 2, 3, 4)                # positions 6..12
    # Two drafts accepted, then the target's own token 99.
    scheduler.update_from_output({"a": [51, 52, 99]})
    assert request.output_ids == [50, 51, 52, 99] and request.spec_token_ids == []
    assert request.num_computed_tokens == 9                 # 50, 51, 52 are in the KV
    assert kv.block_table("a") == [1, 2, 3]                 # block 4 held only rejected slots
    assert kv.pool.free_queue.block_ids()[-1] == 4            # freed last, evicted last
    assert [b.block_hash is not None for b in kv.req_to_blocks["a"]] == [True, True, False]
    (item,) = scheduler.schedule().scheduled                # plain decode of 99 at 9
    assert (item.start_position, item.token_ids_to_compute, item.block_table) == \
        (9, (99,), (1, 2, 3))


def test_fully_accepted_draft_keeps_its_blocks():
    kv = KVCacheManager(11, BS)
    scheduler = Scheduler(kv, max_num_seqs=4, max_num_batched_tokens=32, max_model_len=40)
    request = decoding_request(scheduler)
    request.spec_token_ids = [51, 52, 53]
    scheduler.schedule()
    scheduler.update_from_output({"a": [51, 52, 53, 60]})
    assert request.num_computed_tokens == 10 and request.num_tokens == 11
    assert kv.block_table("a") == [1, 2, 3]
    request.spec_token_ids = [1]
    scheduler.schedule()
    with pytest.raises(ValueError, match="1 draft tokens"):  # more tokens than drafts + 1
        scheduler.update_from_output({"a": [1, 2, 3]})


def test_draft_trimmed_to_budget_and_context():
    kv = KVCacheManager(11, BS)
    scheduler = Scheduler(kv, max_num_seqs=4, max_num_batched_tokens=4, max_model_len=12)
    request = decoding_request(scheduler, prompt_len=4)     # chunk 1 (4 tokens), then decode
    request.spec_token_ids = [51, 52, 53, 54, 55]
    (item,) = scheduler.schedule().scheduled
    assert item.token_ids_to_compute == (50, 51, 52, 53) and item.num_draft_tokens == 3
    scheduler.update_from_output({"a": [7]})                # first draft rejected
    assert request.num_computed_tokens == 5 and kv.block_table("a") == [1, 2]


def test_draft_capped_by_context():
    kv = KVCacheManager(3, BS)                              # 2 usable blocks
    scheduler = Scheduler(kv, max_num_seqs=4, max_num_batched_tokens=32, max_model_len=8)
    request = decoding_request(scheduler, prompt_len=5)
    request.spec_token_ids = [1, 2, 3, 4, 5]
    (item,) = scheduler.schedule().scheduled
    assert item.num_draft_tokens == 1                       # max_model_len caps position 6


@pytest.fixture(scope="module")
def target_path(tmp_path_factory):
    return write_tiny_qwen2(tmp_path_factory.mktemp("specb") / "t.gguf", context_length=128)


PROMPTS = ["the cat sat on the mat. the cat sat on the", "abcabcabcabc", "def f(x):\n  return",
           "in the beginning", "one two one two one", "x"]


def make_engine(path, speculative=None) -> LLMEngine:
    gguf = open_gguf(path)
    config = EngineConfig(max_model_len=128, max_num_batched_tokens=32, block_size=4,
                          kv_cache_mb=1, max_num_seqs=4)
    return LLMEngine(gguf, Tokenizer.from_metadata(gguf.metadata),
                     linear_factory("reference", 1), config,
                     SpeculativeConfig.parse(speculative) if speculative else None)


def run_all(engine: LLMEngine) -> dict[str, list]:
    outputs: dict[str, list] = {}
    while engine.has_unfinished_requests():
        for delta in engine.step():
            outputs.setdefault(delta.request_id, []).append(delta)
    return outputs


@pytest.mark.parametrize("method", ["ngram", "self-draft"])
def test_batched_speculation_matches_plain(target_path, method):
    spec = "ngram" if method == "ngram" else f"draft:{target_path}"
    engine = make_engine(target_path, spec)
    single = LLM(str(target_path), kernels="reference", threads=1)
    stop_params = SamplingParams(temperature=0, max_tokens=60, ignore_eos=True, stop=("e t",))
    params = [GREEDY] * (len(PROMPTS) - 1) + [stop_params]
    for i, (prompt, p) in enumerate(zip(PROMPTS, params)):
        engine.add_request(str(i), single.tokenizer.encode(prompt), p)
    outputs = run_all(engine)
    for i, (prompt, p) in enumerate(zip(PROMPTS, params)):
        want = single.generate(prompt, p)[0].outputs[0]
        deltas = outputs[str(i)]
        assert tuple(t for d in deltas for t in d.new_token_ids) == want.token_ids
        assert "".join(d.text for d in deltas) == want.text
        assert deltas[-1].finish_reason == want.finish_reason
    stats = engine.stats()
    assert stats["kv_blocks_used"] == 0
    assert stats["spec_accepted_tokens"] > 0 and stats["spec_draft_tokens"] > 0
    if method == "self-draft":      # fp32 reference matmuls: rows may round apart in a tie
        assert stats["spec_acceptance_rate"] > 0.95
    assert any(len(d.new_token_ids) > 1 for ds in outputs.values() for d in ds)


def test_metrics_render_spec_counters():
    from fastcoder.server.metrics import Metrics
    text = Metrics().render({"spec_draft_tokens": 10, "spec_accepted_tokens": 9, "spec_steps": 2,
                             "spec_acceptance_rate": 0.9, "spec_mean_accepted_length": 5.5})
    assert "fastcoder_spec_acceptance_rate 0.9\n" in text
    assert "fastcoder_spec_mean_accepted_length 5.5\n" in text
    assert "fastcoder_spec_draft_tokens_total 10\n" in text
    assert "spec" not in Metrics().render({"num_running": 1})
