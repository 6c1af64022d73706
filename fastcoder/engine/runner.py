"""ModelRunner: owns the model and its KV cache; turns token ids into next-token logits."""
from __future__ import annotations

import torch

from fastcoder.loader.gguf_file import GGUFModelFile
from fastcoder.layers.kv_cache import KVCache
from fastcoder.model.registry import model_class_for


class ModelRunner:
    def __init__(self, gguf: GGUFModelFile, max_model_len: int):
        self.config = gguf.config
        self.max_model_len = max_model_len
        model_class = model_class_for(gguf.config.architecture)
        with torch.inference_mode():
            self.model = model_class(gguf, max_model_len)
        c = self.config
        self.cache = KVCache(c.num_layers, max_model_len, c.num_kv_heads, c.head_dim)

    @torch.inference_mode()
    def forward(self, token_ids: list[int], start_pos: int, all_logits: bool = False
                ) -> torch.Tensor:
        """Runs tokens at positions start_pos.. through the model, filling the KV cache.
        Returns logits [vocab] for the last token, or [num_tokens, vocab] with all_logits."""
        num_tokens = len(token_ids)
        positions = torch.arange(start_pos, start_pos + num_tokens)
        hidden = self.model(torch.tensor(token_ids, dtype=torch.long), positions, self.cache)
        if all_logits:
            return self.model.compute_logits(hidden)                  # [num_tokens, vocab]
        return self.model.compute_logits(hidden[-1:])[0]              # [vocab]
