"""POST /v1/completions: text or token-id prompts (one or a batch), `suffix` for
fill-in-the-middle with the model's FIM tokens, echo, logprobs, n choices, streaming."""
from __future__ import annotations

import time
import uuid

from fastapi import APIRouter, Request

from fastcoder.errors import InvalidParameterError
from fastcoder.server.context import ServerContext
from fastcoder.server.generation import (Completion, collect_all, sampling_params,
                                         stream_events)
from fastcoder.server.logprobs import completion_logprobs
from fastcoder.server.protocol import CompletionRequest
from fastcoder.server.sse import sse_response

router = APIRouter()
DEFAULT_MAX_TOKENS = 16             # the OpenAI default for this endpoint


def prompt_ids_of(ctx: ServerContext, prompt: str | list[int], suffix: str | None) -> list[int]:
    vocab = ctx.tokenizer.vocab_size
    if isinstance(prompt, list) and any(t >= vocab for t in prompt):
        raise InvalidParameterError(f"prompt token ids must be in [0, {vocab})", param="prompt")
    if suffix is not None:
        prefix = prompt if isinstance(prompt, str) else ctx.tokenizer.decode(prompt)
        return ctx.tokenizer.build_fim_prompt(prefix, suffix)   # 400 for a model without FIM
    if isinstance(prompt, list):
        return list(prompt)
    return ctx.tokenizer.encode(prompt)


@router.post("/v1/completions")
async def completions(body: CompletionRequest, request: Request):
    ctx: ServerContext = request.app.state.ctx
    ctx.check_model(body.model)
    prompts = [prompt_ids_of(ctx, p, body.suffix) for p in body.prompts()]
    max_tokens = ("max_tokens", body.max_tokens or DEFAULT_MAX_TOKENS)
    params = [sampling_params(body, max_tokens, len(ids), ctx.engine.max_model_len, "prompt", j)
              for ids in prompts for j in range(body.n)]
    completion = Completion(ctx, f"cmpl-{uuid.uuid4().hex}", [len(p) for p in prompts], body.n)
    stream = await completion.start(prompts, params, body.logprobs)
    echoes = [ctx.tokenizer.decode(p) if body.echo else "" for p in prompts]
    base = {"id": completion.completion_id, "object": "text_completion",
            "created": int(time.time()), "model": ctx.model_name}

    def logprobs_of(items) -> dict | None:
        return completion_logprobs(ctx.tokenizer, items) if body.logprobs is not None else None

    if not body.stream:
        await collect_all(completion, stream)
        return {**base, "choices": [
            {"index": c.index, "text": echoes[c.prompt_index] + "".join(c.text),
             "logprobs": logprobs_of(c.logprobs), "finish_reason": c.finish_reason}
            for c in completion.choices], "usage": completion.usage()}

    opening = [{"index": c.index, "text": echoes[c.prompt_index], "logprobs": None,
                "finish_reason": None} for c in completion.choices] if body.echo else []
    return sse_response(stream_events(completion, stream, base, opening,
                                      lambda delta: {"text": delta.text}, logprobs_of,
                                      body.include_usage))
