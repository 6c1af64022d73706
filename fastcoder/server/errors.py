"""OpenAI-style error bodies for every failure: {"error": {message, type, param, code}}."""
from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from fastcoder.errors import FastcoderError


def error_body(message: str, error_type: str, param: str | None = None,
               code: str | None = None) -> dict:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(FastcoderError)
    async def typed_error(_: Request, exc: FastcoderError) -> JSONResponse:
        headers = {"Retry-After": "1"} if exc.http_status == 429 else None
        return JSONResponse(exc.to_openai(), status_code=exc.http_status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_body(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid body"}
        field = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or None
        message = f"invalid value for '{field}': {first['msg']}" if field else first["msg"]
        return JSONResponse(error_body(message, "invalid_request_error", field,
                                       "invalid_parameter"), status_code=400)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse(error_body(str(exc.detail), "invalid_request_error"),
                            status_code=exc.status_code)
