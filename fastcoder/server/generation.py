"""Shared by the chat and completion routes: request fields -> SamplingParams (with the context
check), admitting a request's choices to the engine, and collecting their deltas into choices,
usage and latency metrics."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import AsyncIterator, Callable

from fastcoder.engine.async_engine import RequestStream
from fastcoder.engine.engine_api import RequestDelta, TokenLogprob
from fastcoder.errors import ContextLengthError
from fastcoder.sampling_params import SamplingParams
from fastcoder.server.context import ServerContext
from fastcoder.server.protocol import SamplingFields
from fastcoder.server.sse import error_event, sse_event


def sampling_params(body: SamplingFields, max_tokens: tuple[str, int | None],
                    num_prompt_tokens: int, max_model_len: int, prompt_param: str,
                    choice_index: int = 0) -> SamplingParams:
    """max_tokens: (field name, value or None for "until the context ends")."""
    name, value = max_tokens
    room = max_model_len - num_prompt_tokens
    if room < 1:
        raise ContextLengthError(
            f"this model's context is {max_model_len} tokens; the prompt has "
            f"{num_prompt_tokens} tokens, leaving none to generate", param=prompt_param)
    if value is not None and value > room:
        raise ContextLengthError(
            f"this model's context is {max_model_len} tokens; the prompt has "
            f"{num_prompt_tokens} tokens and {name} is {value} "
            f"({num_prompt_tokens + value} in all)", param=name)
    stop = (body.stop,) if isinstance(body.stop, str) else tuple(body.stop or ())
    # Each choice draws its own stream of random numbers, still reproducible from one seed.
    seed = (body.seed + choice_index) % 2**63 if body.seed is not None else None
    return SamplingParams(
        temperature=body.temperature, top_p=body.top_p, top_k=body.top_k, min_p=body.min_p,
        presence_penalty=body.presence_penalty, frequency_penalty=body.frequency_penalty,
        repetition_penalty=body.repetition_penalty, seed=seed, stop=stop,
        ignore_eos=body.ignore_eos, max_tokens=value or room)


@dataclass
class Choice:
    index: int
    prompt_index: int
    text: list[str] = field(default_factory=list)
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[TokenLogprob] = field(default_factory=list)
    finish_reason: str | None = None
    num_cached_tokens: int = 0
    last_delta_at: float | None = None


class Completion:
    """The choices of one HTTP request as their deltas arrive. Choice i runs as engine request
    f"{completion_id}-{i}"; `prompt_lens[p]` is the length of prompt p."""

    def __init__(self, ctx: ServerContext, completion_id: str, prompt_lens: list[int],
                 choices_per_prompt: int):
        self.ctx = ctx
        self.completion_id = completion_id
        self.prompt_lens = prompt_lens
        self.started = time.perf_counter()
        self.choices = [Choice(p * choices_per_prompt + j, p) for p in range(len(prompt_lens))
                        for j in range(choices_per_prompt)]
        self._recorded = False

    def request_id(self, index: int) -> str:
        return f"{self.completion_id}-{index}"

    async def start(self, prompts: list[list[int]], params: list[SamplingParams],
                    num_logprobs: int | None) -> RequestStream:
        """Admits every choice or none (429 / 400 are raised here, before any response)."""
        return await self.ctx.engine.add_requests([
            (self.request_id(c.index), prompts[c.prompt_index], params[c.index], num_logprobs)
            for c in self.choices])

    def add(self, delta: RequestDelta) -> Choice:
        choice = self.choices[int(delta.request_id.rsplit("-", 1)[1])]
        now = time.perf_counter()
        if choice.last_delta_at is None:
            self.ctx.metrics.observe_ttft(now - self.started)
        else:
            self.ctx.metrics.observe_itl(now - choice.last_delta_at)
        choice.last_delta_at = now
        choice.text.append(delta.text)
        choice.token_ids.extend(delta.new_token_ids)
        choice.logprobs.extend(delta.logprobs)
        choice.finish_reason = delta.finish_reason or choice.finish_reason
        choice.num_cached_tokens = max(choice.num_cached_tokens, delta.num_cached_tokens)
        return choice

    def usage(self) -> dict:
        num_prompt = sum(self.prompt_lens)
        num_completion = sum(len(c.token_ids) for c in self.choices)
        cached = [0] * len(self.prompt_lens)
        for c in self.choices:
            cached[c.prompt_index] = max(cached[c.prompt_index], c.num_cached_tokens)
        return {"prompt_tokens": num_prompt, "completion_tokens": num_completion,
                "total_tokens": num_prompt + num_completion,
                "prompt_tokens_details": {"cached_tokens": sum(cached)}}

    def record(self) -> None:
        """Token counters for /metrics, once, also for a stream the client abandoned."""
        if not self._recorded:
            self._recorded = True
            self.ctx.metrics.record_tokens(sum(self.prompt_lens),
                                           sum(len(c.token_ids) for c in self.choices))


async def collect_all(completion: Completion, stream: RequestStream) -> None:
    """Non-streaming: runs every choice to its end."""
    try:
        async for delta in stream:
            completion.add(delta)
    finally:
        stream.close()
        completion.record()


async def stream_events(completion: Completion, stream: RequestStream, base: dict,
                        opening: list[dict], content: Callable[[RequestDelta], dict],
                        logprobs_of: Callable, include_usage: bool) -> AsyncIterator[str]:
    """Streaming: SSE events for the opening choice payloads, then one chunk per delta
    (`content(delta)` gives the route's own fields), the usage chunk if asked for, and an error
    event (then [DONE]) if something fails after the 200 was sent."""
    try:
        for payload in opening:
            yield sse_event({**base, "choices": [payload]})
        async for delta in stream:
            choice = completion.add(delta)
            yield sse_event({**base, "choices": [{
                "index": choice.index, **content(delta),
                "logprobs": logprobs_of(delta.logprobs), "finish_reason": delta.finish_reason}]})
        if include_usage:
            yield sse_event({**base, "choices": [], "usage": completion.usage()})
    except Exception as exc:
        yield error_event(exc)
    finally:
        stream.close()
        completion.record()
