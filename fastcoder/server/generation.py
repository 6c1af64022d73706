"""Shared by the chat and completion routes: request fields -> SamplingParams, running the n
choices of one request concurrently, usage, latency metrics."""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import AsyncIterator

from fastcoder.engine.async_engine import AsyncEngine
from fastcoder.engine.engine_api import RequestDelta
from fastcoder.errors import ContextLengthError
from fastcoder.sampling_params import SamplingParams
from fastcoder.server.metrics import Metrics
from fastcoder.server.protocol import SamplingFields

DEFAULT_MAX_TOKENS = 512


def sampling_params(body: SamplingFields, max_tokens: int | None, num_prompt_tokens: int,
                    max_model_len: int, choice_index: int = 0) -> SamplingParams:
    room = max_model_len - num_prompt_tokens
    if max_tokens is not None and max_tokens > room:
        raise ContextLengthError(
            f"this model's context is {max_model_len} tokens; the prompt has "
            f"{num_prompt_tokens} tokens and max_tokens is {max_tokens} "
            f"({num_prompt_tokens + max_tokens} in all)", param="max_tokens")
    if room < 1:
        raise ContextLengthError(
            f"this model's context is {max_model_len} tokens; the prompt has "
            f"{num_prompt_tokens} tokens, leaving none to generate", param="messages")
    stop = (body.stop,) if isinstance(body.stop, str) else tuple(body.stop or ())
    seed = body.seed + choice_index if body.seed is not None else None
    return SamplingParams(
        temperature=body.temperature, top_p=body.top_p, top_k=body.top_k, min_p=body.min_p,
        presence_penalty=body.presence_penalty, frequency_penalty=body.frequency_penalty,
        repetition_penalty=body.repetition_penalty, seed=seed, stop=stop,
        ignore_eos=body.ignore_eos,
        max_tokens=min(max_tokens or DEFAULT_MAX_TOKENS, room))


@dataclass
class Choice:
    index: int
    text: list[str] = field(default_factory=list)
    token_ids: list[int] = field(default_factory=list)
    logprobs: list = field(default_factory=list)
    finish_reason: str | None = None
    num_prompt_tokens: int = 0
    num_cached_tokens: int = 0


async def run_choices(engine: AsyncEngine, metrics: Metrics, prefix: str, prompt_ids: list[int],
                      params: list[SamplingParams], num_logprobs: int | None
                      ) -> AsyncIterator[tuple[int, RequestDelta]]:
    """Runs one engine request per choice; yields (choice index, delta) as they arrive."""
    queue: asyncio.Queue = asyncio.Queue()
    started = time.perf_counter()

    async def pump(index: int, choice_params: SamplingParams) -> None:
        last = None
        try:
            async for delta in engine.generate(engine.new_request_id(prefix), prompt_ids,
                                               choice_params, num_logprobs):
                now = time.perf_counter()
                if last is None:
                    metrics.observe_ttft(now - started)
                else:
                    metrics.observe_itl(now - last)
                last = now
                await queue.put((index, delta))
        except BaseException as exc:                     # surfaced to the consumer
            await queue.put((index, exc))
        finally:
            await queue.put((index, None))

    tasks = [asyncio.create_task(pump(i, p)) for i, p in enumerate(params)]
    try:
        remaining = len(tasks)
        while remaining:
            index, item = await queue.get()
            if item is None:
                remaining -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield index, item
    finally:
        for task in tasks:                               # client gone: abort every choice
            task.cancel()


def collect(choice: Choice, delta: RequestDelta) -> None:
    choice.text.append(delta.text)
    choice.token_ids.extend(delta.new_token_ids)
    choice.logprobs.extend(delta.logprobs)
    choice.finish_reason = delta.finish_reason or choice.finish_reason
    choice.num_prompt_tokens = delta.num_prompt_tokens
    choice.num_cached_tokens = delta.num_cached_tokens


def usage(num_prompt_tokens: int, choices: list[Choice]) -> dict:
    completion = sum(len(c.token_ids) for c in choices)
    cached = max((c.num_cached_tokens for c in choices), default=0)
    return {"prompt_tokens": num_prompt_tokens, "completion_tokens": completion,
            "total_tokens": num_prompt_tokens + completion,
            "prompt_tokens_details": {"cached_tokens": cached}}
