"""Logprobs in the two OpenAI shapes: chat (`content: [{token, logprob, bytes, top_logprobs}]`)
and legacy completions (`tokens`, `token_logprobs`, `top_logprobs: [{token: logprob}]`)."""
from __future__ import annotations

from typing import Sequence

from fastcoder.engine.engine_api import TokenLogprob
from fastcoder.tokenizer.tokenizer import Tokenizer


def _token(tokenizer: Tokenizer, token_id: int) -> str:
    # A byte token that is part of a UTF-8 character decodes to U+FFFD; `bytes` keeps the truth.
    return tokenizer.decode([token_id])


def chat_logprobs(tokenizer: Tokenizer, logprobs: Sequence[TokenLogprob]) -> dict:
    def entry(token_id: int, logprob: float) -> dict:
        return {"token": _token(tokenizer, token_id), "logprob": logprob,
                "bytes": list(tokenizer.token_bytes(token_id))}
    return {"content": [{**entry(lp.token_id, lp.logprob),
                         "top_logprobs": [entry(i, v) for i, v in lp.top]} for lp in logprobs]}


def completion_logprobs(tokenizer: Tokenizer, logprobs: Sequence[TokenLogprob]) -> dict:
    return {"tokens": [_token(tokenizer, lp.token_id) for lp in logprobs],
            "token_logprobs": [lp.logprob for lp in logprobs],
            "top_logprobs": [{_token(tokenizer, i): v for i, v in lp.top} for lp in logprobs]}
