"""POST /v1/chat/completions."""
from __future__ import annotations

import time
import uuid

from fastapi import APIRouter, Request

from fastcoder.server.context import ServerContext
from fastcoder.server.generation import Choice, collect, run_choices, sampling_params, usage
from fastcoder.server.protocol import ChatCompletionRequest
from fastcoder.server.sse import sse_event, sse_response

router = APIRouter()


def chat_logprobs(ctx: ServerContext, logprobs) -> dict:
    token = lambda i: ctx.tokenizer.decode([i])
    return {"content": [{"token": token(lp.token_id), "logprob": lp.logprob,
                         "top_logprobs": [{"token": token(i), "logprob": v} for i, v in lp.top]}
                        for lp in logprobs]}


@router.post("/v1/chat/completions")
async def chat_completions(body: ChatCompletionRequest, request: Request):
    ctx: ServerContext = request.app.state.ctx
    ctx.check_model(body.model)
    messages = [{"role": m.role, "content": m.text()} for m in body.messages]
    text = ctx.tokenizer.apply_chat_template(messages, add_generation_prompt=True)
    prompt_ids = ctx.tokenizer.encode(text, add_special_tokens=False)
    max_tokens = body.max_completion_tokens or body.max_tokens
    params = [sampling_params(body, max_tokens, len(prompt_ids), ctx.engine.max_model_len, i)
              for i in range(body.n)]
    num_logprobs = (body.top_logprobs or 0) if body.logprobs else None
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    base = {"id": completion_id, "created": created, "model": ctx.model_name}
    choices = [Choice(i) for i in range(body.n)]
    deltas = run_choices(ctx.engine, ctx.metrics, "chat", prompt_ids, params, num_logprobs)

    if not body.stream:
        async for index, delta in deltas:
            collect(choices[index], delta)
        ctx.metrics.record_tokens(len(prompt_ids), sum(len(c.token_ids) for c in choices))
        return {**base, "object": "chat.completion", "choices": [
            {"index": c.index, "message": {"role": "assistant", "content": "".join(c.text)},
             "logprobs": chat_logprobs(ctx, c.logprobs) if num_logprobs is not None else None,
             "finish_reason": c.finish_reason} for c in choices],
            "usage": usage(len(prompt_ids), choices)}

    include_usage = bool(body.stream_options and body.stream_options.include_usage)

    async def events():
        chunk = {**base, "object": "chat.completion.chunk"}
        for c in choices:
            yield sse_event({**chunk, "choices": [{"index": c.index, "delta": {
                "role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}]})
        async for index, delta in deltas:
            collect(choices[index], delta)
            payload = {"index": index, "delta": {"content": delta.text} if delta.text else {},
                       "logprobs": chat_logprobs(ctx, delta.logprobs)
                       if num_logprobs is not None else None,
                       "finish_reason": delta.finish_reason}
            yield sse_event({**chunk, "choices": [payload]})
        ctx.metrics.record_tokens(len(prompt_ids), sum(len(c.token_ids) for c in choices))
        if include_usage:
            yield sse_event({**chunk, "choices": [], "usage": usage(len(prompt_ids), choices)})
    return sse_response(events())
