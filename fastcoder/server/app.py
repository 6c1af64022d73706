"""The FastAPI app: OpenAI-compatible routes over an AsyncEngine."""
from __future__ import annotations

from fastapi import FastAPI

from fastcoder.engine.async_engine import AsyncEngine
from fastcoder.server.auth import BearerAuth
from fastcoder.server.context import ServerContext
from fastcoder.server.errors import install_error_handlers
from fastcoder.server.metrics import CountRequests, Metrics
from fastcoder.server.routes_chat import router as chat_router
from fastcoder.server.routes_completions import router as completions_router
from fastcoder.server.routes_models import router as models_router
from fastcoder.tokenizer.tokenizer import Tokenizer


def create_app(engine: AsyncEngine, tokenizer: Tokenizer, model_name: str,
               api_key: str | None = None, *, metrics: Metrics | None = None) -> FastAPI:
    """engine: a started AsyncEngine (the caller owns it and shuts it down). api_key: when set,
    every route but /health and /metrics wants `Authorization: Bearer <api_key>`."""
    app = FastAPI(title="fastcoder", docs_url=None, redoc_url=None, openapi_url=None)
    ctx = ServerContext(engine, tokenizer, model_name, metrics or Metrics())
    app.state.ctx = ctx
    install_error_handlers(app)
    for router in (chat_router, completions_router, models_router):
        app.include_router(router)
    if api_key:
        app.add_middleware(BearerAuth, api_key=api_key)
    app.add_middleware(CountRequests, metrics=ctx.metrics)     # outermost: sees 401s too
    return app
