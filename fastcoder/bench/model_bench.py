"""`fastcoder bench`: prefill and decode tokens/s of one model, in the same run as the machine's
read bandwidth and (optionally) llama.cpp on the same GGUF and thread count."""
from __future__ import annotations

import resource
import time
from dataclasses import asdict, dataclass

import numpy as np

from fastcoder.loader.gguf_file import GGUFModelFile


@dataclass(frozen=True, slots=True)
class ModelBenchResult:
    model: str
    threads: int
    prompt_tokens: int
    gen_tokens: int
    load_s: float
    prefill_tok_s: float
    decode_tok_s: float
    peak_rss_mb: float
    weight_bytes_per_token: int
    vocab_size: int

    def to_dict(self) -> dict:
        return asdict(self)


def decode_weight_bytes(gguf: GGUFModelFile) -> int:
    """Bytes of weights one decode step reads: every tensor but the embedding table, of which
    only one row is read."""
    total = 0
    for name, tensor in gguf.tensors.items():
        if name == "token_embd.weight":
            total += tensor.nbytes // tensor.shape[0]
            if "output.weight" not in gguf.tensors:      # tied head reads the whole table
                total += tensor.nbytes
        else:
            total += tensor.nbytes
    return total


def bench_prompt(vocab_size: int, num_tokens: int, seed: int = 0) -> list[int]:
    """Random token ids, as llama-bench uses; the same ids for every engine in one run."""
    rng = np.random.default_rng(seed)
    return rng.integers(100, min(vocab_size, 100_000), size=num_tokens).tolist()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_fastcoder(model: str, prompt_tokens: int, gen_tokens: int,
                    threads: int | None) -> ModelBenchResult:
    from fastcoder.engine.llm import LLM
    started = time.perf_counter()
    llm = LLM(model, max_model_len=prompt_tokens + gen_tokens + 8, threads=threads)
    load_s = time.perf_counter() - started
    runner = llm.runner
    prompt = bench_prompt(llm.config.vocab_size, prompt_tokens)
    runner.prefill(prompt[:8])                              # warm-up (kernels, allocator)
    runner.cached_ids = []
    started = time.perf_counter()
    logits = runner.prefill(prompt)
    prefill_s = time.perf_counter() - started
    token_id = int(logits.argmax())
    started = time.perf_counter()
    for position in range(prompt_tokens, prompt_tokens + gen_tokens):
        token_id = int(runner.decode(token_id, position).argmax())
    decode_s = time.perf_counter() - started
    weight_bytes = decode_weight_bytes(llm.gguf)
    return ModelBenchResult(
        model=llm.model_path.name, threads=llm.load_stats.num_threads,
        prompt_tokens=prompt_tokens, gen_tokens=gen_tokens, load_s=load_s,
        prefill_tok_s=prompt_tokens / prefill_s, decode_tok_s=gen_tokens / decode_s,
        peak_rss_mb=peak_rss_mb(), weight_bytes_per_token=weight_bytes,
        vocab_size=llm.config.vocab_size)
