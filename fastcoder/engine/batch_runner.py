"""BatchRunner: one forward over every scheduled request's tokens on the paged KV cache."""
from __future__ import annotations

import torch

from fastcoder.engine.kv_layout import KVLayout
from fastcoder.engine.scheduler_output import SchedulerOutput
from fastcoder.layers.linear import LinearFactory
from fastcoder.layers.paged_kv import BatchLayout, PagedKVCache, SequenceSlice
from fastcoder.loader.gguf_file import GGUFModelFile
from fastcoder.model.registry import model_class_for


class BatchRunner:
    def __init__(self, gguf: GGUFModelFile, max_model_len: int, linear: LinearFactory,
                 kv_layout: KVLayout):
        self.config = c = gguf.config
        self.max_model_len = max_model_len
        with torch.inference_mode():
            self.model = model_class_for(c.architecture)(gguf, max_model_len, linear)
        self.cache = PagedKVCache(kv_layout.group_layers, kv_layout.group_num_blocks,
                                  kv_layout.block_size, c.num_kv_heads, c.head_dim)

    def layout(self, output: SchedulerOutput) -> tuple[list[int], list[int], BatchLayout]:
        num_groups = len(self.cache.group_num_blocks)
        token_ids, positions, sequences = [], [], []
        slot_parts: list[list[torch.Tensor]] = [[] for _ in range(num_groups)]
        for req in output.scheduled:
            start, num = req.start_position, len(req.token_ids_to_compute)
            tables = (req.block_table, *req.group_block_tables)
            assert len(tables) == num_groups, (len(tables), num_groups)
            key_slots = tuple(self.cache.slots(table, 0, start + num) for table in tables)
            sequences.append(SequenceSlice(len(token_ids), num, start + num, key_slots))
            for parts, slots in zip(slot_parts, key_slots):
                parts.append(slots[start:])
            token_ids.extend(req.token_ids_to_compute)
            positions.extend(range(start, start + num))
        slot_mappings = tuple(torch.cat(parts) for parts in slot_parts)
        return token_ids, positions, BatchLayout(tuple(sequences), slot_mappings)

    @torch.inference_mode()
    def execute(self, output: SchedulerOutput) -> dict[str, torch.Tensor]:
        """Runs the step; returns, for each request whose last chunk ran, the logits
        [1 + num_draft_tokens, vocab] of its last real token and of each draft token."""
        token_ids, positions, layout = self.layout(output)
        self.cache.layout = layout
        hidden = self.model(torch.tensor(token_ids, dtype=torch.long),
                            torch.tensor(positions, dtype=torch.long), self.cache)
        spans = []                                   # (request id, first row, number of rows)
        for req, seq in zip(output.scheduled, layout.sequences):
            if req.is_last_chunk:
                num_rows = 1 + req.num_draft_tokens
                spans.append((req.request_id, seq.token_start + seq.num_tokens - num_rows,
                               num_rows))
        if not spans:
            return {}
        rows = torch.cat([torch.arange(first, first + n) for _, first, n in spans])
        logits = self.model.compute_logits(hidden.index_select(0, rows)).clone()  # [rows, vocab]
        by_id, offset = {}, 0
        for request_id, _, num_rows in spans:
            by_id[request_id] = logits[offset:offset + num_rows]
            offset += num_rows
        return by_id
