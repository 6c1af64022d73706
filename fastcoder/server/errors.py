"""OpenAI-style error bodies for every failure: {"error": {message, type, param, code}}.

Invalid bodies are 400 (not FastAPI's 422) and name the offending field; typed errors carry
their own status; anything unexpected is a 500 in the same shape, without a stack trace."""
from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from fastcoder.errors import FastcoderError

log = logging.getLogger("fastcoder.server")


def error_body(message: str, error_type: str, param: str | None = None,
               code: str | None = None) -> dict:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def field_path(loc: tuple, body: object, missing: bool) -> str | None:
    """The request-body field a validation error is about, as the client spelled it
    ("temperature", "messages[0].role"). pydantic adds union-member tags ("str", "list[int]")
    to `loc`, which are skipped."""
    parts = list(loc[1:] if loc and loc[0] == "body" else loc)
    path, node = "", body
    for i, part in enumerate(parts):
        last_missing = missing and i == len(parts) - 1
        if isinstance(part, int) and isinstance(node, list) and 0 <= part < len(node):
            path, node = f"{path}[{part}]", node[part]
        elif isinstance(part, str) and isinstance(node, dict) and (part in node or last_missing):
            path, node = f"{path}.{part}" if path else part, node.get(part)
        elif isinstance(part, int):
            break
        # else: a union-member tag, not a key the client sent
    return path or None


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(FastcoderError)
    async def typed_error(_: Request, exc: FastcoderError) -> JSONResponse:
        retry_after = getattr(exc, "retry_after_s", None)
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        return JSONResponse(exc.to_openai(), status_code=exc.http_status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_body(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors() or [{"loc": (), "msg": "invalid request body", "type": ""}]
        if errors[0].get("type") == "json_invalid":
            return JSONResponse(error_body(f"request body is not valid JSON: {errors[0]['msg']}",
                                           "invalid_request_error", None, "invalid_json"),
                                status_code=400)
        if tuple(errors[0].get("loc", ())) == ("body",):
            return JSONResponse(error_body("the request body must be a JSON object",
                                           "invalid_request_error", None, "invalid_parameter"),
                                status_code=400)
        # A union field reports one error per member; the one reaching deepest into what the
        # client sent is the useful one ("stop[0]: too short", not "stop: not a string").
        located = [(field_path(tuple(e.get("loc", ())), exc.body, e.get("type") == "missing"), e)
                   for e in errors]
        param, first = max(located, key=lambda pe: len(pe[0] or ""))
        reason = first["msg"].removeprefix("Value error, ")
        message = f"invalid value for '{param}': {reason}" if param else reason
        return JSONResponse(error_body(message, "invalid_request_error", param,
                                       "invalid_parameter"), status_code=400)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        error_type = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        return JSONResponse(error_body(str(exc.detail), error_type), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(error_body(f"internal error: {type(exc).__name__}", "server_error"),
                            status_code=500)
