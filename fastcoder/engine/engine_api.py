"""The contract between the serving layer and an engine that runs many requests at once.

The server talks only to this: add a request, abort it, call `step()` until nothing is left; each
step returns what every request produced in it. Implementations: the continuous-batching
LLMEngine (scheduler + paged KV cache) and the one-at-a-time SerialEngine used before it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from fastcoder.sampling_params import SamplingParams


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    token_id: int
    logprob: float
    top: tuple[tuple[int, float], ...] = ()      # (token id, logprob) best first


@dataclass(frozen=True, slots=True)
class RequestDelta:
    """What one request produced in one engine step."""
    request_id: str
    new_token_ids: tuple[int, ...]
    text: str                                    # detokenized, stop strings applied
    finish_reason: str | None = None             # "stop" | "length" | "abort" | None
    num_prompt_tokens: int = 0
    num_cached_tokens: int = 0                   # prompt tokens served from the prefix cache
    logprobs: tuple[TokenLogprob, ...] = ()      # one per new token when requested


class Engine(Protocol):
    max_model_len: int

    def add_request(self, request_id: str, prompt_ids: list[int], params: SamplingParams,
                    num_logprobs: int | None = None) -> None:
        """Queues a request; raises ContextLengthError / InvalidParameterError on bad input."""

    def abort_request(self, request_id: str) -> None:
        """Stops a request and frees its KV blocks now; unknown ids are ignored."""

    def has_unfinished_requests(self) -> bool: ...

    def step(self) -> list[RequestDelta]:
        """Runs one batched forward over the scheduled requests."""

    def stats(self) -> dict[str, float]:
        """Gauges for /metrics: num_running, num_waiting, kv_blocks_used, kv_blocks_total,
        prefix_cache_queries, prefix_cache_hits (tokens)."""
