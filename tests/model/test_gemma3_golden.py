"""Gemma 3 270M (base) against transformers (fp32, the same GGUF dequantized): teacher-forced
top-1 agreement and KL, greedy continuations, and a prompt longer than the 512-token sliding
window. Fixture: `python scripts/make_golden.py --model gemma-3-270m`."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import FIXTURES, model_path
from tests.model.golden import (greedy_first_mismatches, kl_ref_to_ours, load_golden,
                                teacher_forced, top1_agreement)

MODEL = "gemma-3-270m"
GOLDEN = FIXTURES / f"golden_{MODEL}.npz"
NUM_GREEDY = 64
DECODE_TAIL = 16      # of the long prompt's compared positions, fed one token at a time


@pytest.fixture(scope="module")
def gemma_llm():
    """The reference path (fp32 dequantized weights): the tight bounds below apply to it."""
    from fastcoder.engine.llm import LLM
    return LLM(str(model_path(MODEL)), max_model_len=1024, kernels="reference")


def test_quantized_kernels_within_kernel_bounds():
    """The default quantized kernels (int8 activations) within the kernels issue's bounds."""
    from fastcoder.engine.llm import LLM
    llm = LLM(str(model_path(MODEL)), max_model_len=1024)
    results = teacher_forced(llm, GOLDEN)
    agree = sum(top1_agreement(ids, ours)[0] for ids, _, ours in results)
    total = sum(len(ids) for ids, _, _ in results)
    kls = np.concatenate([kl_ref_to_ours(lp, ids, ours) for ids, lp, ours in results])
    print(f"quant: top-1 {agree}/{total}, mean KL {kls.mean():.2e}")
    assert agree / total >= 0.98 and kls.mean() <= 1e-2, (agree / total, kls.mean())


@pytest.fixture(scope="module")
def gemma_teacher_forced(gemma_llm):
    return teacher_forced(gemma_llm, GOLDEN)


def long_context_logprobs(llm, prompt: list[int], num_logits: int) -> torch.Tensor:
    """Our log-probs [num_logits, vocab] at the prompt's last positions, computed the way a
    served request meets them: a prefill past the window, a multi-token chunk on top of the
    cache, then single-token decode steps."""
    runner = llm.runner
    runner.cached_ids = []
    start = len(prompt) - num_logits
    runner.forward(prompt[:start], 0)
    chunk_end = len(prompt) - DECODE_TAIL
    logits = [runner.forward(prompt[start:chunk_end], start, all_logits=True)]
    logits += [runner.forward([prompt[pos]], pos, all_logits=True)
               for pos in range(chunk_end, len(prompt))]
    return torch.log_softmax(torch.cat(logits).float(), dim=-1)


def test_fixture_records_its_command():
    data, meta, indices = load_golden(GOLDEN)
    assert "make_golden.py" in meta["command"] and len(indices) >= 5
    assert len(data["long_prompt"]) >= meta["sliding_window"] + meta["long_num_logits"]


def test_config_reads_sliding_window(gemma_llm):
    from fastcoder.model.gemma3 import is_sliding_layer
    config = gemma_llm.config
    assert config.sliding_window == 512
    global_layers = [i for i in range(config.num_layers) if not is_sliding_layer(config, i)]
    assert global_layers == [5, 11, 17]


def test_teacher_forced_top1_agreement(gemma_teacher_forced):
    agree = total = 0
    for top_ids, _, ours in gemma_teacher_forced:
        a, n = top1_agreement(top_ids, ours)
        agree, total = agree + a, total + n
    assert total >= 5 * 128
    assert agree / total >= 0.99, f"top-1 agreement {agree / total:.4f}"


def test_teacher_forced_mean_kl(gemma_teacher_forced):
    kls = np.concatenate([kl_ref_to_ours(lp, ids, ours) for ids, lp, ours in gemma_teacher_forced])
    assert kls.mean() <= 1e-3, f"mean KL {kls.mean():.2e}, max {kls.max():.2e}"


def test_greedy_continuations_match(gemma_llm):
    # The reference generated with min_new_tokens, which masks EOS; ignore_eos does not, so a
    # prompt whose continuation the model wants to end (prompt 1, position 61) diverges there.
    mismatches = greedy_first_mismatches(gemma_llm, GOLDEN, NUM_GREEDY)
    matches = [m is None for m in mismatches]
    assert sum(matches) >= 4 and sum(matches) >= len(matches) - 1, mismatches


def test_long_context_past_sliding_window(gemma_llm):
    data, meta, _ = load_golden(GOLDEN)
    prompt = [int(t) for t in data["long_prompt"]]
    ref_ids, ref_logprobs = data["long_top_ids"], data["long_top_logprobs"]
    cache = gemma_llm.runner.cache
    assert cache.ring is not None and cache.ring.size < len(prompt)   # local layers wrap around
    ours = long_context_logprobs(gemma_llm, prompt, meta["long_num_logits"])
    agree, total = top1_agreement(ref_ids, ours)
    kls = kl_ref_to_ours(ref_logprobs, ref_ids, ours)
    assert agree / total >= 0.99, f"top-1 agreement {agree / total:.4f}"
    assert kls.mean() <= 1e-3, f"mean KL {kls.mean():.2e}, max {kls.max():.2e}"


def test_long_context_fixture_detects_a_missing_window(gemma_llm):
    """Local layers attending to everything must fail the thresholds above, so the long-context
    comparison really checks the window."""
    data, meta, _ = load_golden(GOLDEN)
    prompt = [int(t) for t in data["long_prompt"]]
    from fastcoder.layers.kv_cache import KVCache
    runner = gemma_llm.runner
    attentions = [block.attn for block in runner.model.layers]
    windows = [a.sliding_window for a in attentions]
    ring_cache, c = runner.cache, gemma_llm.config
    try:
        # Every layer global, so every layer also needs the full-length cache (no rings).
        runner.cache = KVCache(c.num_layers, runner.max_model_len, c.num_kv_heads, c.head_dim)
        for a in attentions:
            a.sliding_window = 0
        ours = long_context_logprobs(gemma_llm, prompt, meta["long_num_logits"])
    finally:
        for a, window in zip(attentions, windows):
            a.sliding_window = window
        runner.cache = ring_cache
        runner.cached_ids = []
    kls = kl_ref_to_ours(data["long_top_logprobs"], data["long_top_ids"], ours)
    assert kls.mean() > 1e-2, f"mean KL {kls.mean():.2e} without the window"
