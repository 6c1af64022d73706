"""What every route needs: the engine, the tokenizer, the served model's name, metrics."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from fastcoder.engine.async_engine import AsyncEngine
from fastcoder.errors import UnknownModelError
from fastcoder.server.metrics import Metrics
from fastcoder.tokenizer.tokenizer import Tokenizer


@dataclass
class ServerContext:
    engine: AsyncEngine
    tokenizer: Tokenizer
    model_name: str
    metrics: Metrics = field(default_factory=Metrics)
    created: int = field(default_factory=lambda: int(time.time()))

    def check_model(self, requested: str | None) -> None:
        """An absent model field means the served one, as llama-server does."""
        if requested and requested != self.model_name:
            raise UnknownModelError(f"model '{requested}' is not served here; this server "
                                    f"serves '{self.model_name}'", param="model")
