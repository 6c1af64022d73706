"""Verification of one drafted token against the target model's distribution.

Greedy: the target's argmax is emitted; the draft token survives iff it equals it, so the
output is token for token the output of plain greedy decoding.

Sampling (Leviathan et al. 2023, Chen et al. 2023): keep draft token x ~ q with probability
min(1, p(x) / q(x)); on rejection emit a token drawn from norm(max(0, p - q)). The emitted
token is distributed exactly as p whatever q is. A deterministic draft is q = one-hot(x):
acceptance probability p(x), and on rejection p with x removed, renormalised."""
from __future__ import annotations

import torch


def rejection_sample(target_probs: torch.Tensor, draft_token: int,
                     draft_probs: torch.Tensor | None, generator: torch.Generator
                     ) -> tuple[int, bool]:
    """target_probs (p), draft_probs (q): [vocab], each summing to 1; draft_probs None means a
    point mass on draft_token. Returns (emitted token, whether it is the accepted draft)."""
    p_x = float(target_probs[draft_token])
    q_x = 1.0 if draft_probs is None else float(draft_probs[draft_token])
    u = float(torch.rand((), generator=generator))
    if q_x > 0 and u * q_x < p_x:                 # u < p/q without dividing by a tiny q
        return draft_token, True
    if draft_probs is None:
        residual = target_probs.clone()
        residual[draft_token] = 0
    else:
        residual = (target_probs - draft_probs).clamp_(min=0)
    total = float(residual.sum())
    if total <= 0:
        # p <= q everywhere means p == q, where rejection has probability 0; reached only through
        # rounding. p itself is then the right distribution.
        residual, total = target_probs, 1.0
    return int(torch.multinomial(residual / total, 1, generator=generator)), False


def bonus_sample(target_probs: torch.Tensor, generator: torch.Generator) -> int:
    """The token after a fully accepted draft: a plain draw from p [vocab]."""
    return int(torch.multinomial(target_probs, 1, generator=generator))
