"""llama.cpp on the same GGUF, through llama-cpp-python (the optional `bench` extra), timed by
llama.cpp's own performance counters so Python overhead is not charged to it."""
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
    try:
        import llama_cpp
    except ImportError as exc:
        raise PeerUnavailableError(
            "--compare llama.cpp needs llama-cpp-python: pip install -e '.[bench]'") from exc
    llm = llama_cpp.Llama(model_path=str(model_path), n_ctx=len(prompt_ids) + gen_tokens + 8,
                          n_batch=len(prompt_ids), n_ubatch=len(prompt_ids), n_threads=threads,
                          n_threads_batch=threads, verbose=False, logits_all=False)
    llm.eval(prompt_ids[:8])                                 # warm-up
    llm.reset()
    llama_cpp.llama_perf_context_reset(llm.ctx)
    llm.eval(prompt_ids)
    token_id = prompt_ids[-1]
    for _ in range(gen_tokens):
        token_id = int(llm.scores[llm.n_tokens - 1].argmax())
        llm.eval([token_id])
    perf = llama_cpp.llama_perf_context(llm.ctx)
    return PeerResult(prefill_tok_s=1000.0 * perf.n_p_eval / perf.t_p_eval_ms,
                      decode_tok_s=1000.0 * perf.n_eval / perf.t_eval_ms,
                      version=llama_cpp.__version__)
