"""Scheduler: one code path for prefill, chunked prefill and decode; exact block tables,
preemption order, abort, max_num_seqs and max_model_len (block size 4). The runner is faked:
`step()` feeds back one sampled token per finished chunk."""
from __future__ import annotations

import pytest

from fastcoder.engine.request import RequestStatus
from fastcoder.engine.scheduler import Scheduler
from fastcoder.engine.scheduler_output import SchedulerOutput
from fastcoder.errors import ContextLengthError, InvalidParameterError
from fastcoder.kv.kv_cache_manager import KVCacheManager
from fastcoder.sampling_params import SamplingParams

BS = 4
GREEDY = SamplingParams(temperature=0)


def make_scheduler(num_blocks=11, max_num_seqs=8, max_num_batched_tokens=64, max_model_len=40,
                   **kv_kwargs) -> Scheduler:
    return Scheduler(KVCacheManager(num_blocks, BS, **kv_kwargs), max_num_seqs=max_num_seqs,
                     max_num_batched_tokens=max_num_batched_tokens, max_model_len=max_model_len)


def step(scheduler: Scheduler, token: int = 100) -> SchedulerOutput:
    output = scheduler.schedule()
    scheduler.update_from_output({s.request_id: token for s in output.scheduled
                                  if s.is_last_chunk})
    return output


def summary(output: SchedulerOutput) -> list[tuple]:
    return [(s.request_id, s.start_position, len(s.token_ids_to_compute), s.block_table,
             s.is_last_chunk) for s in output.scheduled]


def test_prefill_then_decode_in_one_path():
    scheduler = make_scheduler()
    scheduler.add_request("a", list(range(10)), GREEDY)
    out = scheduler.schedule()
    assert summary(out) == [("a", 0, 10, (1, 2, 3), True)]
    assert out.scheduled[0].token_ids_to_compute == tuple(range(10))
    assert out.num_scheduled_tokens == 10
    scheduler.update_from_output({"a": 77})
    request = scheduler.get_request("a")
    assert request.output_ids == [77] and request.num_computed_tokens == 10
    out = scheduler.schedule()
    assert summary(out) == [("a", 10, 1, (1, 2, 3), True)]
    assert out.scheduled[0].token_ids_to_compute == (77,)
    scheduler.update_from_output({"a": 78})
    assert summary(step(scheduler)) == [("a", 11, 1, (1, 2, 3), True)]
    assert summary(step(scheduler)) == [("a", 12, 1, (1, 2, 3, 4), True)]


def test_chunked_prefill_with_small_budget():
    scheduler = make_scheduler(max_num_seqs=4, max_num_batched_tokens=4)
    scheduler.add_request("a", list(range(10)), GREEDY)
    assert summary(step(scheduler)) == [("a", 0, 4, (1,), False)]
    assert scheduler.get_request("a").output_ids == []
    assert summary(step(scheduler)) == [("a", 4, 4, (1, 2), False)]
    assert summary(step(scheduler)) == [("a", 8, 2, (1, 2, 3), True)]
    assert scheduler.get_request("a").output_ids == [100]


def test_running_decodes_come_before_waiting_prefill_chunks():
    scheduler = make_scheduler(max_num_batched_tokens=8)
    scheduler.add_request("a", list(range(6)), GREEDY)
    step(scheduler)
    scheduler.add_request("b", list(range(50, 70)), GREEDY)
    out = step(scheduler)
    assert summary(out) == [("a", 6, 1, (1, 2), True), ("b", 0, 7, (3, 4), False)]
    assert out.num_scheduled_tokens == 8
    out = step(scheduler)                   # b is running now, but a arrived first
    assert summary(out) == [("a", 7, 1, (1, 2), True), ("b", 7, 7, (3, 4, 5, 6), False)]
    out = step(scheduler)
    assert summary(out) == [("a", 8, 1, (1, 2, 7), True), ("b", 14, 6, (3, 4, 5, 6, 8), True)]


def test_max_num_seqs_and_fifo_admission():
    scheduler = make_scheduler(max_num_seqs=2)
    for rid in "abc":
        scheduler.add_request(rid, [1, 2, 3], GREEDY)
    out = step(scheduler)
    assert [s.request_id for s in out.scheduled] == ["a", "b"]
    assert (scheduler.num_running, scheduler.num_waiting) == (2, 1)
    assert [s.request_id for s in step(scheduler).scheduled] == ["a", "b"]
    scheduler.finish_request("a", RequestStatus.FINISHED_STOPPED)
    out = step(scheduler)
    assert [s.request_id for s in out.scheduled] == ["b", "c"]
    assert out.finished_ids == ("a",)
    assert step(scheduler).finished_ids == ()


