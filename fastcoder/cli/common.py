"""Flags shared by the commands that load a model and generate."""
from __future__ import annotations

import argparse
import sys
import time
from typing import Iterable

from fastcoder.outputs import StreamDelta
from fastcoder.sampling_params import SamplingParams
from fastcoder.store.cache import resolve_model_path
from fastcoder.store.catalog import DEFAULT_MODEL


def add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-m", "--model", default=DEFAULT_MODEL,
                        help=f"catalog name or path to a .gguf file (default: {DEFAULT_MODEL})")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads (default: physical cores)")
    parser.add_argument("--max-model-len", type=int, default=None,
                        help="context length in tokens (default: min(8192, the model's))")
    parser.add_argument("--speculative", default=None, metavar="ngram|draft:MODEL",
                        help="speculative decoding: 'ngram' drafts by prompt lookup, "
                             "'draft:MODEL' by a small model with the same tokenizer; greedy "
                             "output is unchanged (default: off)")


def add_sampling_args(parser: argparse.ArgumentParser, default_temperature: float) -> None:
    g = parser.add_argument_group("sampling")
    g.add_argument("--temperature", type=float, default=default_temperature,
                   help=f"0 is greedy (default: {default_temperature})")
    g.add_argument("--top-k", type=int, default=0, help="0 disables (default)")
    g.add_argument("--top-p", type=float, default=1.0, help="nucleus mass in (0, 1]")
    g.add_argument("--min-p", type=float, default=0.0, help="in [0, 1]")
    g.add_argument("--presence-penalty", type=float, default=0.0)
    g.add_argument("--frequency-penalty", type=float, default=0.0)
    g.add_argument("--repetition-penalty", type=float, default=1.0)
    g.add_argument("--seed", type=int, default=None, help="same seed, same output")
    g.add_argument("--max-tokens", type=int, default=512, help="tokens to generate at most")
    g.add_argument("--stop", action="append", default=[],
                   help="stop string (repeatable); not included in the output")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="print load time and tokens/s on stderr")


def sampling_params_from_args(args: argparse.Namespace) -> SamplingParams:
    return SamplingParams(
        temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, min_p=args.min_p,
        presence_penalty=args.presence_penalty, frequency_penalty=args.frequency_penalty,
        repetition_penalty=args.repetition_penalty, seed=args.seed,
        max_tokens=args.max_tokens, stop=tuple(args.stop))


def ensure_pulled(model: str):
    """Path of the model, pulling a catalog model first if it is not in the cache (as ollama)."""
    from fastcoder.store import ModelNotPulledError, pull
    try:
        return resolve_model_path(model)
    except ModelNotPulledError:
        return pull(model)


def load_llm(args: argparse.Namespace):
    from fastcoder.engine.llm import LLM
    from fastcoder.spec.config import SpeculativeConfig
    speculative = SpeculativeConfig.parse(args.speculative)    # a bad value fails before a pull
    if speculative is not None and speculative.method == "draft":
        speculative = SpeculativeConfig("draft", str(ensure_pulled(speculative.draft_model)))
    llm = LLM(str(ensure_pulled(args.model)), max_model_len=args.max_model_len,
              threads=args.threads, speculative=speculative)
    if args.verbose:
        s = llm.load_stats
        print(f"[loaded {llm.model_path.name} in {s.load_s:.2f} s, {s.num_threads} threads, "
              f"context {s.max_model_len}]", file=sys.stderr)
    return llm


def print_stream(deltas: Iterable[StreamDelta], verbose: bool, spec_stats=None) -> str:
    """Writes deltas to stdout as they come; returns the full text. spec_stats: a callable
    returning the speculative SpecStats, shown with -v."""
    started = time.perf_counter()
    first_at = None
    num_tokens = 0
    parts = []
    for delta in deltas:
        if delta.token_id is not None:
            num_tokens += 1
            first_at = first_at or time.perf_counter()
        parts.append(delta.text)
        sys.stdout.write(delta.text)
        sys.stdout.flush()
    if not parts or not parts[-1].endswith("\n"):
        sys.stdout.write("\n")
    if verbose and first_at is not None:
        ended = time.perf_counter()
        decode_rate = (num_tokens - 1) / (ended - first_at) if num_tokens > 1 else 0.0
        spec = ""
        if spec_stats is not None and spec_stats().num_steps:
            stats = spec_stats()
            spec = (f", draft acceptance {stats.acceptance_rate:.0%}, "
                    f"{stats.mean_accepted_length:.2f} tokens per verify")
        print(f"[{num_tokens} tokens, first token {first_at - started:.2f} s, "
              f"decode {decode_rate:.1f} tok/s{spec}]", file=sys.stderr)
    return "".join(parts)
