"""Shared pieces of the live-server tests: the chat prompt and greedy references."""
from __future__ import annotations

from fastcoder.sampling_params import SamplingParams

MESSAGES = [{"role": "user", "content": "the cat sat on the"}]
NO_EOS = {"ignore_eos": True}                     # exact lengths from a random model


def greedy(reference, prompt_ids: list[int], max_tokens: int, **kwargs):
    params = SamplingParams(temperature=0, max_tokens=max_tokens, **kwargs)
    return reference.generate(prompt_ids, params)[0].outputs[0]


def chat_ids(reference, messages=MESSAGES) -> list[int]:
    return reference.chat_prompt_ids(messages)
