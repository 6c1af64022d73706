"""One request, start to finish, on a ModelRunner: sample, detokenize, stop. Yields deltas.

With a speculative proposer each step feeds the last token plus a draft of k tokens through one
forward and walks the k + 1 rows of logits: a row that confirms its draft token emits it and
goes on, the first row that does not emits its own token and ends the step (the rejected drafts'
KV entries are overwritten by the next forward). Every emitted token still goes through
OutputState one at a time, so EOS, stop strings and max_tokens act exactly as without a draft."""
from __future__ import annotations

from typing import Iterator

from fastcoder.engine.output_state import OutputState
from fastcoder.engine.runner import ModelRunner
from fastcoder.errors import ContextLengthError
from fastcoder.outputs import StreamDelta
from fastcoder.sampling_params import SamplingParams
from fastcoder.spec.proposer import Draft, Proposer, SpecCounters
from fastcoder.tokenizer.tokenizer import Tokenizer

NO_DRAFT = Draft()


def check_prompt_fits(num_prompt_tokens: int, max_model_len: int) -> None:
    if num_prompt_tokens == 0:
        raise ContextLengthError("prompt is empty: nothing to continue", param="prompt")
    if num_prompt_tokens >= max_model_len:
        raise ContextLengthError(
            f"prompt has {num_prompt_tokens} tokens but the context holds {max_model_len} "
            f"(at least one token must remain for the reply)", param="prompt")


def stream_tokens(runner: ModelRunner, tokenizer: Tokenizer, prompt_ids: list[int],
                  params: SamplingParams, proposer: Proposer | None = None,
                  counters: SpecCounters | None = None) -> Iterator[StreamDelta]:
    """Generates until EOS, a stop string, max_tokens or the end of the context. The last delta
    carries finish_reason ("stop" or "length"); a stop token's delta has token_id None.
    `counters` receives (drafted, accepted) per verify step."""
    check_prompt_fits(len(prompt_ids), runner.max_model_len)
    state = OutputState.for_request(tokenizer, prompt_ids, params, runner.max_model_len)
    if proposer is not None:
        proposer.reset()
    rows = runner.prefill(prompt_ids)[None]           # [1, vocab]
    context = list(prompt_ids)                        # prompt + emitted tokens
    draft = NO_DRAFT
    while True:
        # rows[i] follows context + draft[:i]: row i checks draft token i, the last adds one.
        for num_accepted, row in enumerate(rows):
            if num_accepted < len(draft):
                q = None if draft.probs is None else draft.probs[num_accepted]
                token_id, accepted = state.verify(row, draft.token_ids[num_accepted], q)
            else:
                token_id, accepted = state.sample(row), False
            context.append(token_id)
            text, finish = state.accept(token_id)
            is_stop_token = finish == "stop" and token_id in state.stop_ids
            yield StreamDelta(text, None if is_stop_token else token_id, finish)
            if finish is not None:
                if counters is not None:   # drafts past the end were never checked
                    counters.record(min(len(draft), num_accepted + 1),
                                    num_accepted + accepted)
                return
            if not accepted:
                break
        if proposer is not None:
            proposer.observe(len(draft), num_accepted)
            if counters is not None:
                counters.record(len(draft), num_accepted)
        position = len(context) - 1                   # of token_id, whose KV is not cached yet
        # The step emits up to 1 + k tokens and its drafts sit at position + 1 .. position + k.
        budget = min(state.max_new - state.num_generated - 1,
                     runner.max_model_len - 1 - position)
        draft = proposer.propose(context, budget) if proposer and budget > 0 else NO_DRAFT
        rows = runner.verify([token_id, *draft.token_ids], position)   # [1 + k, vocab]
