"""Prompt-lookup drafting (llama.cpp `lookup`, vLLM `NgramProposer`): find the longest recent
n-gram of the context that also ends the context, and propose the tokens that followed it.

Code edits copy most of their prompt, so the continuation of the last match is usually right
and costs no model call."""
from __future__ import annotations

import numpy as np

from fastcoder.spec.config import SpeculativeConfig
from fastcoder.spec.proposer import AdaptiveLength, Draft


def find_ngram_continuation(context: np.ndarray, min_n: int, max_n: int, k: int) -> list[int]:
    """context: [num_tokens] int array. Among earlier occurrences of the context's last n tokens
    (n from max_n down to min_n, the first n with a match wins), takes the most recent one and
    returns up to k tokens that followed it (fewer near the end, [] without a match)."""
    num_tokens = len(context)
    if num_tokens < min_n + 1 or k <= 0:
        return []
    # Candidate end positions i < last whose token equals the last token; extend backwards.
    ends = np.flatnonzero(context[:-1] == context[-1])              # [num_candidates]
    match_len = 1
    best_end = int(ends[-1]) if len(ends) and min_n <= 1 else -1
    while len(ends) and match_len < max_n:
        ends = ends[ends >= match_len]           # room for one more token before the match
        if not len(ends):
            break
        keep = context[ends - match_len] == context[num_tokens - 1 - match_len]
        ends = ends[keep]
        match_len += 1
        if len(ends) and match_len >= min_n:
            best_end = int(ends[-1])             # most recent occurrence of the longest match
    if best_end < 0:
        return []
    return context[best_end + 1:best_end + 1 + k].tolist()


class NgramProposer:
    """Stateless over the context; keeps only the adaptive draft length."""

    def __init__(self, config: SpeculativeConfig):
        self.config = config
        self.length = AdaptiveLength(config.min_k, config.initial_k, config.max_k)

    def propose(self, context_ids: list[int], max_tokens: int) -> Draft:
        k = min(self.length.k, max_tokens)
        context = np.asarray(context_ids, dtype=np.int64)
        return Draft(tuple(find_ngram_continuation(context, self.config.min_n,
                                                   self.config.max_n, k)))

    def observe(self, num_drafted: int, num_accepted: int) -> None:
        self.length.update(num_drafted, num_accepted)

    def reset(self) -> None:
        self.length.reset()
