"""Typed errors of the tokenizer layer (all `FastcoderError`s, so the CLI and server render them)."""
from __future__ import annotations

from fastcoder.errors import FastcoderError


class UnsupportedTokenizerError(FastcoderError):
    """The GGUF names a tokenizer model (`tokenizer.ggml.model`) or pre-tokenizer
    (`tokenizer.ggml.pre`) that fastcoder has no builder for."""
    http_status = 500
    error_type = "server_error"
    code = "unsupported_tokenizer"


class ChatTemplateError(FastcoderError):
    """The chat template refused the messages (e.g. its `raise_exception("roles must alternate")`)."""
    code = "invalid_chat_messages"


class NoChatTemplateError(ChatTemplateError):
    """The model has no `tokenizer.chat_template` and none was given. We do not fall back to a
    made-up "role: content" format the model was never trained on: the caller should use plain
    completions or pass a template explicitly."""
    code = "chat_template_missing"


class InvalidChatTemplateError(ChatTemplateError):
    """The template itself does not compile (a broken model file or a bad override)."""
    http_status = 500
    error_type = "server_error"
    code = "invalid_chat_template"


class FimNotSupportedError(FastcoderError):
    """Fill-in-the-middle was requested from a model whose vocabulary has no FIM tokens."""
    code = "fim_not_supported"
