"""AsyncEngine over a scripted engine (no model): admission, 429, abort on close/cancel,
failures, shutdown, and that steps run on one thread that is not the event loop's."""
from __future__ import annotations

import asyncio
import threading
import time

import pytest

from fastcoder.engine.async_engine import AsyncEngine, EngineShutdownError, QueueFullError
from fastcoder.engine.engine_api import RequestDelta
from fastcoder.errors import ContextLengthError
from fastcoder.sampling_params import SamplingParams

PARAMS = SamplingParams(max_tokens=3)


class ScriptedEngine:
    """Runs up to `max_running` requests; each emits tokens 1..max_tokens, one per step. A
    threading.Event gate lets a test hold the engine mid-run."""

    max_model_len = 32

    def __init__(self, max_running: int = 1, fail_on_step: int | None = None,
                 step_s: float = 0.0):
        self.max_running = max_running
        self.step_s = step_s
        self.fail_on_step = fail_on_step
        self.requests: dict[str, list] = {}          # id -> [prompt_len, max_tokens, emitted]
        self.aborted: list[str] = []
        self.step_threads: set[int] = set()
        self.num_steps = 0
        self.gate = threading.Event()
        self.gate.set()

    def add_request(self, request_id, prompt_ids, params, num_logprobs=None):
        if len(prompt_ids) >= self.max_model_len:
            raise ContextLengthError("prompt too long", param="prompt")
        self.requests[request_id] = [len(prompt_ids), params.max_tokens, 0]

    def abort_request(self, request_id):
        if self.requests.pop(request_id, None) is not None:
            self.aborted.append(request_id)

    def has_unfinished_requests(self):
        return bool(self.requests)

    def step(self):
        self.gate.wait(5)
        time.sleep(self.step_s)
        self.step_threads.add(threading.get_ident())
        self.num_steps += 1
        if self.num_steps == self.fail_on_step:
            raise RuntimeError("kernel exploded")
        deltas = []
        for request_id in list(self.requests)[:self.max_running]:
            entry = self.requests[request_id]
            entry[2] += 1
            finish = "length" if entry[2] == entry[1] else None
            deltas.append(RequestDelta(request_id, (entry[2],), "ab"[entry[2] % 2], finish,
                                       entry[0]))
            if finish:
                del self.requests[request_id]
        return deltas

    def stats(self):
        running = min(self.max_running, len(self.requests))
        return {"num_running": running, "num_waiting": len(self.requests) - running,
                "kv_blocks_used": running, "kv_blocks_total": 8,
                "prefix_cache_queries": 0, "prefix_cache_hits": 0}


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 10))


@pytest.fixture()
def scripted():
    engine = ScriptedEngine()
    async_engine = AsyncEngine(engine, max_queue=1)
    yield engine, async_engine
    async_engine.shutdown()


def test_generate_streams_deltas_from_one_background_thread(scripted):
    engine, async_engine = scripted

    async def main():
        return [d async for d in async_engine.generate("r", [1, 2], PARAMS)]
    deltas = run(main())
    assert [d.new_token_ids for d in deltas] == [(1,), (2,), (3,)]
    assert [d.finish_reason for d in deltas] == [None, None, "length"]
    assert engine.step_threads == {async_engine._thread.ident}
    assert async_engine._thread.ident != threading.get_ident()


def test_group_of_requests_interleaves_and_ends_when_all_finish(scripted):
    engine, async_engine = scripted
    engine.max_running = 2

    async def main():
        stream = await async_engine.add_requests([("a", [1], PARAMS, None),
                                                  ("b", [1], SamplingParams(max_tokens=1), None)])
        return [(d.request_id, d.finish_reason) async for d in stream]
    assert run(main()) == [("a", None), ("b", "length"), ("a", None), ("a", "length")]


def test_engine_validation_error_is_raised_at_admission(scripted):
    _, async_engine = scripted

    async def main():
        await async_engine.add_request("r", list(range(40)), PARAMS)
    with pytest.raises(ContextLengthError):
        run(main())