def test_prefix_hit_on_admission_shares_blocks():
    scheduler = make_scheduler()
    scheduler.add_request("a", list(range(10)), GREEDY)
    step(scheduler)
    scheduler.add_request("b", [*range(8), 40, 41, 42], GREEDY)
    out = step(scheduler)
    assert summary(out) == [("a", 10, 1, (1, 2, 3), True), ("b", 8, 3, (1, 2, 4), True)]
    b = scheduler.get_request("b")
    assert b.num_cached_tokens == 8
    pool = scheduler.kv.pool
    assert [pool.blocks[i].ref_count for i in (1, 2, 3, 4)] == [2, 2, 1, 1]
    stats = scheduler.kv.prefix_cache_stats
    assert (stats.queries, stats.hits) == (21, 8)
    scheduler.finish_request("a", RequestStatus.FINISHED_STOPPED)
    assert [pool.blocks[i].ref_count for i in (1, 2, 3)] == [1, 1, 0]


def test_preemption_of_latest_arrival_and_recompute_from_cache():
    scheduler = make_scheduler(num_blocks=5, max_model_len=16)    # 4 usable blocks
    scheduler.add_request("a", list(range(7)), GREEDY)
    scheduler.add_request("b", list(range(20, 27)), GREEDY)
    assert summary(step(scheduler)) == [("a", 0, 7, (1, 2), True), ("b", 0, 7, (3, 4), True)]
    step(scheduler)                                       # both now 9 tokens, 8 computed
    assert scheduler.kv.num_free_blocks == 0
    scheduler.add_request("c", [5, 6], GREEDY)

    out = step(scheduler, token=101)                      # a needs a 3rd block: b goes
    assert summary(out) == [("a", 8, 1, (1, 2, 4), True)]
    assert out.preempted_ids == ("b",)
    b = scheduler.get_request("b")
    assert b.status is RequestStatus.PREEMPTED and b.num_computed_tokens == 0
    assert b.num_preemptions == 1 and b.output_ids == [100, 100]
    assert [r.request_id for r in scheduler.waiting] == ["b", "c"]   # front of the queue
    assert scheduler.kv.block_table("b") == []
    assert scheduler.kv.pool.free_queue.block_ids() == [3]           # b's first block, cached

    scheduler.finish_request("a", RequestStatus.FINISHED_LENGTH)
    assert scheduler.kv.pool.free_queue.block_ids() == [3, 4, 2, 1]
    out = step(scheduler)
    # b hits its own first block (still cached) and recomputes the rest, including its outputs.
    assert summary(out) == [("b", 4, 5, (3, 4, 2), True), ("c", 0, 2, (1,), True)]
    assert out.scheduled[0].token_ids_to_compute == (24, 25, 26, 100, 100)
    assert out.finished_ids == ("a",)
    assert b.num_cached_tokens == 0                       # only the first admission counts
    assert b.status is RequestStatus.RUNNING and b.output_ids == [100, 100, 100]


def test_request_preempts_itself_when_older_ones_hold_the_pool():
    scheduler = make_scheduler(num_blocks=5, max_model_len=16)
    scheduler.add_request("a", list(range(11)), GREEDY)
    scheduler.add_request("b", list(range(4)), GREEDY)
    step(scheduler)
    out = step(scheduler)
    assert summary(out) == [("a", 11, 1, (1, 2, 3), True)]
    assert out.preempted_ids == ("b",)
    assert scheduler.get_request("a").status is RequestStatus.RUNNING
    assert scheduler.num_waiting == 1


def test_no_admission_in_a_step_that_preempted():
    scheduler = make_scheduler(num_blocks=5, max_model_len=16)
    scheduler.add_request("a", list(range(8)), GREEDY)
    scheduler.add_request("b", list(range(20, 28)), GREEDY)
    step(scheduler)
    out = scheduler.schedule()
    assert [s.request_id for s in out.scheduled] == ["a"] and out.preempted_ids == ("b",)
    assert scheduler.kv.num_free_blocks == 1              # room for b's prefix, but not now


def test_abort_frees_blocks_immediately_even_in_flight():
    scheduler = make_scheduler()
    scheduler.add_request("a", list(range(10)), GREEDY)
    scheduler.add_request("b", list(range(20, 25)), GREEDY)
    out = scheduler.schedule()
    assert scheduler.kv.num_free_blocks == 5
    aborted = scheduler.abort_request("a")
    assert aborted.status is RequestStatus.FINISHED_ABORTED
    assert scheduler.kv.num_free_blocks == 8
    scheduler.update_from_output({s.request_id: 1 for s in out.scheduled})
    assert scheduler.get_request("a") is None
    assert scheduler.get_request("b").output_ids == [1]
    assert scheduler.abort_request("a") is None           # unknown ids are ignored
    scheduler.add_request("c", [1, 2], GREEDY)
    scheduler.abort_request("c")                          # still waiting
    out = scheduler.schedule()
    assert out.finished_ids == ("a", "c")
    assert [s.request_id for s in out.scheduled] == ["b"]
    scheduler.update_from_output({"b": 2})
    scheduler.abort_request("b")
    assert not scheduler.has_unfinished()
    assert scheduler.kv.num_free_blocks == 10


