"""`fastcoder bench window`: decode tokens/s after contexts of different lengths on one loaded
model (for sliding-window models: local layers attend over the window whatever the context, only
the global layers' cost grows), and the single-sequence KV cache's bytes with and without the
window bound."""
from __future__ import annotations

import time

from fastcoder.bench.model_bench import bench_prompt


def bench_window(model: str, contexts: list[int], gen_tokens: int,
                 threads: int | None) -> dict:
    from fastcoder.engine.llm import LLM
    max_len = max(contexts) + gen_tokens + 8
    llm = LLM(model, max_model_len=max_len, threads=threads)
    runner, c = llm.runner, llm.config
    prompt = bench_prompt(c.vocab_size, max(contexts))
    runner.prefill(prompt[:8])                               # warm-up (kernels, allocator)
    rows = []
    for num_context in contexts:
        runner.cached_ids = []
        started = time.perf_counter()
        token_id = int(runner.prefill(prompt[:num_context]).argmax())
        prefill_s = time.perf_counter() - started
        started = time.perf_counter()
        for position in range(num_context, num_context + gen_tokens):
            token_id = int(runner.decode(token_id, position).argmax())
        decode_s = time.perf_counter() - started
        rows.append({"context_tokens": num_context,
                     "prefill_tok_s": round(num_context / prefill_s, 1),
                     "decode_tok_s": round(gen_tokens / decode_s, 2)})
    # Without the bound every layer keeps max_len tokens of fp32 K and V.
    unbounded_bytes = 2 * c.num_layers * max_len * c.num_kv_heads * c.head_dim * 4
    report = {"model": llm.model_path.name, "threads": llm.load_stats.num_threads,
              "gen_tokens": gen_tokens, "max_model_len": max_len,
              "sliding_window": runner.cache.window, "contexts": rows,
              "kv_cache_mb": round(runner.cache.nbytes / 2**20, 1),
              "kv_cache_mb_unbounded": round(unbounded_bytes / 2**20, 1)}
    if len(rows) > 1:
        report["decode_ratio_longest_to_shortest"] = round(
            rows[-1]["decode_tok_s"] / rows[0]["decode_tok_s"], 3)
    return report
