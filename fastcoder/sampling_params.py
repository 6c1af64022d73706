"""SamplingParams: how to pick tokens and when to stop. Validates on construction."""
from __future__ import annotations

from dataclasses import dataclass

from fastcoder.errors import InvalidParameterError


@dataclass(frozen=True, slots=True)
class SamplingParams:
    temperature: float = 0.8          # 0 means greedy
    top_k: int = 0                    # 0 = disabled
    top_p: float = 1.0                # in (0, 1]
    min_p: float = 0.0                # in [0, 1]
    presence_penalty: float = 0.0     # in [-2, 2], OpenAI semantics
    frequency_penalty: float = 0.0    # in [-2, 2]
    repetition_penalty: float = 1.0   # > 0, 1 = off (CTRL / llama.cpp semantics)
    seed: int | None = None
    max_tokens: int | None = 256      # None = until EOS or context end
    stop: tuple[str, ...] = ()
    stop_token_ids: tuple[int, ...] = ()
    ignore_eos: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.stop, str):
            object.__setattr__(self, "stop", (self.stop,))
        else:
            object.__setattr__(self, "stop", tuple(self.stop))
        object.__setattr__(self, "stop_token_ids", tuple(self.stop_token_ids))
        _check(self.temperature >= 0, "temperature", f"must be >= 0, got {self.temperature}")
        _check(self.top_k >= 0, "top_k", f"must be >= 0 (0 disables), got {self.top_k}")
        _check(0 < self.top_p <= 1, "top_p", f"must be in (0, 1], got {self.top_p}")
        _check(0 <= self.min_p <= 1, "min_p", f"must be in [0, 1], got {self.min_p}")
        for name in ("presence_penalty", "frequency_penalty"):
            value = getattr(self, name)
            _check(-2 <= value <= 2, name, f"must be in [-2, 2], got {value}")
        _check(self.repetition_penalty > 0, "repetition_penalty",
               f"must be > 0, got {self.repetition_penalty}")
        _check(self.max_tokens is None or self.max_tokens >= 1, "max_tokens",
               f"must be >= 1, got {self.max_tokens}")
        _check(self.seed is None or self.seed >= 0, "seed", f"must be >= 0, got {self.seed}")
        _check(all(isinstance(s, str) and s for s in self.stop), "stop",
               "stop strings must be non-empty strings")

    @property
    def is_greedy(self) -> bool:
        return self.temperature == 0 or self.top_k == 1

    @property
    def has_penalties(self) -> bool:
        return (self.presence_penalty != 0 or self.frequency_penalty != 0
                or self.repetition_penalty != 1)


def _check(ok: bool, param: str, message: str) -> None:
    if not ok:
        raise InvalidParameterError(f"{param} {message}", param=param)