def test_never_schedules_past_max_model_len():
    scheduler = make_scheduler(max_model_len=12)
    with pytest.raises(ContextLengthError):
        scheduler.add_request("long", list(range(12)), GREEDY)
    scheduler.add_request("a", list(range(10)), GREEDY)
    assert summary(step(scheduler)) == [("a", 0, 10, (1, 2, 3), True)]
    assert summary(step(scheduler)) == [("a", 10, 1, (1, 2, 3), True)]
    assert scheduler.get_request("a").num_tokens == 12
    assert step(scheduler).is_empty                       # the engine finishes it ("length")


def test_bad_input_and_protocol_errors():
    scheduler = make_scheduler()
    with pytest.raises(InvalidParameterError):
        scheduler.add_request("x", [], GREEDY)
    scheduler.add_request("a", [1], GREEDY)
    with pytest.raises(InvalidParameterError):
        scheduler.add_request("a", [1], GREEDY)
    scheduler.schedule()
    with pytest.raises(RuntimeError):
        scheduler.schedule()
    with pytest.raises(ValueError):
        scheduler.update_from_output({})
    with pytest.raises(ValueError):
        make_scheduler(num_blocks=5, max_model_len=17)    # 16-token pool < context
    with pytest.raises(ValueError):
        make_scheduler(max_num_seqs=8, max_num_batched_tokens=4)


@pytest.mark.parametrize("window", [0, 6])
def test_random_workload_matches_unbatched_reference(window):
    """Fake KV store: the runner writes each token into its slot via the block table and
    'samples' from what it reads back, so any wrong block id, stale prefix hit or lost block
    changes the output. Small pool and budget force chunking, prefix hits and preemption; with a
    sliding window only the last `window` positions are read (and must still be held)."""
    import random
    rng = random.Random(0)
    vocab, max_tokens, max_model_len = 7, 6, 32

    def visible(end: int) -> range:
        return range(max(0, end - window) if window else 0, end)

    def sample(tokens: dict[int, int], end: int) -> int:
        return (sum((p + 1) * tokens[p] for p in visible(end)) * 31 + end) % vocab

    def reference(prompt):
        tokens = list(prompt)
        while len(tokens) - len(prompt) < max_tokens and len(tokens) < max_model_len:
            tokens.append(sample(dict(enumerate(tokens)), len(tokens)))
        return tokens[len(prompt):]

    num_blocks = 9 if window else 13           # a window bounds memory: shrink the pool
    scheduler = make_scheduler(num_blocks=num_blocks, max_num_seqs=4, max_num_batched_tokens=10,
                               max_model_len=max_model_len, sliding_window=window)
    kv: dict[int, list[int | None]] = {}
    prefixes = [[rng.randrange(vocab) for _ in range(rng.randrange(1, 12))] for _ in range(3)]
    prompts = {}
    for i in range(12):
        prompt = rng.choice(prefixes) + [rng.randrange(vocab) for _ in range(rng.randrange(1, 16))]
        prompts[f"r{i}"] = prompt[:max_model_len - 1]
        scheduler.add_request(f"r{i}", prompts[f"r{i}"], GREEDY)
    results, num_preemptions, num_steps = {}, 0, 0
    while scheduler.has_unfinished():
        num_steps += 1
        assert num_steps < 500
        out = scheduler.schedule()
        assert out.num_scheduled_tokens <= 10 and len(out.scheduled) <= 4
        num_preemptions += len(out.preempted_ids)
        sampled = {}
        for item in out.scheduled:
            for i, token in enumerate(item.token_ids_to_compute):
                pos = item.start_position + i
                assert item.block_table[pos // BS] != 0
                kv.setdefault(item.block_table[pos // BS], [None] * BS)[pos % BS] = token
            if item.is_last_chunk:
                end = item.start_position + item.num_tokens
                seen = {}
                for p in visible(end):
                    assert item.block_table[p // BS] != 0
                    seen[p] = kv[item.block_table[p // BS]][p % BS]
                sampled[item.request_id] = sample(seen, end)
        scheduler.update_from_output(sampled)
        for item in out.scheduled:
            request = scheduler.get_request(item.request_id)
            if request and (request.num_output_tokens >= max_tokens
                            or request.num_tokens >= max_model_len):
                results[request.request_id] = list(request.output_ids)
                scheduler.finish_request(request.request_id, RequestStatus.FINISHED_LENGTH)
    assert results == {rid: reference(prompt) for rid, prompt in prompts.items()}
    assert num_preemptions > 0
    assert scheduler.kv.prefix_cache_stats.hits > 0
    assert scheduler.kv.num_free_blocks == num_blocks - 1
    assert all(block.ref_count == 0 for block in scheduler.kv.pool.blocks)
