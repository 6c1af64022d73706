"""Server-sent events in the OpenAI shape: `data: {json}` lines, then `data: [DONE]`."""
from __future__ import annotations

import json
from typing import AsyncIterator

from fastapi.responses import StreamingResponse


def sse_event(payload: dict) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


def sse_response(events: AsyncIterator[str]) -> StreamingResponse:
    async def body() -> AsyncIterator[str]:
        async for event in events:
            yield event
        yield "data: [DONE]\n\n"
    return StreamingResponse(body(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def error_event(exc: Exception) -> str:
    """What a stream says when it fails after the 200 went out (OpenAI and vLLM do the same)."""
    from fastcoder.errors import FastcoderError
    if isinstance(exc, FastcoderError):
        return sse_event(exc.to_openai())
    return sse_event({"error": {"message": f"internal error: {type(exc).__name__}",
                                "type": "server_error", "param": None, "code": None}})
