"""Render a GGUF `tokenizer.chat_template` (Jinja) the way transformers' `apply_chat_template`
does: sandboxed immutable environment, trim_blocks + lstrip_blocks, loop controls, and the same
helpers (`raise_exception`, `strftime_now`, a JSON `tojson`, `namespace`, `{% generation %}`)."""
from __future__ import annotations

import json
from dataclasses import fields, is_dataclass
from datetime import datetime
from typing import Any, Mapping, Sequence

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

from fastcoder.tokenizer.errors import ChatTemplateError, InvalidChatTemplateError


def _raise_exception(message: str):
    raise jinja2.exceptions.TemplateError(message)


def _tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False) -> str:
    # Jinja's own filter HTML-escapes; templates expect plain JSON (transformers overrides it too).
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


def _make_dict(*args, **kwargs) -> dict:
    return dict(*args, **kwargs)


class _Namespace(jinja2.utils.Namespace):
    """`namespace()` that refuses underscore attributes, so a template cannot reach internals."""

    def __init__(*args, **kwargs):  # noqa: N805 -- Jinja's own signature trick: `namespace(self=1)` works
        self, args = args[0], args[1:]
        attrs = dict(*args, **kwargs)
        for name in attrs:
            _Namespace._check(name)
        jinja2.utils.Namespace.__init__(self, attrs)

    def __setitem__(self, name, value):
        _Namespace._check(name)
        jinja2.utils.Namespace.__setitem__(self, name, value)

    @staticmethod
    def _check(name):
        if isinstance(name, str) and name.startswith("_"):
            raise jinja2.exceptions.SecurityError(f"namespace attribute {name!r} may not start with '_'")


class _GenerationTag(jinja2.ext.Extension):
    """`{% generation %}...{% endgeneration %}` marks assistant text for training masks; when
    rendering a prompt it is a no-op block."""
    tags = {"generation"}

    def parse(self, parser):
        next(parser.stream)
        return parser.parse_statements(("name:endgeneration",), drop_needle=True)


def plain_data(value: Any) -> Any:
    """A deep copy made of JSON types only; None-valued message keys are dropped (OpenAI clients
    send `tool_calls: null`, which templates would render as "None")."""
    if value is None or type(value) in (str, int, float, bool):
        return value
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, Mapping):
        return {plain_data(k): plain_data(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_data(v) for v in value]
    if isinstance(value, tuple):
        return tuple(plain_data(v) for v in value)
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain_data(getattr(value, f.name)) for f in fields(value)}
    if callable(getattr(value, "model_dump", None)):   # pydantic models
        return plain_data(value.model_dump())
    return f"<{type(value).__name__}>"


def _normalize_messages(messages: Sequence[Any]) -> list[dict]:
    out = []
    for message in messages:
        message = plain_data(message)
        if not isinstance(message, dict):
            raise ChatTemplateError(f"a chat message must be an object with 'role' and 'content', got {message!r}",
                                    param="messages")
        out.append({k: v for k, v in message.items() if v is not None})
    return out


class ChatTemplate:
    """One compiled template plus the special-token strings it may refer to (`bos_token`...)."""

    def __init__(self, source: str, special_tokens: Mapping[str, str] | None = None):
        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                            extensions=[_GenerationTag, jinja2.ext.loopcontrols])
        env.filters["tojson"] = _tojson
        env.globals.update(raise_exception=_raise_exception, strftime_now=_strftime_now,
                           dict=_make_dict, namespace=_Namespace)
        try:
            self._template = env.from_string(source)
        except jinja2.exceptions.TemplateError as exc:
            raise InvalidChatTemplateError(f"chat template does not compile: {exc}") from exc
        self.source = source
        self.special_tokens = dict(special_tokens or {})

    def render(self, messages: Sequence[Any], add_generation_prompt: bool = True, **kwargs) -> str:
        """`kwargs` reach the template as variables (`tools`, `documents`, `enable_thinking`...)
        and override the special-token strings of the same name."""
        variables = {"tools": None, "documents": None, **self.special_tokens,
                     **{k: plain_data(v) for k, v in kwargs.items()}}
        try:
            return self._template.render(messages=_normalize_messages(messages),
                                         add_generation_prompt=add_generation_prompt, **variables)
        except jinja2.exceptions.TemplateError as exc:
            raise ChatTemplateError(f"chat template rejected the messages: {exc}", param="messages") from exc
        except (TypeError, KeyError, IndexError, AttributeError) as exc:
            # e.g. `messages[0]` of an empty list, or content that is not a string
            raise ChatTemplateError(f"chat template could not render the messages: {exc!r}",
                                    param="messages") from exc
