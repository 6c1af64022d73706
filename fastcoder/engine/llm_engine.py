"""LLMEngine: continuous batching. Each step schedules every running request (decodes) plus
chunks of waiting prompts within a token budget, runs ONE batched forward over the paged KV
cache, samples, and turns tokens into per-request deltas (engine_api.Engine)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from fastcoder.engine.batch_runner import BatchRunner
from fastcoder.engine.engine_api import RequestDelta
from fastcoder.engine.kv_layout import plan_kv_layout
from fastcoder.engine.output_processor import OutputProcessor, merge_deltas
from fastcoder.engine.request import RequestStatus
from fastcoder.engine.scheduler import Scheduler
from fastcoder.engine.scheduler_output import ScheduledRequest
from fastcoder.engine.speculative import RequestProposers
from fastcoder.kv.kv_cache_manager import DEFAULT_BLOCK_SIZE
from fastcoder.layers.linear import LinearFactory
from fastcoder.layers.paged_kv import PagedKVCache
from fastcoder.loader.gguf_file import GGUFModelFile
from fastcoder.model.layer_windows import layer_windows
from fastcoder.sampling_params import SamplingParams
from fastcoder.spec.config import SpeculativeConfig
from fastcoder.spec.proposer import SpecCounters
from fastcoder.tokenizer.tokenizer import Tokenizer

FINISH_STATUS = {"stop": RequestStatus.FINISHED_STOPPED, "length": RequestStatus.FINISHED_LENGTH}


@dataclass(frozen=True, slots=True)
class EngineConfig:
    max_model_len: int
    max_num_seqs: int = 16
    max_num_batched_tokens: int = 512     # token budget per step: bounds a prefill chunk
    block_size: int = DEFAULT_BLOCK_SIZE
    kv_cache_mb: int = 512
    enable_prefix_caching: bool = True


class LLMEngine:
    def __init__(self, gguf: GGUFModelFile, tokenizer: Tokenizer, linear: LinearFactory,
                 config: EngineConfig, speculative: SpeculativeConfig | None = None):
        c = gguf.config
        self.config = config
        self.tokenizer = tokenizer
        self.max_model_len = config.max_model_len
        max_num_batched_tokens = max(config.max_num_batched_tokens, config.max_num_seqs)
        self.kv_layout = plan_kv_layout(
            layer_windows(c), PagedKVCache.bytes_per_block(1, 1, c.num_kv_heads, c.head_dim),
            config.kv_cache_mb * 2**20, config.block_size, config.max_model_len,
            config.max_num_seqs, max_num_batched_tokens)
        self.runner = BatchRunner(gguf, config.max_model_len, linear, self.kv_layout)
        self.kv = self.kv_layout.make_manager(config.enable_prefix_caching)
        self.scheduler = Scheduler(self.kv, config.max_num_seqs, max_num_batched_tokens,
                                   config.max_model_len)
        self.outputs = OutputProcessor(tokenizer, config.max_model_len)
        self.proposers = (RequestProposers(speculative, gguf, config.max_model_len, linear)
                          if speculative is not None else None)
        self.spec_counters = SpecCounters()

    # -- engine_api.Engine ---------------------------------------------------------------
    def add_request(self, request_id: str, prompt_ids: list[int], params: SamplingParams,
                    num_logprobs: int | None = None) -> None:
        self.scheduler.add_request(request_id, prompt_ids, params)
        self.outputs.add(request_id, prompt_ids, params, num_logprobs)

    def abort_request(self, request_id: str) -> None:
        self.scheduler.abort_request(request_id)
        self.outputs.abort(request_id)
        if self.proposers is not None:
            self.proposers.drop(request_id)

    def has_unfinished_requests(self) -> bool:
        return self.scheduler.has_unfinished()

    def step(self) -> list[RequestDelta]:
        output = self.scheduler.schedule()
        logits_by_id = self.runner.execute(output) if output.scheduled else {}
        emitted: dict[str, list[int]] = {}
        deltas = []
        for item in output.scheduled:
            if item.request_id in logits_by_id:
                emitted[item.request_id], delta = self._verify(item, logits_by_id[item.request_id])
                deltas.append(delta)
        self.scheduler.update_from_output(emitted)
        for delta in deltas:
            if delta.finish_reason is not None:
                self.scheduler.finish_request(delta.request_id, FINISH_STATUS[delta.finish_reason])
                if self.proposers is not None:
                    self.proposers.drop(delta.request_id)
        if self.proposers is not None:
            self._propose()
        return deltas

    def _verify(self, item: ScheduledRequest, rows: torch.Tensor) -> tuple[list[int], RequestDelta]:
        """rows: [1 + num_draft_tokens, vocab]. Row i checks draft token i; the first row that
        does not confirm its draft (or the row after the whole draft) emits its own token.
        Each token goes through the output processor on its own, so stops act mid-draft."""
        request = self.scheduler.get_request(item.request_id)
        num_draft = item.num_draft_tokens
        drafts = item.token_ids_to_compute[len(item.token_ids_to_compute) - num_draft:]
        token_ids, parts = [], []
        for i in range(rows.shape[0]):
            if i < num_draft:
                token_id, accepted = self.outputs.verify(item.request_id, rows[i], drafts[i])
            else:
                token_id, accepted = self.outputs.sample(item.request_id, rows[i]), False
            token_ids.append(token_id)
            parts.append(self.outputs.emit(item.request_id, token_id, rows[i],
                                           request.num_prompt_tokens, request.num_cached_tokens))
            if parts[-1].finish_reason is not None or not accepted:
                break
        if num_draft:
            num_accepted = len(token_ids) - 1 if not accepted else len(token_ids)
            num_checked = num_draft if parts[-1].finish_reason is None else len(token_ids)
            self.spec_counters.record(num_checked, num_accepted)
            self.proposers.get(item.request_id).observe(num_draft, num_accepted)
        return token_ids, merge_deltas(parts)

    def _propose(self) -> None:
        """Drafts for every running request that is decoding (its prompt fully computed)."""
        for request in self.scheduler.running:
            if request.num_computed_tokens != request.num_tokens - 1 \
                    or request.request_id not in self.outputs:
                continue
            # The next step computes the last token and the draft at positions up to
            # num_tokens + k - 1, and emits at most k + 1 tokens.
            budget = min(self.outputs.num_remaining(request.request_id) - 1,
                         self.max_model_len - 1 - request.num_tokens)
            if budget > 0:
                draft = self.proposers.get(request.request_id).propose(request.all_token_ids,
                                                                      budget)
                request.spec_token_ids = list(draft.token_ids)

    def stats(self) -> dict[str, float]:
        prefix = self.kv.prefix_cache_stats
        return {"num_running": self.scheduler.num_running,
                "num_waiting": self.scheduler.num_waiting,
                "kv_blocks_used": self.kv.num_used_blocks,
                "kv_blocks_total": self.kv.num_total_blocks,
                "prefix_cache_queries": prefix.queries, "prefix_cache_hits": prefix.hits,
                **self.spec_counters.snapshot().to_dict()}
