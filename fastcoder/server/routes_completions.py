"""POST /v1/completions: text or token-id prompts, `suffix` for fill-in-the-middle, echo."""
from __future__ import annotations

import time
import uuid

from fastapi import APIRouter, Request

from fastcoder.server.context import ServerContext
from fastcoder.server.generation import Choice, collect, run_choices, sampling_params, usage
from fastcoder.server.protocol import CompletionRequest
from fastcoder.server.sse import sse_event, sse_response

router = APIRouter()


def prompt_ids_of(ctx: ServerContext, body: CompletionRequest) -> list[int]:
    if body.suffix is not None:
        prefix = body.prompt if isinstance(body.prompt, str) else ctx.tokenizer.decode(body.prompt)
        return ctx.tokenizer.build_fim_prompt(prefix, body.suffix)   # typed 400 without FIM
    if isinstance(body.prompt, list):
        return list(body.prompt)
    return ctx.tokenizer.encode(body.prompt)


def completion_logprobs(ctx: ServerContext, logprobs) -> dict:
    token = lambda i: ctx.tokenizer.decode([i])
    return {"tokens": [token(lp.token_id) for lp in logprobs],
            "token_logprobs": [lp.logprob for lp in logprobs],
            "top_logprobs": [{token(i): v for i, v in lp.top} for lp in logprobs]}


@router.post("/v1/completions")
async def completions(body: CompletionRequest, request: Request):
    ctx: ServerContext = request.app.state.ctx
    ctx.check_model(body.model)
    prompt_ids = prompt_ids_of(ctx, body)
    vocab = ctx.tokenizer.vocab_size
    if any(not 0 <= t < vocab for t in prompt_ids):
        from fastcoder.errors import InvalidParameterError
        raise InvalidParameterError(f"prompt token ids must be in [0, {vocab})", param="prompt")
    params = [sampling_params(body, body.max_tokens or 16, len(prompt_ids),
                              ctx.engine.max_model_len, i) for i in range(body.n)]
    echo = ctx.tokenizer.decode(prompt_ids) if body.echo else ""
    completion_id, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
    base = {"id": completion_id, "object": "text_completion", "created": created,
            "model": ctx.model_name}
    choices = [Choice(i) for i in range(body.n)]
    deltas = run_choices(ctx.engine, ctx.metrics, "cmpl", prompt_ids, params, body.logprobs)

    if not body.stream:
        async for index, delta in deltas:
            collect(choices[index], delta)
        ctx.metrics.record_tokens(len(prompt_ids), sum(len(c.token_ids) for c in choices))
        return {**base, "choices": [
            {"index": c.index, "text": echo + "".join(c.text),
             "logprobs": completion_logprobs(ctx, c.logprobs) if body.logprobs is not None
             else None, "finish_reason": c.finish_reason} for c in choices],
            "usage": usage(len(prompt_ids), choices)}

    include_usage = bool(body.stream_options and body.stream_options.include_usage)

    async def events():
        if echo:
            for c in choices:
                yield sse_event({**base, "choices": [{"index": c.index, "text": echo,
                                                      "logprobs": None, "finish_reason": None}]})
        async for index, delta in deltas:
            collect(choices[index], delta)
            yield sse_event({**base, "choices": [{
                "index": index, "text": delta.text,
                "logprobs": completion_logprobs(ctx, delta.logprobs)
                if body.logprobs is not None else None,
                "finish_reason": delta.finish_reason}]})
        ctx.metrics.record_tokens(len(prompt_ids), sum(len(c.token_ids) for c in choices))
        if include_usage:
            yield sse_event({**base, "choices": [], "usage": usage(len(prompt_ids), choices)})
    return sse_response(events())
