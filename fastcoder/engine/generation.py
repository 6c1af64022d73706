"""One request, start to finish, on a ModelRunner: sample, detokenize, stop. Yields deltas."""
from __future__ import annotations

from typing import Iterator

from fastcoder.engine.output_state import OutputState
from fastcoder.engine.runner import ModelRunner
from fastcoder.errors import ContextLengthError
from fastcoder.outputs import StreamDelta
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
    carries finish_reason ("stop" or "length"); a stop token's delta has token_id None."""
    check_prompt_fits(len(prompt_ids), runner.max_model_len)
    state = OutputState.for_request(tokenizer, prompt_ids, params, runner.max_model_len)
    logits = runner.prefill(prompt_ids)
    position = len(prompt_ids)
    while True:
        token_id = state.sample(logits)
        text, finish = state.accept(token_id)
        is_stop_token = finish == "stop" and token_id in state.stop_ids
        yield StreamDelta(text, None if is_stop_token else token_id, finish)
        if finish is not None:
            return
        logits = runner.decode(token_id, position)
        position += 1
