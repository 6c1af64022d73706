"""BatchRunner: one forward over every scheduled request's tokens on the paged KV cache."""
from __future__ import annotations

import torch

from fastcoder.engine.scheduler_output import SchedulerOutput
from fastcoder.layers.linear import LinearFactory
from fastcoder.layers.paged_kv import BatchLayout, PagedKVCache, SequenceSlice
from fastcoder.loader.gguf_file import GGUFModelFile
from fastcoder.model.registry import model_class_for


class BatchRunner:
    def __init__(self, gguf: GGUFModelFile, max_model_len: int, linear: LinearFactory,
                 num_blocks: int, block_size: int):
        self.config = c = gguf.config
        self.max_model_len = max_model_len
        with torch.inference_mode():
            self.model = model_class_for(c.architecture)(gguf, max_model_len, linear)
        self.cache = PagedKVCache(c.num_layers, num_blocks, block_size, c.num_kv_heads,
                                  c.head_dim)

    def layout(self, output: SchedulerOutput) -> tuple[list[int], list[int], BatchLayout]:
        token_ids, positions, slot_parts, sequences = [], [], [], []
        for req in output.scheduled:
            start, num = req.start_position, len(req.token_ids_to_compute)
            key_slots = self.cache.slots(list(req.block_table), 0, start + num)
            sequences.append(SequenceSlice(len(token_ids), num, start + num, key_slots))
            slot_parts.append(key_slots[start:])
            token_ids.extend(req.token_ids_to_compute)
            positions.extend(range(start, start + num))
        return token_ids, positions, BatchLayout(tuple(sequences), torch.cat(slot_parts))

    @torch.inference_mode()
    def execute(self, output: SchedulerOutput) -> dict[str, torch.Tensor]:
        """Runs the step; returns next-token logits [vocab] of each request whose last chunk ran."""
        token_ids, positions, layout = self.layout(output)
        self.cache.layout = layout
        hidden = self.model(torch.tensor(token_ids, dtype=torch.long),
                            torch.tensor(positions, dtype=torch.long), self.cache)
        sampled = [(req.request_id, seq.token_start + seq.num_tokens - 1)
                   for req, seq in zip(output.scheduled, layout.sequences) if req.is_last_chunk]
        if not sampled:
            return {}
        rows = torch.tensor([row for _, row in sampled])
        logits = self.model.compute_logits(hidden.index_select(0, rows)).clone()  # [n, vocab]
        return {request_id: logits[i] for i, (request_id, _) in enumerate(sampled)}
