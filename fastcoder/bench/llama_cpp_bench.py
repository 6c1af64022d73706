"""llama.cpp on the same GGUF, through llama-cpp-python (the optional `bench` extra), timed by
llama.cpp's own performance counters so Python overhead is not charged to it.

Build the extra with `make llama-cpp-python`: a plain source build of llama-cpp-python segfaults in
llama_decode on AMX CPUs with GCC 12 (see the Makefile). `make llama-cpp` builds llama.cpp's own
llama-bench from the same sources; with 0.3.36 it agrees with this measurement."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from fastcoder.errors import FastcoderError


class PeerUnavailableError(FastcoderError):
    code = "peer_unavailable"


@dataclass(frozen=True, slots=True)
class PeerResult:
    prefill_tok_s: float
    decode_tok_s: float
    version: str

    def to_dict(self) -> dict:
        return asdict(self)


def bench_llama_cpp(model_path: Path, prompt_ids: list[int], gen_tokens: int,
                    threads: int) -> PeerResult:
    """Prefill of `prompt_ids`, then `gen_tokens` greedy decode steps after it. Each phase is
    llama.cpp's better of flash attention on and off: on CPU, flash attention (llama.cpp's
    default) prefills faster but decodes slower than without it, so neither setting alone is
    llama.cpp at its best."""
    try:
        import llama_cpp
        import numpy as np
    except ImportError as exc:
        raise PeerUnavailableError(
            "--compare llama.cpp needs llama-cpp-python: make llama-cpp-python") from exc
    runs = [_run(llama_cpp, np, model_path, prompt_ids, gen_tokens, threads, flash_attn)
            for flash_attn in (False, True)]
    return PeerResult(prefill_tok_s=max(r[0] for r in runs), decode_tok_s=max(r[1] for r in runs),
                      version=llama_cpp.__version__)


def _run(llama_cpp, np, model_path: Path, prompt_ids: list[int], gen_tokens: int, threads: int,
         flash_attn: bool) -> tuple[float, float]:
    llm = llama_cpp.Llama(model_path=str(model_path), n_ctx=len(prompt_ids) + gen_tokens + 8,
                          n_batch=len(prompt_ids), n_ubatch=len(prompt_ids), n_threads=threads,
                          n_threads_batch=threads, flash_attn=flash_attn, verbose=False,
                          logits_all=False)
    try:
        llm.eval(prompt_ids)                                 # warm-up: pages in every weight
        llm.reset()
        # llama.cpp books a decode into its counters at the next synchronize, so settle the
        # warm-up before the reset and the last token before reading them.
        llama_cpp.llama_synchronize(llm.ctx)
        llama_cpp.llama_perf_context_reset(llm.ctx)
        llm.eval(prompt_ids)
        n_vocab = llm.n_vocab()
        for _ in range(gen_tokens):
            # Llama.scores is only filled with logits_all=True (0.3.x samples inside llama.cpp),
            # so read the last row from the context; the greedy pick is outside the timed decode.
            logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1),
                                           shape=(n_vocab,))
            llm.eval([int(logits.argmax())])
        llama_cpp.llama_synchronize(llm.ctx)
        perf = llama_cpp.llama_perf_context(llm.ctx)
        if perf.n_p_eval != len(prompt_ids) or perf.n_eval != gen_tokens:
            raise PeerUnavailableError(
                f"llama.cpp perf counters disagree with the run: {perf.n_p_eval} prompt tokens "
                f"(expected {len(prompt_ids)}), {perf.n_eval} decoded (expected {gen_tokens})")
    finally:
        llm.close()
    return 1000.0 * perf.n_p_eval / perf.t_p_eval_ms, 1000.0 * perf.n_eval / perf.t_eval_ms
