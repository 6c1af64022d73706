"""Draft-model drafting: a small model with the target's tokenizer proposes k tokens greedily.

The draft model keeps its own KV cache (a runner with `forward` and `cached_ids`, passed in by
the engine layer) and syncs it lazily: each proposal first recomputes from the first position
where its cache disagrees with prompt + accepted output, which also rolls back its rejected
drafts. Its greedy continuation is itself sped up by prompt lookup ("staged" drafting): lookup
guesses are checked against the draft's own argmax in one forward, so the draft proposes
exactly the tokens plain greedy drafting would, with fewer draft-model calls on copied text."""
from __future__ import annotations

from typing import Any, Mapping, Protocol

import numpy as np
import torch

from fastcoder.config import ModelConfig
from fastcoder.spec.config import IncompatibleDraftModelError, SpeculativeConfig
from fastcoder.spec.ngram import find_ngram_continuation
from fastcoder.spec.proposer import AdaptiveLength, Draft

TOKENS_KEY = "tokenizer.ggml.tokens"


class DraftRunner(Protocol):
    max_model_len: int
    cached_ids: list[int]

    def forward(self, token_ids: list[int], start_pos: int, all_logits: bool = False
                ) -> torch.Tensor: ...


def check_draft_compatible(target_name: str, target_config: ModelConfig,
                           target_metadata: Mapping[str, Any], draft_name: str,
                           draft_config: ModelConfig, draft_metadata: Mapping[str, Any]) -> None:
    """Draft token ids must mean the same text to the target: same vocabulary, token for token.
    Raises IncompatibleDraftModelError (one line) otherwise."""
    if draft_config.vocab_size != target_config.vocab_size:
        raise IncompatibleDraftModelError(
            f"draft model {draft_name} has a vocabulary of {draft_config.vocab_size} tokens but "
            f"{target_name} has {target_config.vocab_size}: a draft model must share the target's "
            f"tokenizer", param="speculative")
    draft_tokens = list(draft_metadata.get(TOKENS_KEY, ()))
    target_tokens = list(target_metadata.get(TOKENS_KEY, ()))
    if draft_tokens != target_tokens:
        first = next((i for i, (a, b) in enumerate(zip(draft_tokens, target_tokens)) if a != b),
                     min(len(draft_tokens), len(target_tokens)))
        raise IncompatibleDraftModelError(
            f"draft model {draft_name} has a different tokenizer from {target_name} (token "
            f"lists differ at id {first}): a draft model must share the target's tokenizer",
            param="speculative")


class DraftModelProposer:
    def __init__(self, runner: DraftRunner, config: SpeculativeConfig):
        self.runner = runner
        self.config = config
        self.length = AdaptiveLength(config.min_k, config.initial_k, config.max_k)

    def propose(self, context_ids: list[int], max_tokens: int) -> Draft:
        runner = self.runner
        k = min(self.length.k, max_tokens, runner.max_model_len - len(context_ids))
        if k <= 0:
            return Draft()
        cached = runner.cached_ids
        reuse, limit = 0, min(len(cached), len(context_ids) - 1)   # recompute >= 1 token
        while reuse < limit and cached[reuse] == context_ids[reuse]:
            reuse += 1
        logits = runner.forward(context_ids[reuse:], reuse)          # [vocab]
        ids = list(context_ids)              # tokens whose KV the draft cache holds
        drafts: list[int] = []
        while True:
            token = int(torch.argmax(logits))
            drafts.append(token)
            if len(drafts) >= k:
                break
            room = min(k - len(drafts), runner.max_model_len - 1 - len(ids))
            if room <= 0:
                break
            guesses = find_ngram_continuation(np.asarray(ids + drafts, dtype=np.int64),
                                              self.config.min_n, self.config.max_n, room - 1)
            rows = runner.forward([token, *guesses], len(ids), all_logits=True)  # [1+g, vocab]
            ids.append(token)
            j = 0
            while (j < len(guesses) and len(drafts) < k
                   and int(torch.argmax(rows[j])) == guesses[j]):
                drafts.append(guesses[j])
                ids.append(guesses[j])
                j += 1
            if len(drafts) >= k:
                break
            logits = rows[j]
        runner.cached_ids = ids
        return Draft(tuple(drafts))

    def observe(self, num_drafted: int, num_accepted: int) -> None:
        self.length.update(num_drafted, num_accepted)

    def reset(self) -> None:
        self.length.reset()
