"""What every proposer shares: the Draft it returns, the adaptive draft length, counters."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch


@dataclass(frozen=True, slots=True)
class Draft:
    """token_ids: the proposed continuation. probs: [len(token_ids), vocab] the distribution
    each token was drawn from, or None when the proposal is deterministic (a point mass, as for
    prompt lookup and greedy drafting)."""
    token_ids: tuple[int, ...] = ()
    probs: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.token_ids)


class Proposer(Protocol):
    def propose(self, context_ids: list[int], max_tokens: int) -> Draft:
        """Up to max_tokens tokens that may follow context_ids (prompt + output so far)."""

    def observe(self, num_drafted: int, num_accepted: int) -> None:
        """Feedback after verification, for the adaptive draft length."""

    def reset(self) -> None:
        """Forget per-request state (a new request starts)."""


class AdaptiveLength:
    """Draft length k in [min_k, max_k]: doubles when a whole draft was accepted (a copied
    stretch: longer drafts pay off), and on a rejection drops to halfway between the accepted
    count + 1 and k (a verify forward of k tokens costs more than one of a few)."""

    def __init__(self, min_k: int, initial_k: int, max_k: int):
        self.min_k, self.initial_k, self.max_k = min_k, initial_k, max_k
        self.k = initial_k

    def update(self, num_drafted: int, num_accepted: int) -> None:
        if num_drafted == 0:
            return
        if num_accepted == num_drafted:
            if num_drafted >= self.k:             # a short draft (end of a match) says nothing
                self.k = min(self.max_k, 2 * self.k)
        else:
            self.k = max(self.min_k, (num_accepted + 1 + self.k) // 2)

    def reset(self) -> None:
        self.k = self.initial_k


@dataclass(frozen=True, slots=True)
class SpecStats:
    """Totals over verification steps that had a draft. acceptance_rate = accepted / drafted;
    mean_accepted_length = tokens emitted per verify step (accepted drafts + the one token the
    target model adds): the speed-up before counting the cost of the longer forward."""
    num_steps: int = 0
    num_drafted: int = 0
    num_accepted: int = 0

    @property
    def acceptance_rate(self) -> float:
        return self.num_accepted / self.num_drafted if self.num_drafted else 0.0

    @property
    def mean_accepted_length(self) -> float:
        return (self.num_accepted + self.num_steps) / self.num_steps if self.num_steps else 0.0

    def to_dict(self) -> dict[str, float]:
        return {"spec_steps": self.num_steps, "spec_draft_tokens": self.num_drafted,
                "spec_accepted_tokens": self.num_accepted,
                "spec_acceptance_rate": round(self.acceptance_rate, 4),
                "spec_mean_accepted_length": round(self.mean_accepted_length, 4)}


class SpecCounters:
    """Mutable running totals an engine owns; `snapshot()` hands out a SpecStats."""

    def __init__(self):
        self.num_steps = self.num_drafted = self.num_accepted = 0

    def record(self, num_drafted: int, num_accepted: int) -> None:
        if num_drafted:
            self.num_steps += 1
            self.num_drafted += num_drafted
            self.num_accepted += num_accepted

    def snapshot(self) -> SpecStats:
        return SpecStats(self.num_steps, self.num_drafted, self.num_accepted)