def test_queue_full_when_max_queue_are_waiting(scripted):
    engine, async_engine = scripted
    engine.gate.clear()                                  # hold the engine inside its first step

    async def main():
        running = await async_engine.add_request("a", [1], PARAMS)
        await asyncio.sleep(0.1)                         # the thread is now blocked in step()
        waiting = asyncio.create_task(async_engine.add_request("b", [1], PARAMS))
        await asyncio.sleep(0)                           # b is submitted, not yet admitted
        with pytest.raises(QueueFullError) as info:
            await async_engine.add_request("c", [1], PARAMS)
        engine.gate.set()
        waiting = await waiting
        finished = [d.request_id async for d in running] + [d.request_id async for d in waiting]
        return info.value, finished
    error, finished = run(main())
    assert error.http_status == 429 and error.retry_after_s >= 1
    assert finished == ["a"] * 3 + ["b"] * 3 and "c" not in engine.requests


def test_queue_counts_admitted_requests_the_engine_has_not_started(scripted):
    engine, async_engine = scripted
    engine.step_s = 0.2                                  # "a" runs 3 steps; "b" waits behind it

    async def main():
        running = await async_engine.add_request("a", [1], PARAMS)
        waiting = await async_engine.add_request("b", [1], PARAMS)   # admitted between steps
        assert async_engine.stats()["num_waiting"] == 1
        with pytest.raises(QueueFullError):
            await async_engine.add_request("c", [1], PARAMS)
        return [d.request_id async for d in running] + [d.request_id async for d in waiting]
    assert run(main()) == ["a"] * 3 + ["b"] * 3


def test_closing_a_stream_aborts_the_request(scripted):
    engine, async_engine = scripted

    async def main():
        stream = await async_engine.add_request("r", [1], SamplingParams(max_tokens=1000))
        first = await stream.__anext__()
        stream.close()
        for _ in range(100):
            if async_engine.stats()["num_running"] == 0:
                break
            await asyncio.sleep(0.01)
        return first
    assert run(main()).new_token_ids == (1,)
    assert engine.aborted == ["r"] and async_engine.stats()["kv_blocks_used"] == 0


def test_cancelled_consumer_aborts_the_request(scripted):
    engine, async_engine = scripted
    engine.step_s = 0.001

    async def consume():
        async for _ in async_engine.generate("r", [1], SamplingParams(max_tokens=1000)):
            pass

    async def main():
        task = asyncio.create_task(consume())
        await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        for _ in range(100):
            if engine.aborted:
                break
            await asyncio.sleep(0.01)
    run(main())
    assert engine.aborted == ["r"]


def test_step_failure_fails_the_streams_and_keeps_serving():
    engine = ScriptedEngine(fail_on_step=2)
    async_engine = AsyncEngine(engine)

    async def main():
        stream = await async_engine.add_request("a", [1], PARAMS)
        with pytest.raises(RuntimeError, match="kernel exploded"):
            async for _ in stream:
                pass
        return [d.finish_reason async for d in async_engine.generate("b", [1], PARAMS)]
    try:
        assert run(main()) == [None, None, "length"]
        assert engine.aborted == ["a"] and async_engine.is_alive
    finally:
        async_engine.shutdown()


def test_shutdown_aborts_what_is_running_and_refuses_new_work():
    engine = ScriptedEngine()
    async_engine = AsyncEngine(engine)

    async def main():
        stream = await async_engine.add_request("a", [1], SamplingParams(max_tokens=10_000))
        await stream.__anext__()
        await asyncio.get_running_loop().run_in_executor(None, async_engine.shutdown)
        rest = [d async for d in stream]
        with pytest.raises(EngineShutdownError):
            await async_engine.add_request("b", [1], PARAMS)
        return rest
    rest = run(main())
    assert rest[-1].finish_reason == "abort" and engine.aborted == ["a"]
    assert not async_engine.is_alive
