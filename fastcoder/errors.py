"""Typed user-facing errors. Each carries an HTTP status and an OpenAI error type/code so the
CLI can print one line (exit 2) and the server can return an OpenAI-style body."""
from __future__ import annotations


class FastcoderError(Exception):
    """Base class: a problem with the user's input or environment, never a bug."""

    http_status: int = 400
    error_type: str = "invalid_request_error"
    code: str | None = None

    def __init__(self, message: str, *, param: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param

    def to_openai(self) -> dict:
        return {"error": {"message": self.message, "type": self.error_type,
                          "param": self.param, "code": self.code}}


class InvalidParameterError(FastcoderError):
    """A sampling or request parameter is out of range."""
    code = "invalid_parameter"


class UnknownModelError(FastcoderError):
    """A model name that is neither in the catalog nor a local .gguf path."""
    http_status = 404
    code = "model_not_found"


class ModelFileError(FastcoderError):
    """A GGUF file that is missing, truncated or corrupt."""
    http_status = 500
    error_type = "server_error"
    code = "model_file_error"


class UnsupportedArchitectureError(FastcoderError):
    http_status = 500
    error_type = "server_error"
    code = "unsupported_architecture"


class UnsupportedQuantTypeError(FastcoderError):
    http_status = 500
    error_type = "server_error"
    code = "unsupported_quant_type"


class ContextLengthError(FastcoderError):
    """Prompt (plus requested tokens) longer than the model's context."""
    code = "context_length_exceeded"


class PullError(FastcoderError):
    """Downloading or assembling a catalog model failed."""
    http_status = 502
    error_type = "server_error"
    code = "pull_failed"
