"""Speculative decoding pieces without a model: config parsing, prompt lookup, adaptive draft
length, the draft-compatibility check, and rejection sampling keeping the target distribution."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from fastcoder.spec.config import (IncompatibleDraftModelError, SpeculativeConfig,
                                   SpeculativeConfigError)
from fastcoder.spec.draft_model import check_draft_compatible
from fastcoder.spec.ngram import NgramProposer, find_ngram_continuation
from fastcoder.spec.proposer import AdaptiveLength, SpecCounters
from fastcoder.spec.verify import rejection_sample


def test_parse_methods():
    assert SpeculativeConfig.parse(None) is None and SpeculativeConfig.parse(" ") is None
    assert SpeculativeConfig.parse("ngram") == SpeculativeConfig("ngram")
    draft = SpeculativeConfig.parse("draft:qwen2.5-coder-0.5b-instruct")
    assert (draft.method, draft.draft_model) == ("draft", "qwen2.5-coder-0.5b-instruct")


@pytest.mark.parametrize("bad", ["eagle", "draft:", "draft", "ngram:3", "Draft:x"])
def test_bad_spec_is_a_typed_one_line_error(bad):
    with pytest.raises(SpeculativeConfigError) as info:
        SpeculativeConfig.parse(bad)
    assert "\n" not in info.value.message and info.value.http_status == 400
    assert info.value.param == "speculative"


def test_bad_lengths_rejected():
    with pytest.raises(SpeculativeConfigError):
        SpeculativeConfig("ngram", min_k=4, initial_k=2)


def ngram(context, min_n=1, max_n=4, k=3):
    return find_ngram_continuation(np.array(context), min_n, max_n, k)


def test_longest_match_beats_a_more_recent_shorter_one():
    #           0  1  2  3  4  5  6  7  8  9
    context = [1, 2, 3, 7, 8, 9, 3, 5, 6, 2, 3]     # suffix [2, 3]: at 1-2; [3] alone at 6
    assert ngram(context) == [7, 8, 9]


def test_most_recent_of_equally_long_matches():
    context = [4, 5, 1, 4, 5, 2, 4, 5]
    assert ngram(context, min_n=2) == [2, 4, 5]


def test_min_n_and_no_match_and_k():
    assert ngram([1, 2, 3, 4, 3], min_n=2) == []    # only a 1-gram matches
    assert ngram([1, 2, 3, 4, 3], min_n=1) == [4, 3]
    assert ngram([9, 8, 7], min_n=1) == []
    assert ngram([1, 2, 3, 4, 5, 1, 2], min_n=2, k=2) == [3, 4]


def test_proposer_respects_max_tokens_and_adapts():
    proposer = NgramProposer(SpeculativeConfig("ngram", min_k=2, initial_k=4, max_k=16))
    context = list(range(20)) + [0, 1]
    assert proposer.propose(context, 100).token_ids == (2, 3, 4, 5)
    assert proposer.propose(context, 2).token_ids == (2, 3)
    proposer.observe(4, 4)
    assert proposer.propose(context, 100).token_ids == tuple(range(2, 10))
    proposer.observe(8, 1)                       # halfway between 1 + 1 and 8
    assert len(proposer.propose(context, 100)) == 5
    proposer.reset()
    assert len(proposer.propose(context, 100)) == 4


def test_adaptive_length_bounds():
    length = AdaptiveLength(2, 4, 8)
    for _ in range(5):
        length.update(length.k, length.k)
    assert length.k == 8
    for _ in range(5):
        length.update(length.k, 0)
    assert length.k == 2
    length.update(1, 1)                          # a short full draft does not grow k
    assert length.k == 2


def test_counters():
    counters = SpecCounters()
    counters.record(4, 3)
    counters.record(0, 0)                        # no draft: not a verify step
    counters.record(6, 6)
    stats = counters.snapshot()
    assert (stats.num_steps, stats.num_drafted, stats.num_accepted) == (2, 10, 9)
    assert stats.acceptance_rate == 0.9 and stats.mean_accepted_length == 5.5


def _config(vocab_size):
    return SimpleNamespace(vocab_size=vocab_size)


def test_draft_with_other_vocabulary_is_refused():
    tokens = {"tokenizer.ggml.tokens": ["a", "b", "c"]}
    check_draft_compatible("t", _config(3), tokens, "d", _config(3), dict(tokens))
    with pytest.raises(IncompatibleDraftModelError, match="vocabulary of 4 tokens"):
        check_draft_compatible("t", _config(3), tokens, "d", _config(4), tokens)
    other = {"tokenizer.ggml.tokens": ["a", "x", "c"]}
    with pytest.raises(IncompatibleDraftModelError, match="differ at id 1"):
        check_draft_compatible("t", _config(3), tokens, "d", _config(3), other)


P = torch.tensor([0.05, 0.30, 0.10, 0.25, 0.20, 0.10])
Q = torch.tensor([0.40, 0.05, 0.25, 0.05, 0.05, 0.20])


def empirical(draw, num_trials=40_000) -> torch.Tensor:
    counts = torch.zeros(len(P))
    for _ in range(num_trials):
        counts[draw()] += 1
    return counts / num_trials


def tv_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    return 0.5 * float((a - b).abs().sum())


def test_rejection_sampling_keeps_target_distribution():
    """Drafts drawn from q, verified against p: emitted tokens follow p, not q. With 40k trials
    the TV distance of a correct sampler is ~0.005; q itself is 0.55 away from p."""
    gen = torch.Generator().manual_seed(0)
    accepted = []

    def draw() -> int:
        draft = int(torch.multinomial(Q, 1, generator=gen))
        token, ok = rejection_sample(P, draft, Q, gen)
        accepted.append(ok)
        return token
    assert tv_distance(empirical(draw), P) < 0.02
    # Acceptance probability is sum(min(p, q)) = 0.05+.05+.10+.05+.05+.10 = 0.40
    assert abs(sum(accepted) / len(accepted) - 0.40) < 0.02
    assert tv_distance(Q, P) > 0.5


def test_rejection_sampling_with_point_mass_draft():
    """A deterministic draft (prompt lookup, greedy draft model): accepted with probability p(x),
    the emitted distribution is still p."""
    gen = torch.Generator().manual_seed(1)
    accepted = []

    def draw() -> int:
        token, ok = rejection_sample(P, 1, None, gen)
        accepted.append(ok)
        return token
    assert tv_distance(empirical(draw), P) < 0.02
    assert abs(sum(accepted) / len(accepted) - float(P[1])) < 0.02
