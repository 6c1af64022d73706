"""LLMEngine: continuous batching. Each step schedules every running request (decodes) plus
chunks of waiting prompts within a token budget, runs ONE batched forward over the paged KV
cache, samples, and turns tokens into per-request deltas (engine_api.Engine)."""
from __future__ import annotations

from dataclasses import dataclass

from fastcoder.engine.batch_runner import BatchRunner
from fastcoder.engine.engine_api import RequestDelta
from fastcoder.engine.kv_layout import plan_kv_layout
from fastcoder.engine.output_processor import OutputProcessor
from fastcoder.engine.request import RequestStatus
from fastcoder.engine.scheduler import Scheduler
from fastcoder.layers.linear import LinearFactory
from fastcoder.layers.paged_kv import PagedKVCache
from fastcoder.loader.gguf_file import GGUFModelFile
from fastcoder.model.layer_windows import layer_windows
from fastcoder.sampling_params import SamplingParams
from fastcoder.tokenizer.tokenizer import Tokenizer

FINISH_STATUS = {"stop": RequestStatus.FINISHED_STOPPED, "length": RequestStatus.FINISHED_LENGTH}


@dataclass(frozen=True, slots=True)
class EngineConfig:
    max_model_len: int
    max_num_seqs: int = 16
    max_num_batched_tokens: int = 512     # token budget per step: bounds a prefill chunk
    block_size: int = 16
    kv_cache_mb: int = 512
    enable_prefix_caching: bool = True


class LLMEngine:
    def __init__(self, gguf: GGUFModelFile, tokenizer: Tokenizer, linear: LinearFactory,
                 config: EngineConfig):
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

    # -- engine_api.Engine ---------------------------------------------------------------
    def add_request(self, request_id: str, prompt_ids: list[int], params: SamplingParams,
                    num_logprobs: int | None = None) -> None:
        self.scheduler.add_request(request_id, prompt_ids, params)
        self.outputs.add(request_id, prompt_ids, params, num_logprobs)

    def abort_request(self, request_id: str) -> None:
        self.scheduler.abort_request(request_id)
        self.outputs.abort(request_id)

    def has_unfinished_requests(self) -> bool:
        return self.scheduler.has_unfinished()

    def step(self) -> list[RequestDelta]:
        output = self.scheduler.schedule()
        logits_by_id = self.runner.execute(output) if output.scheduled else {}
        sampled = {rid: self.outputs.sample(rid, logits) for rid, logits in logits_by_id.items()}
        self.scheduler.update_from_output(sampled)
        deltas = []
        for request_id, token_id in sampled.items():
            request = self.scheduler.get_request(request_id)
            delta = self.outputs.emit(request_id, token_id, logits_by_id[request_id],
                                      request.num_prompt_tokens, request.num_cached_tokens)
            deltas.append(delta)
            if delta.finish_reason is not None:
                self.scheduler.finish_request(request_id, FINISH_STATUS[delta.finish_reason])
        return deltas

    def stats(self) -> dict[str, float]:
        prefix = self.kv.prefix_cache_stats
        return {"num_running": self.scheduler.num_running,
                "num_waiting": self.scheduler.num_waiting,
                "kv_blocks_used": self.kv.num_used_blocks,
                "kv_blocks_total": self.kv.num_total_blocks,
                "prefix_cache_queries": prefix.queries, "prefix_cache_hits": prefix.hits}
