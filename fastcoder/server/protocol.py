"""OpenAI request bodies (pydantic). Unknown fields are ignored, as the OpenAI API does; ranges
are checked here so a bad value is a 400 naming its field before anything runs."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator

StopString = Annotated[str, Field(min_length=1)]
MAX_PROMPTS = 16                     # prompts in one /v1/completions batch
MAX_SEED = 2**63 - 1                 # OpenAI's seed is an int64; torch seeds take 64 bits


class StreamOptions(BaseModel):
    include_usage: bool = False


class SamplingFields(BaseModel):
    model: str | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=1.0, ge=0, le=2)
    top_p: float = Field(default=1.0, gt=0, le=1)
    top_k: int = Field(default=0, ge=0)
    min_p: float = Field(default=0.0, ge=0, le=1)
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED)
    stop: StopString | list[StopString] | None = None
    presence_penalty: float = Field(default=0.0, ge=-2, le=2)
    frequency_penalty: float = Field(default=0.0, ge=-2, le=2)
    repetition_penalty: float = Field(default=1.0, gt=0)
    ignore_eos: bool = False          # vLLM extension: generate max_tokens whatever comes
    n: int = Field(default=1, ge=1, le=16)
    stream: bool = False
    stream_options: StreamOptions | None = None

    @property
    def include_usage(self) -> bool:
        return bool(self.stream and self.stream_options and self.stream_options.include_usage)


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict] | None = ""

    def text(self) -> str:
        if isinstance(self.content, list):       # [{"type": "text", "text": ...}, ...]
            return "".join(str(part.get("text", "")) for part in self.content)
        return self.content or ""


class ChatCompletionRequest(SamplingFields):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(default=None, ge=0, le=20)

    @property
    def max_tokens_field(self) -> tuple[str, int | None]:
        """(field name, value) of the length limit the client set, the newer name first."""
        if self.max_completion_tokens is not None:
            return "max_completion_tokens", self.max_completion_tokens
        return "max_tokens", self.max_tokens


class CompletionRequest(SamplingFields):
    # One prompt (text or token ids) or a batch of them, as the OpenAI API takes.
    prompt: str | list
    suffix: str | None = None
    echo: bool = False
    logprobs: int | None = Field(default=None, ge=0, le=20)

    @field_validator("prompt", mode="before")
    @classmethod
    def _one_or_a_batch(cls, value):
        def single(item) -> bool:
            if isinstance(item, str):
                return bool(item)
            return (isinstance(item, list) and bool(item)
                    and all(type(t) is int and t >= 0 for t in item))
        batch = isinstance(value, list) and value and not isinstance(value[0], int)
        if (single(value) or batch and len(value) <= MAX_PROMPTS and all(map(single, value))):
            return value
        raise ValueError(f"must be a non-empty string, a non-empty list of token ids (ints >= 0), "
                         f"or a list of up to {MAX_PROMPTS} of those")

    def prompts(self) -> list[str | list[int]]:
        """The batch: each a text or a list of token ids."""
        if isinstance(self.prompt, str) or isinstance(self.prompt[0], int):
            return [self.prompt]
        return list(self.prompt)
