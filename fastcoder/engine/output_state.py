"""Per-request output state shared by both engines: sampling with penalties, stop tokens,
stop strings across token boundaries, max tokens, and incremental detokenization."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import torch

from fastcoder.sample.sampler import Sampler
from fastcoder.sample.stop import StopStringMatcher
from fastcoder.sampling_params import SamplingParams
from fastcoder.spec.verify import rejection_sample
from fastcoder.tokenizer.tokenizer import Tokenizer


@dataclass
class OutputState:
    sampler: Sampler
    stop_ids: frozenset[int]
    prompt_set: frozenset[int]
    max_new: int
    detokenizer: object
    matcher: StopStringMatcher
    num_logprobs: int | None = None
    output_counts: Counter = field(default_factory=Counter)
    num_generated: int = 0

    @classmethod
    def for_request(cls, tokenizer: Tokenizer, prompt_ids: list[int], params: SamplingParams,
                    max_model_len: int, num_logprobs: int | None = None) -> "OutputState":
        stop_ids = set(params.stop_token_ids)
        if not params.ignore_eos:
            stop_ids |= tokenizer.stop_token_ids
        max_new = max_model_len - len(prompt_ids)
        if params.max_tokens is not None:
            max_new = min(max_new, params.max_tokens)
        return cls(sampler=Sampler(params), stop_ids=frozenset(stop_ids),
                   prompt_set=frozenset(prompt_ids) if params.repetition_penalty != 1
                   else frozenset(),
                   max_new=max_new, detokenizer=tokenizer.incremental_decoder(),
                   matcher=StopStringMatcher(params.stop), num_logprobs=num_logprobs)

    def sample(self, logits: torch.Tensor) -> int:
        """logits: [vocab] -> next token id."""
        return self.sampler(logits, self.prompt_set, self.output_counts)

    def verify(self, logits: torch.Tensor, draft_token: int,
               draft_probs: torch.Tensor | None = None) -> tuple[int, bool]:
        """logits: [vocab] at a drafted position -> (token to emit, whether it is the draft
        token). Greedy: the argmax, as `sample` would pick; else rejection sampling against the
        same processed distribution `sample` draws from (spec.verify)."""
        if self.sampler.params.is_greedy:
            token_id = self.sample(logits)
            return token_id, token_id == draft_token
        probs = self.sampler.probs(logits, self.prompt_set, self.output_counts)
        return rejection_sample(probs, draft_token, draft_probs, self.sampler.generator)

    def accept(self, token_id: int) -> tuple[str, str | None]:
        """(text delta, finish reason or None) once token_id was sampled. A stop token ends
        the request without being counted in the text; held-back text is released at the end."""
        self.num_generated += 1
        if token_id in self.stop_ids:
            return self._drain(), "stop"
        self.output_counts[token_id] += 1
        text, stopped = self.matcher.feed(self.detokenizer.push(token_id))
        if stopped:
            return text, "stop"
        if self.num_generated >= self.max_new:
            return text + self._drain(), "length"
        return text, None

    def _drain(self) -> str:
        text, stopped = self.matcher.feed(self.detokenizer.finish())
        return text if stopped else text + self.matcher.flush()
