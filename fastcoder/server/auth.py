"""Bearer-key auth as a pure ASGI middleware (streams pass through untouched)."""
from __future__ import annotations

import hmac
import json

from starlette.types import ASGIApp, Receive, Scope, Send

from fastcoder.server.errors import error_body

# Probes and scrapers reach these without the key, as with vLLM and llama-server.
OPEN_PATHS = frozenset({"/health", "/metrics"})


class BearerAuth:
    def __init__(self, app: ASGIApp, api_key: str):
        self.app = app
        self.expected = f"Bearer {api_key}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            return await self.app(scope, receive, send)
        given = dict(scope["headers"]).get(b"authorization", b"")
        # Constant time, so the key cannot be guessed byte by byte from response times.
        if hmac.compare_digest(given, self.expected):
            return await self.app(scope, receive, send)
        body = json.dumps(error_body("invalid or missing API key (Authorization: Bearer KEY)",
                                     "invalid_request_error", None, "invalid_api_key")).encode()
        await send({"type": "http.response.start", "status": 401, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", b"Bearer")]})
        await send({"type": "http.response.body", "body": body})
