"""SerialEngine: engine_api.Engine over the single-sequence ModelRunner, one request computed at a
time in arrival order. A step is the prefill of the head request or one decode token of it.

The baseline the batching LLMEngine is measured against, and a fallback for model families the
paged runner does not cover. The runner keeps the K/V of the last sequence it ran, so a request
whose prompt starts like the previous one (an agent resending its history) skips that prefix."""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from fastcoder.engine.engine_api import RequestDelta
from fastcoder.engine.generation import check_prompt_fits
from fastcoder.engine.output_processor import OutputProcessor
from fastcoder.engine.runner import ModelRunner
from fastcoder.errors import InvalidParameterError
from fastcoder.sampling_params import SamplingParams
from fastcoder.tokenizer.tokenizer import Tokenizer

# The runner's KV cache is one contiguous buffer; /metrics still reports it in blocks of this many
# tokens so dashboards read the same for both engines.
REPORT_BLOCK_SIZE = 16


@dataclass(slots=True)
class _SerialRequest:
    prompt_ids: list[int]
    num_tokens: int = 0                   # prompt + sampled tokens; 0 until prefilled
    last_token_id: int | None = None      # sampled but not yet fed to the model
    num_cached_tokens: int = 0


class SerialEngine:
    def __init__(self, runner: ModelRunner, tokenizer: Tokenizer):
        self.runner = runner
        self.max_model_len = runner.max_model_len
        self.outputs = OutputProcessor(tokenizer, self.max_model_len)
        self.requests: OrderedDict[str, _SerialRequest] = OrderedDict()   # FIFO; head runs
        self.prefix_cache_queries = 0          # prompt tokens looked up
        self.prefix_cache_hits = 0             # of which reused

    # -- engine_api.Engine ---------------------------------------------------------------
    def add_request(self, request_id: str, prompt_ids: list[int], params: SamplingParams,
                    num_logprobs: int | None = None) -> None:
        if request_id in self.requests:
            raise InvalidParameterError(f"request id {request_id!r} is already in use",
                                        param="request_id")
        check_prompt_fits(len(prompt_ids), self.max_model_len)
        self.outputs.add(request_id, list(prompt_ids), params, num_logprobs)
        self.requests[request_id] = _SerialRequest(list(prompt_ids))

    def abort_request(self, request_id: str) -> None:
        # The runner's cache needs no freeing: the next prefill overwrites what it does not reuse.
        self.requests.pop(request_id, None)
        self.outputs.abort(request_id)

    def has_unfinished_requests(self) -> bool:
        return bool(self.requests)

    def step(self) -> list[RequestDelta]:
        if not self.requests:
            return []
        request_id, request = next(iter(self.requests.items()))
        if request.last_token_id is None:
            logits = self._prefill(request)
        else:
            logits = self.runner.decode(request.last_token_id, request.num_tokens - 1)
        token_id = self.outputs.sample(request_id, logits)
        request.num_tokens += 1
        request.last_token_id = token_id
        delta = self.outputs.emit(request_id, token_id, logits, len(request.prompt_ids),
                                  request.num_cached_tokens)
        if delta.finish_reason is not None:
            del self.requests[request_id]
        return [delta]

    def stats(self) -> dict[str, float]:
        num_running = min(1, len(self.requests))
        head_tokens = next(iter(self.requests.values())).num_tokens if self.requests else 0
        return {"num_running": num_running,
                "num_waiting": len(self.requests) - num_running,
                "kv_blocks_used": -(-head_tokens // REPORT_BLOCK_SIZE),
                "kv_blocks_total": -(-self.max_model_len // REPORT_BLOCK_SIZE),
                "prefix_cache_queries": self.prefix_cache_queries,
                "prefix_cache_hits": self.prefix_cache_hits}

    # -- helpers --------------------------------------------------------------------------
    def _prefill(self, request: _SerialRequest):
        """Logits [vocab] after the prompt; records the reused prefix."""
        reuse = self.runner.reusable_prefix_len(request.prompt_ids)
        logits = self.runner.prefill(request.prompt_ids)
        request.num_cached_tokens = reuse
        request.num_tokens = len(request.prompt_ids)
        self.prefix_cache_queries += len(request.prompt_ids)
        self.prefix_cache_hits += reuse
        return logits
