"""Helpers shared by the golden-fixture model tests (fixtures from scripts/make_golden.py)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from fastcoder.sampling_params import SamplingParams


def load_golden(path: Path) -> tuple[dict, dict, list[int]]:
    """(arrays, meta, prompt indices) of a fixture."""
    data = np.load(path)
    meta = json.loads(str(data["meta"]))
    indices = sorted(int(k.split("_")[1]) for k in data.files if k.startswith("prompt_"))
    return data, meta, indices


def kl_ref_to_ours(ref_top_logprobs: np.ndarray, ref_top_ids: np.ndarray,
                   our_logprobs: torch.Tensor) -> np.ndarray:
    """KL(ref || ours) per position over the reference's top-K tokens, the tail mass lumped into
    one bucket on both sides (a lower bound of the full KL that is tight when top-K holds ~all)."""
    ref_p = np.exp(ref_top_logprobs.astype(np.float64))                    # [pos, K]
    ours = our_logprobs.double().numpy()
    our_top = np.take_along_axis(ours, ref_top_ids.astype(np.int64), axis=1)  # [pos, K]
    kl = (ref_p * (ref_top_logprobs - our_top)).sum(axis=1)
    ref_tail = np.clip(1 - ref_p.sum(axis=1), 1e-12, None)
    our_tail = np.clip(1 - np.exp(our_top).sum(axis=1), 1e-12, None)
    return kl + ref_tail * (np.log(ref_tail) - np.log(our_tail))


def top1_agreement(ref_top_ids: np.ndarray, our_logprobs: torch.Tensor) -> tuple[int, int]:
    """(positions where our argmax is the reference's, positions)."""
    return int((our_logprobs.argmax(-1).numpy() == ref_top_ids[:, 0]).sum()), len(ref_top_ids)


def teacher_forced(llm, path: Path) -> list[tuple[np.ndarray, np.ndarray, torch.Tensor]]:
    """Per prompt: (reference top ids, reference top log-probs, our log-probs [num_new, vocab])
    with the reference's greedy continuation fed in one forward pass."""
    data, _, indices = load_golden(path)
    results = []
    for i in indices:
        prompt, generated = list(data[f"prompt_{i}"]), list(data[f"generated_{i}"])
        llm.runner.cached_ids = []
        logits = llm.runner.forward(prompt + generated[:-1], 0, all_logits=True)
        ours = torch.log_softmax(logits[len(prompt) - 1:].float(), dim=-1)   # [num_new, vocab]
        results.append((data[f"top_ids_{i}"], data[f"top_logprobs_{i}"], ours))
    return results


def greedy_first_mismatches(llm, path: Path, num_tokens: int) -> list[int | None]:
    """Per prompt: index of the first greedy token that differs from the reference's, or None
    when all num_tokens match."""
    data, _, indices = load_golden(path)
    params = SamplingParams(temperature=0, max_tokens=num_tokens, ignore_eos=True)
    mismatches = []
    for i in indices:
        expected = [int(t) for t in data[f"generated_{i}"][:num_tokens]]
        got = list(llm.generate([list(data[f"prompt_{i}"])], params)[0].outputs[0].token_ids)
        first = next((j for j, (a, b) in enumerate(zip(got, expected)) if a != b), None)
        if first is None and len(got) != num_tokens:
            first = len(got)
        mismatches.append(first)
        print(f"prompt {i}: first mismatch at {first}")
    return mismatches
