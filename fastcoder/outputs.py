"""What generation returns, in the shape vLLM users know."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CompletionOutput:
    index: int
    text: str
    token_ids: tuple[int, ...]
    finish_reason: str | None      # "stop" (EOS or stop string), "length", None while running


@dataclass(frozen=True, slots=True)
class RequestOutput:
    prompt: str | None
    prompt_token_ids: tuple[int, ...]
    outputs: tuple[CompletionOutput, ...]
    finished: bool = True


@dataclass(frozen=True, slots=True)
class StreamDelta:
    """One streaming step: new text (may be empty while held back) and the new token id."""
    text: str
    token_id: int | None
    finish_reason: str | None = None
