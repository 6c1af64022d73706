"""ModelRunner's prefix reuse with gemma3's ring-buffered local layers (real 270M weights): a
prompt that extends the cached one reuses all of it; one that diverges after the ring has moved
past the window before the divergence point cannot, and is recomputed from 0; both give the
logits of a fresh prefill. The reference (fp32) path: with int8 activations a 1e-6 change of
the attention order flips roundings that move gemma's logits by up to ~1 (as a different prefill
chunking does with or without the ring)."""
from __future__ import annotations

import pytest
import torch

from tests.conftest import FIXTURES, model_path
from tests.model.golden import load_golden

MODEL = "gemma-3-270m"


@pytest.fixture(scope="module")
def runner():
    from fastcoder.engine.llm import LLM
    return LLM(str(model_path(MODEL)), max_model_len=1024, kernels="reference").runner


@pytest.fixture(scope="module")
def prompt() -> list[int]:
    data, _, _ = load_golden(FIXTURES / f"golden_{MODEL}.npz")
    return [int(t) for t in data["long_prompt"][:700]]


def fresh_logits(runner, ids: list[int]) -> torch.Tensor:
    runner.cached_ids = []
    return runner.prefill(ids)


def test_ring_is_smaller_than_the_prompt(runner, prompt):
    assert runner.cache.ring is not None and runner.cache.ring.size == 512 + 32 < len(prompt)


def test_extension_reuses_the_whole_cached_prompt(runner, prompt):
    extended = prompt + [236743, 107]
    expected = fresh_logits(runner, extended)
    fresh_logits(runner, prompt)
    assert runner.reusable_prefix_len(extended) == len(prompt)
    got = runner.prefill(extended)
    assert int(got.argmax()) == int(expected.argmax())
    torch.testing.assert_close(got, expected, rtol=0, atol=2e-4)


def test_divergence_behind_the_ring_recomputes_from_zero(runner, prompt):
    # The ring holds positions 156..699; a reuse of 650 tokens needs 139..649.
    diverged = prompt[:650] + [236743, 107, 236743]
    expected = fresh_logits(runner, diverged)
    fresh_logits(runner, prompt)
    assert not runner.cache.can_resume(650) and runner.cache.can_resume(699)
    assert runner.reusable_prefix_len(diverged) == 0
    got = runner.prefill(diverged)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
