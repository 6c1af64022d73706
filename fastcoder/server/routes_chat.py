"""POST /v1/chat/completions: messages through the model's chat template, n choices, streaming."""
from __future__ import annotations

import time
import uuid

from fastapi import APIRouter, Request

from fastcoder.server.context import ServerContext
from fastcoder.server.generation import (Completion, collect_all, sampling_params,
                                         stream_events)
from fastcoder.server.logprobs import chat_logprobs
from fastcoder.server.protocol import ChatCompletionRequest
from fastcoder.server.sse import sse_response

router = APIRouter()


@router.post("/v1/chat/completions")
async def chat_completions(body: ChatCompletionRequest, request: Request):
    ctx: ServerContext = request.app.state.ctx
    ctx.check_model(body.model)
    messages = [{"role": m.role, "content": m.text()} for m in body.messages]
    text = ctx.tokenizer.apply_chat_template(messages, add_generation_prompt=True)
    prompt_ids = ctx.tokenizer.encode(text, add_special_tokens=False)
    params = [sampling_params(body, body.max_tokens_field, len(prompt_ids),
                              ctx.engine.max_model_len, "messages", i) for i in range(body.n)]
    num_logprobs = (body.top_logprobs or 0) if body.logprobs else None
    completion = Completion(ctx, f"chatcmpl-{uuid.uuid4().hex}", [len(prompt_ids)], body.n)
    stream = await completion.start([prompt_ids], params, num_logprobs)
    base = {"id": completion.completion_id, "created": int(time.time()),
            "model": ctx.model_name}

    def logprobs_of(items) -> dict | None:
        return chat_logprobs(ctx.tokenizer, items) if num_logprobs is not None else None

    if not body.stream:
        await collect_all(completion, stream)
        return {**base, "object": "chat.completion", "choices": [
            {"index": c.index, "message": {"role": "assistant", "content": "".join(c.text)},
             "logprobs": logprobs_of(c.logprobs), "finish_reason": c.finish_reason}
            for c in completion.choices], "usage": completion.usage()}

    opening = [{"index": c.index, "delta": {"role": "assistant", "content": ""},
                "logprobs": None, "finish_reason": None} for c in completion.choices]
    return sse_response(stream_events(
        completion, stream, {**base, "object": "chat.completion.chunk"}, opening,
        lambda delta: {"delta": {"content": delta.text} if delta.text else {}},
        logprobs_of, body.include_usage))
