"""ModelRunner: owns the model and its KV cache; turns token ids into next-token logits."""
from __future__ import annotations

import torch

from fastcoder.loader.gguf_file import GGUFModelFile
from fastcoder.layers.kv_cache import KV_DTYPE, KVCache
from fastcoder.layers.linear import LinearFactory
from fastcoder.model.layer_windows import layer_windows
from fastcoder.model.registry import model_class_for

# Tokens per prefill forward: bounds the attention scores ([heads * tokens, keys] fp32), which
# for an 8k-token prompt in one forward would take 1 GiB per layer.
PREFILL_CHUNK = 512


class ModelRunner:
    def __init__(self, gguf: GGUFModelFile, max_model_len: int, linear: LinearFactory,
                 kv_dtype: torch.dtype = KV_DTYPE):
        self.config = gguf.config
        self.max_model_len = max_model_len
        self.kv_dtype = kv_dtype
        model_class = model_class_for(gguf.config.architecture)
        with torch.inference_mode():
            self.model = model_class(gguf, max_model_len, linear)
        c = self.config
        self.cache = KVCache(c.num_layers, max_model_len, c.num_kv_heads, c.head_dim,
                             layer_windows(c), dtype=kv_dtype)
        # Token ids whose K/V are in the cache, so a new prompt that shares a prefix with the last
        # conversation (an interactive chat, an agent resending history) skips recomputing it.
        self.cached_ids: list[int] = []

    def with_own_cache(self) -> "ModelRunner":
        """A runner over the same weights with a fresh KV cache: a draft model serving several
        sequences of a batching engine."""
        twin = object.__new__(ModelRunner)
        twin.config, twin.max_model_len, twin.model = self.config, self.max_model_len, self.model
        twin.kv_dtype = self.kv_dtype
        c = self.config
        twin.cache = KVCache(c.num_layers, self.max_model_len, c.num_kv_heads, c.head_dim,
                             layer_windows(c), dtype=self.kv_dtype)
        twin.cached_ids = []
        return twin

    def prefill(self, prompt_ids: list[int]) -> torch.Tensor:
        """Logits [vocab] after the prompt, reusing the cached common prefix."""
        reuse = self.reusable_prefix_len(prompt_ids)
        self.cached_ids = list(prompt_ids)
        for start in range(reuse, len(prompt_ids), PREFILL_CHUNK):
            logits = self.forward(prompt_ids[start:start + PREFILL_CHUNK], start)
        return logits

    def reusable_prefix_len(self, prompt_ids: list[int]) -> int:
        """Tokens of prompt_ids whose cached K/V `prefill` reuses: the prefix shared with
        `cached_ids`, leaving at least one token to compute (its logits are the first sample),
        and 0 when the sliding-window layers' ring no longer holds the window before it."""
        reuse = 0
        limit = min(len(prompt_ids) - 1, len(self.cached_ids))
        while reuse < limit and self.cached_ids[reuse] == prompt_ids[reuse]:
            reuse += 1
        return reuse if self.cache.can_resume(reuse) else 0

    def decode(self, token_id: int, position: int) -> torch.Tensor:
        """Logits [vocab] after one more token at `position`."""
        del self.cached_ids[position:]
        self.cached_ids.append(token_id)
        return self.forward([token_id], position)

    def verify(self, token_ids: list[int], position: int) -> torch.Tensor:
        """Logits [len(token_ids), vocab] after each of token_ids placed at position..: a
        token plus its speculative draft. Entries from `position` on are replaced, which rolls
        back the KV of drafts rejected in the previous step (the forward overwrites them)."""
        del self.cached_ids[position:]
        self.cached_ids.extend(token_ids)
        return self.forward(token_ids, position, all_logits=True)

    @torch.inference_mode()
    def forward(self, token_ids: list[int], start_pos: int, all_logits: bool = False
                ) -> torch.Tensor:
        """Runs tokens at positions start_pos.. through the model, filling the KV cache.
        Returns logits [vocab] for the last token, or [num_tokens, vocab] with all_logits."""
        num_tokens = len(token_ids)
        positions = torch.arange(start_pos, start_pos + num_tokens)
        hidden = self.model(torch.tensor(token_ids, dtype=torch.long), positions, self.cache)
        if all_logits:
            return self.model.compute_logits(hidden).clone()          # [num_tokens, vocab]
        # A copy: layers may return views of buffers they reuse on the next step.
        return self.model.compute_logits(hidden[-1:])[0].clone()      # [vocab]
