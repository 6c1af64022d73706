"""POST /v1/chat/completions: messages through the model's chat template, n choices, streaming."""
from __future__ import annotations

import time
import uuid

from fastapi import APIRouter, Request

from fastcoder.server.context import ServerContext
from fastcoder.server.generation import Completion, collect_all, sampling_params
from fastcoder.server.logprobs import chat_logprobs
from fastcoder.server.protocol import ChatCompletionRequest
from fastcoder.server.sse import error_event, sse_event, sse_response

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

    async def events():
        chunk = {**base, "object": "chat.completion.chunk"}
        try:
            for c in completion.choices:
                yield sse_event({**chunk, "choices": [{"index": c.index, "delta": {
                    "role": "assistant", "content": ""}, "logprobs": None,
                    "finish_reason": None}]})
            async for delta in stream:
                choice = completion.add(delta)
                yield sse_event({**chunk, "choices": [{
                    "index": choice.index, "delta": {"content": delta.text} if delta.text else {},
                    "logprobs": logprobs_of(delta.logprobs),
                    "finish_reason": delta.finish_reason}]})
            if body.include_usage:
                yield sse_event({**chunk, "choices": [], "usage": completion.usage()})
        except Exception as exc:
            yield error_event(exc)
        finally:
            stream.close()
            completion.record()
    return sse_response(events())
