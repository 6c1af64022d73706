"""Turns one row of logits into a token id: penalties, temperature, top-k/top-p/min-p, draw."""
from __future__ import annotations

import torch

from fastcoder.sampling_params import SamplingParams


def apply_penalties(logits: torch.Tensor, prompt_ids: frozenset[int],
                    output_counts: dict[int, int], params: SamplingParams) -> torch.Tensor:
    """logits: [vocab]. As vLLM does: the repetition penalty covers prompt and output tokens,
    presence/frequency penalties (OpenAI semantics) cover output tokens only."""
    if not params.has_penalties or not (prompt_ids or output_counts):
        return logits
    logits = logits.clone()
    if params.repetition_penalty != 1:
        seen = torch.tensor(sorted(prompt_ids | output_counts.keys()), dtype=torch.long)
        selected = logits[seen]
        logits[seen] = torch.where(selected > 0, selected / params.repetition_penalty,
                                   selected * params.repetition_penalty)
    if output_counts and (params.presence_penalty or params.frequency_penalty):
        ids = torch.tensor(list(output_counts.keys()), dtype=torch.long)
        counts = torch.tensor(list(output_counts.values()), dtype=logits.dtype)
        logits[ids] -= counts * params.frequency_penalty + params.presence_penalty
    return logits


def filter_logits(logits: torch.Tensor, params: SamplingParams) -> torch.Tensor:
    """Temperature then top-k, top-p, min-p on logits: [vocab]; filtered entries become -inf."""
    logits = logits / params.temperature
    if params.top_k > 0 and params.top_k < logits.numel():
        kth = torch.topk(logits, params.top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if params.min_p > 0:
        probs = torch.softmax(logits, dim=-1)
        logits = logits.masked_fill(probs < params.min_p * probs.max(), float("-inf"))
    if params.top_p < 1:
        sorted_logits, sorted_ids = torch.sort(logits, descending=True)
        cumulative = torch.softmax(sorted_logits, dim=-1).cumsum(-1)
        # Drop a token when the mass before it already reaches top_p; the first always stays.
        drop_sorted = (cumulative - torch.softmax(sorted_logits, dim=-1)) >= params.top_p
        drop = torch.zeros_like(drop_sorted).scatter(0, sorted_ids, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


class Sampler:
    """Per-request sampler; owns the RNG so a seed reproduces the same tokens."""

    def __init__(self, params: SamplingParams):
        self.params = params
        self.generator = torch.Generator()
        if params.seed is not None:
            self.generator.manual_seed(params.seed)
        else:
            self.generator.seed()

    def probs(self, logits: torch.Tensor, prompt_ids: frozenset[int] = frozenset(),
              output_counts: dict[int, int] | None = None) -> torch.Tensor:
        """The distribution a non-greedy draw uses: logits [vocab] -> probabilities [vocab]
        (speculative verification must accept against exactly this)."""
        logits = apply_penalties(logits.float(), prompt_ids, output_counts or {}, self.params)
        return torch.softmax(filter_logits(logits, self.params), dim=-1)

    def __call__(self, logits: torch.Tensor, prompt_ids: frozenset[int] = frozenset(),
                 output_counts: dict[int, int] | None = None) -> int:
        """logits: [vocab] float32 -> token id."""
        logits = apply_penalties(logits.float(), prompt_ids, output_counts or {}, self.params)
        if self.params.is_greedy:
            return int(torch.argmax(logits))
        probs = torch.softmax(filter_logits(logits, self.params), dim=-1)
        return int(torch.multinomial(probs, 1, generator=self.generator))
