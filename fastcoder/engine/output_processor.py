"""Per-request output processing for any engine_api.Engine: logits of a request's next position
in, RequestDelta out (sampling with penalties, stop tokens, stop strings, max tokens, context end,
incremental detokenization, logprobs with top-N). The engines own scheduling and the KV cache;
this owns what the client sees."""
from __future__ import annotations

import torch

from fastcoder.engine.engine_api import RequestDelta, TokenLogprob
from fastcoder.engine.output_state import OutputState
from fastcoder.sampling_params import SamplingParams
from fastcoder.tokenizer.tokenizer import Tokenizer


def token_logprob(logits: torch.Tensor, token_id: int, num_top: int) -> TokenLogprob:
    """logits: [vocab], the model's raw scores (before penalties and temperature, as vLLM)."""
    logprobs = torch.log_softmax(logits.float(), dim=-1)                # [vocab]
    pairs: tuple[tuple[int, float], ...] = ()
    if num_top > 0:
        top = torch.topk(logprobs, min(num_top, logprobs.numel()))
        pairs = tuple(zip(top.indices.tolist(), top.values.tolist()))
    return TokenLogprob(token_id, float(logprobs[token_id]), pairs)


class OutputProcessor:
    """One OutputState per unfinished request, keyed by request id.

    Per step an engine calls `sample(request_id, logits)` for each request that got a next-token
    position, records the token in its own bookkeeping, then `emit(...)` for the delta. `emit`
    forgets a request once it finishes; `abort` forgets it early."""

    def __init__(self, tokenizer: Tokenizer, max_model_len: int):
        self.tokenizer = tokenizer
        self.max_model_len = max_model_len
        self._states: dict[str, OutputState] = {}

    def __contains__(self, request_id: str) -> bool:
        return request_id in self._states

    def __len__(self) -> int:
        return len(self._states)

    def add(self, request_id: str, prompt_ids: list[int], params: SamplingParams,
            num_logprobs: int | None = None) -> None:
        self._states[request_id] = OutputState.for_request(
            self.tokenizer, prompt_ids, params, self.max_model_len, num_logprobs)

    def abort(self, request_id: str) -> None:
        self._states.pop(request_id, None)

    def sample(self, request_id: str, logits: torch.Tensor) -> int:
        """logits: [vocab] after the request's last token -> the next token id."""
        return self._states[request_id].sample(logits)

    def verify(self, request_id: str, logits: torch.Tensor, draft_token: int) -> tuple[int, bool]:
        """logits: [vocab] at a drafted position -> (token to emit, whether it is the draft)."""
        return self._states[request_id].verify(logits, draft_token)

    def num_remaining(self, request_id: str) -> int:
        """Tokens the request may still generate (max_tokens, context end)."""
        state = self._states[request_id]
        return state.max_new - state.num_generated

    def emit(self, request_id: str, token_id: int, logits: torch.Tensor, num_prompt_tokens: int,
             num_cached_tokens: int) -> RequestDelta:
        """The delta for a sampled token. A stop token is reported in new_token_ids (it was
        generated and counts in usage) but adds no text; held-back text is released at the end."""
        state = self._states[request_id]
        text, finish = state.accept(token_id)
        logprobs = ()
        if state.num_logprobs is not None:
            logprobs = (token_logprob(logits, token_id, state.num_logprobs),)
        if finish is not None:
            del self._states[request_id]
        return RequestDelta(request_id, (token_id,), text, finish, num_prompt_tokens,
                            num_cached_tokens, logprobs)


def merge_deltas(deltas: list[RequestDelta]) -> RequestDelta:
    """One step's deltas of one request (several tokens after a verified draft) as one."""
    if len(deltas) == 1:
        return deltas[0]
    last = deltas[-1]
    return RequestDelta(last.request_id, tuple(t for d in deltas for t in d.new_token_ids),
                        "".join(d.text for d in deltas), last.finish_reason,
                        last.num_prompt_tokens, last.num_cached_tokens,
                        tuple(lp for d in deltas for lp in d.logprobs))
