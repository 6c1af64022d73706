"""The FastAPI app: routes, bearer-key auth, OpenAI error bodies, request metrics."""
from __future__ import annotations

import hmac
import time

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from fastcoder.server.context import ServerContext
from fastcoder.server.errors import error_body, install_error_handlers
from fastcoder.server.routes_chat import router as chat_router
from fastcoder.server.routes_completions import router as completions_router

OPEN_PATHS = {"/health", "/metrics"}


def create_app(ctx: ServerContext, api_key: str | None = None) -> FastAPI:
    app = FastAPI(title="fastcoder", docs_url=None, redoc_url=None)
    app.state.ctx = ctx
    install_error_handlers(app)
    app.include_router(chat_router)
    app.include_router(completions_router)

    @app.middleware("http")
    async def auth_and_count(request: Request, call_next):
        if api_key and request.url.path not in OPEN_PATHS:
            given = request.headers.get("authorization", "")
            expected = f"Bearer {api_key}"
            if not hmac.compare_digest(given.encode(), expected.encode()):
                ctx.metrics.record_request(401)
                return JSONResponse(error_body("invalid or missing API key",
                                               "invalid_request_error", None, "invalid_api_key"),
                                    status_code=401)
        response = await call_next(request)
        if request.url.path.startswith("/v1/"):
            ctx.metrics.record_request(response.status_code)
        return response

    @app.get("/health")
    async def health():
        return {"status": "ok"}

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [{"id": ctx.model_name, "object": "model",
                                            "created": int(time.time()), "owned_by": "fastcoder"}]}

    @app.get("/metrics")
    async def metrics():
        return PlainTextResponse(ctx.metrics.render(ctx.engine.stats()))

    return app
