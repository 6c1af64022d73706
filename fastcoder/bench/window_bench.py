"""`fastcoder bench window`: decode tokens/s after contexts of different lengths on one loaded
model (for sliding-window models local layers attend over the window whatever the context; only
the global layers' cost grows), and the single-sequence KV cache's bytes with and without the
window bound."""
from __future__ import annotations

import time

from fastcoder.bench.model_bench import bench_prompt


def bench_window(model: str, contexts: list[int], gen_tokens: int, threads: int | None,
                 rounds: int = 5) -> dict:
    """Each context is prefilled into a KV cache of its own; then `rounds` times, for every
    context in turn, `gen_tokens` tokens are decoded from the same position (rolling back in
    between, which the ring's slack allows). Interleaving the contexts and keeping each one's
    fastest round keeps load from other processes out of the ratio."""
    from fastcoder.engine.llm import LLM
    from fastcoder.layers.kv_cache import KV_DTYPE, RING_SLACK, KVCache
    from fastcoder.model.layer_windows import layer_windows
    if gen_tokens > RING_SLACK:
        raise ValueError(f"gen_tokens must be <= {RING_SLACK} (rounds roll back that far)")
    max_len = max(contexts) + gen_tokens + 8
    llm = LLM(model, max_model_len=max_len, threads=threads)
    runner, c = llm.runner, llm.config
    prompt = bench_prompt(c.vocab_size, max(contexts))
    runner.prefill(prompt[:8])                               # warm-up (kernels, allocator)
    states, rows = [], []
    for num_context in contexts:
        runner.cache = KVCache(c.num_layers, max_len, c.num_kv_heads, c.head_dim,
                               layer_windows(c))
        runner.cached_ids = []
        started = time.perf_counter()
        first_token = int(runner.prefill(prompt[:num_context]).argmax())
        rows.append({"context_tokens": num_context,
                     "prefill_tok_s": round(num_context / (time.perf_counter() - started), 1)})
        states.append((runner.cache, first_token, []))
    for _ in range(rounds):
        for num_context, (cache, first_token, round_s) in zip(contexts, states):
            runner.cache, token_id = cache, first_token
            started = time.perf_counter()
            for position in range(num_context, num_context + gen_tokens):
                token_id = int(runner.decode(token_id, position).argmax())
            round_s.append(time.perf_counter() - started)
    for row, (cache, _, round_s) in zip(rows, states):
        row["decode_tok_s"] = round(gen_tokens / min(round_s), 2)
        row["decode_tok_s_median"] = round(gen_tokens / sorted(round_s)[rounds // 2], 2)
    # Without the bound every layer keeps max_len tokens of K and V.
    unbounded_bytes = 2 * c.num_layers * max_len * c.num_kv_heads * c.head_dim * KV_DTYPE.itemsize
    report = {"model": llm.model_path.name, "threads": llm.load_stats.num_threads,
              "gen_tokens": gen_tokens, "rounds": rounds, "max_model_len": max_len,
              "sliding_window": runner.cache.window, "contexts": rows,
              "kv_cache_mb": round(runner.cache.nbytes / 2**20, 1),
              "kv_cache_mb_unbounded": round(unbounded_bytes / 2**20, 1)}
    if len(rows) > 1:
        report["decode_ratio_longest_to_shortest"] = round(
            rows[-1]["decode_tok_s"] / rows[0]["decode_tok_s"], 3)
    return report
