"""GET /v1/models, /v1/models/{id}, /health and /metrics."""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from fastcoder.server.context import ServerContext
from fastcoder.server.errors import error_body

router = APIRouter()


def model_card(ctx: ServerContext) -> dict:
    return {"id": ctx.model_name, "object": "model", "created": ctx.created,
            "owned_by": "fastcoder", "max_model_len": ctx.engine.max_model_len}


@router.get("/v1/models")
async def list_models(request: Request):
    return {"object": "list", "data": [model_card(request.app.state.ctx)]}


@router.get("/v1/models/{model_id:path}")
async def get_model(model_id: str, request: Request):
    ctx: ServerContext = request.app.state.ctx
    ctx.check_model(model_id)
    return model_card(ctx)


@router.get("/health")
async def health(request: Request):
    ctx: ServerContext = request.app.state.ctx
    if not ctx.engine.is_alive:
        return JSONResponse(error_body("the engine thread has stopped", "server_error"),
                            status_code=503)
    return {"status": "ok"}


@router.get("/metrics")
async def metrics(request: Request):
    ctx: ServerContext = request.app.state.ctx
    return PlainTextResponse(ctx.metrics.render(ctx.engine.stats()),
                             media_type="text/plain; version=0.0.4")
