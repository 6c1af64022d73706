"""One request, start to finish, on a ModelRunner: sample, detokenize, stop. Yields deltas."""
from __future__ import annotations

from collections import Counter
from typing import Iterator

from fastcoder.engine.runner import ModelRunner
from fastcoder.errors import ContextLengthError
from fastcoder.outputs import StreamDelta
from fastcoder.sample.sampler import Sampler
from fastcoder.sample.stop import StopStringMatcher
from fastcoder.sampling_params import SamplingParams
from fastcoder.tokenizer.tokenizer import Tokenizer


def check_prompt_fits(num_prompt_tokens: int, max_model_len: int) -> None:
    if num_prompt_tokens == 0:
        raise ContextLengthError("prompt is empty: nothing to continue", param="prompt")
    if num_prompt_tokens >= max_model_len:
        raise ContextLengthError(
            f"prompt has {num_prompt_tokens} tokens but the context holds {max_model_len} "
            f"(at least one token must remain for the reply)", param="prompt")


def stream_tokens(runner: ModelRunner, tokenizer: Tokenizer, prompt_ids: list[int],
                  params: SamplingParams) -> Iterator[StreamDelta]:
    """Generates until EOS, a stop string, max_tokens or the end of the context. The last delta
    carries finish_reason ("stop" or "length"); text held back for a possible stop string is
    released in it."""
    check_prompt_fits(len(prompt_ids), runner.max_model_len)
    sampler = Sampler(params)
    stop_ids = set(params.stop_token_ids)
    if not params.ignore_eos:
        stop_ids |= tokenizer.stop_token_ids
    prompt_set = frozenset(prompt_ids) if params.repetition_penalty != 1 else frozenset()
    max_new = runner.max_model_len - len(prompt_ids)
    if params.max_tokens is not None:
        max_new = min(max_new, params.max_tokens)
    detokenizer = tokenizer.incremental_decoder()
    matcher = StopStringMatcher(params.stop)
    output_counts: Counter[int] = Counter()
    logits = runner.prefill(prompt_ids)
    position = len(prompt_ids)
    for num_generated in range(1, max_new + 1):
        token_id = sampler(logits, prompt_set, output_counts)
        if token_id in stop_ids:
            yield StreamDelta(_drain(detokenizer, matcher), None, "stop")
            return
        output_counts[token_id] += 1
        text, stopped = matcher.feed(detokenizer.push(token_id))
        if stopped:
            yield StreamDelta(text, token_id, "stop")
            return
        if num_generated == max_new:
            yield StreamDelta(text + _drain(detokenizer, matcher), token_id, "length")
            return
        yield StreamDelta(text, token_id)
        logits = runner.decode(token_id, position)
        position += 1


def _drain(detokenizer, matcher: StopStringMatcher) -> str:
    """Text still held back at the end: undecoded bytes, then a possible stop-string prefix."""
    text, stopped = matcher.feed(detokenizer.finish())
    return text if stopped else text + matcher.flush()
