"""Qwen2.5-Coder-0.5B against transformers (fp32, the same GGUF dequantized): teacher-forced
top-1 agreement and KL, and greedy continuations. Fixture: `make golden`."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.conftest import FIXTURES
from tests.model.golden import kl_ref_to_ours
from fastcoder.sampling_params import SamplingParams

GOLDEN = FIXTURES / "golden_qwen2.5-coder-0.5b-instruct.npz"
NUM_GREEDY = 64


def load_golden() -> tuple[dict, list[int]]:
    data = np.load(GOLDEN)
    meta = json.loads(str(data["meta"]))
    indices = sorted(int(k.split("_")[1]) for k in data.files if k.startswith("prompt_"))
    return data, meta, indices


@pytest.fixture(scope="module")
def teacher_forced(qwen_llm):
    data, meta, indices = load_golden()
    results = []
    for i in indices:
        prompt, generated = list(data[f"prompt_{i}"]), list(data[f"generated_{i}"])
        qwen_llm.runner.cached_ids = []
        logits = qwen_llm.runner.forward(prompt + generated[:-1], 0, all_logits=True)
        ours = torch.log_softmax(logits[len(prompt) - 1:].float(), dim=-1)   # [num_new, vocab]
        results.append((data[f"top_ids_{i}"], data[f"top_logprobs_{i}"], ours))
    return results


def test_fixture_records_its_command():
    _, meta, indices = load_golden()
    assert "make_golden.py" in meta["command"] and len(indices) >= 5


def test_teacher_forced_top1_agreement(teacher_forced):
    agree = total = 0
    for top_ids, _, ours in teacher_forced:
        agree += int((ours.argmax(-1).numpy() == top_ids[:, 0]).sum())
        total += len(top_ids)
    assert total >= 5 * 128
    assert agree / total >= 0.99, f"top-1 agreement {agree / total:.4f}"


def test_teacher_forced_mean_kl(teacher_forced):
    kls = np.concatenate([kl_ref_to_ours(lp, ids, ours) for ids, lp, ours in teacher_forced])
    assert kls.mean() <= 1e-3, f"mean KL {kls.mean():.2e}, max {kls.max():.2e}"


def test_greedy_continuations_match(qwen_llm):
    data, _, indices = load_golden()
    params = SamplingParams(temperature=0, max_tokens=NUM_GREEDY, ignore_eos=True)
    matches = []
    for i in indices:
        expected = [int(t) for t in data[f"generated_{i}"][:NUM_GREEDY]]
        got = list(qwen_llm.generate([list(data[f"prompt_{i}"])], params)[0].outputs[0].token_ids)
        first_diff = next((j for j, (a, b) in enumerate(zip(got, expected)) if a != b), None)
        matches.append(first_diff is None and len(got) == NUM_GREEDY)
        print(f"prompt {i}: first mismatch at {first_diff}")
    assert sum(matches) >= 4 and sum(matches) >= len(indices) - 1, matches
