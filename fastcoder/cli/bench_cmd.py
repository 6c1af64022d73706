"""`fastcoder bench [model|kernels]`: speed, measured side by side with the machine's bandwidth
and, with --compare llama.cpp, llama.cpp on the same GGUF and threads, in one run."""
from __future__ import annotations

import argparse
import json
import sys

from fastcoder.store.catalog import DEFAULT_MODEL

SUITES = ("model", "kernels", "serve", "window", "spec", "moe")
PEERS = ("llama.cpp",)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "bench", help="measure prefill/decode speed (optionally against llama.cpp)",
        description="model: prefill and decode tokens/s, load time, peak RSS, read bandwidth and "
                    "decode as a fraction of the bandwidth bound. kernels: GEMV GB/s per quant "
                    "type against the measured bandwidth. window: decode tokens/s after each of "
                    "--contexts tokens of context, and the KV cache size with and without the "
                    "sliding-window bound.")
    parser.add_argument("suite", nargs="?", default="model", choices=SUITES)
    parser.add_argument("-m", "--model", default=DEFAULT_MODEL,
                        help=f"catalog name or .gguf path (default: {DEFAULT_MODEL})")
    parser.add_argument("--prompt-tokens", type=int, default=512)
    parser.add_argument("--gen-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for every engine (default: physical cores)")
    parser.add_argument("--compare", choices=PEERS, default=None,
                        help="also measure this peer on the same GGUF and threads")
    parser.add_argument("--concurrency", default="1,4,16",
                        help="serve: comma-separated numbers of concurrent streams")
    parser.add_argument("--port", type=int, default=8011, help="serve: port of the servers")
    parser.add_argument("--prefix-tokens", type=int, default=0,
                        help="serve: also time the first token of a request whose prefix of "
                             "about this many tokens was just sent (prefix cache)")
    parser.add_argument("--contexts", default="512,8192",
                        help="window: comma-separated context lengths (tokens) to decode after")
    parser.add_argument("--speculative", action="append", default=None,
                        metavar="ngram|draft:MODEL",
                        help="spec: method to compare with plain decoding (repeatable; "
                             "default: ngram)")
    parser.add_argument("--files", type=int, default=20,
                        help="spec: stdlib files in the code-edit workload")
    parser.add_argument("--max-lines", type=int, default=60,
                        help="spec: lines of each file the model must return edited")
    parser.add_argument("--moe-layers", type=int, default=4,
                        help="moe: distinct MoE layers cycled through (~340 MB each at Q4_K)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fastcoder.engine.threads import physical_cores
    threads = args.threads or physical_cores()
    report = SUITE_RUNNERS[args.suite](args, threads)
    if args.json:
        print(json.dumps(report, indent=None, sort_keys=False))
    else:
        print_table(report)
    return 0


def run_model_suite(args: argparse.Namespace, threads: int) -> dict:
    from fastcoder.bench.bandwidth import measure_read_bandwidth
    from fastcoder.bench.model_bench import bench_fastcoder, bench_prompt
    from fastcoder.cli.common import ensure_pulled
    model_path = ensure_pulled(args.model)
    ours = bench_fastcoder(str(model_path), args.prompt_tokens, args.gen_tokens, threads)
    bandwidth = measure_read_bandwidth(threads)
    bound_tok_s = bandwidth * 1e9 / ours.weight_bytes_per_token
    report = {
        "model": ours.model, "threads": threads,
        "prompt_tokens": args.prompt_tokens, "gen_tokens": args.gen_tokens,
        "prefill_tok_s": round(ours.prefill_tok_s, 2), "decode_tok_s": round(ours.decode_tok_s, 2),
        "load_s": round(ours.load_s, 3), "peak_rss_mb": round(ours.peak_rss_mb, 1),
        "weight_mb_per_token": round(ours.weight_bytes_per_token / 1e6, 1),
        "bandwidth_gb_s": round(bandwidth, 2),
        "decode_bound_tok_s": round(bound_tok_s, 2),
        "decode_bandwidth_fraction": round(ours.decode_tok_s / bound_tok_s, 3),
    }
    if args.compare == "llama.cpp":
        from fastcoder.bench.llama_cpp_bench import bench_llama_cpp
        peer = bench_llama_cpp(model_path, bench_prompt(ours.vocab_size, args.prompt_tokens),
                               args.gen_tokens, threads)
        report["llama_cpp"] = {k: round(v, 2) if isinstance(v, float) else v
                               for k, v in peer.to_dict().items()}
        report["llama_cpp"]["decode_bandwidth_fraction"] = round(peer.decode_tok_s / bound_tok_s, 3)
        report["prefill_ratio"] = round(ours.prefill_tok_s / peer.prefill_tok_s, 3)
        report["decode_ratio"] = round(ours.decode_tok_s / peer.decode_tok_s, 3)
    return report


def run_kernel_suite(args: argparse.Namespace, threads: int) -> dict:
    from fastcoder.bench.bandwidth import measure_read_bandwidth
    from fastcoder.bench.kernels import run_kernel_bench
    bandwidth = measure_read_bandwidth(threads)
    return {"threads": threads, "bandwidth_gb_s": round(bandwidth, 2),
            "kernels": run_kernel_bench(threads)}


def run_serve_suite(args: argparse.Namespace, threads: int) -> dict:
    from fastcoder.bench.serve_bench import (fastcoder_command, llama_server_command,
                                             run_server_bench)
    from fastcoder.cli.common import ensure_pulled
    model_path = ensure_pulled(args.model)
    levels = [int(c) for c in args.concurrency.split(",")]
    ctx = max(args.prompt_tokens, args.prefix_tokens) + args.gen_tokens + 64
    report = {"model": model_path.name, "threads": threads, "gen_tokens": args.gen_tokens,
              "fastcoder": run_server_bench(fastcoder_command(model_path, args.port, threads, ctx),
                                            args.port, levels, args.gen_tokens,
                                            args.prefix_tokens)}
    if args.compare == "llama.cpp":
        report["llama_server"] = run_server_bench(
            llama_server_command(model_path, args.port, threads, ctx), args.port, levels,
            args.gen_tokens, args.prefix_tokens)
        report["output_tok_s_ratio"] = {
            str(ours["concurrency"]): round(ours["output_tok_s"] / peer["output_tok_s"], 3)
            for ours, peer in zip(report["fastcoder"], report["llama_server"])
            if "output_tok_s" in ours}
    return report


def run_window_suite(args: argparse.Namespace, threads: int) -> dict:
    from fastcoder.bench.window_bench import bench_window
    from fastcoder.cli.common import ensure_pulled
    model_path = ensure_pulled(args.model)
    contexts = [int(c) for c in args.contexts.split(",")]
    from fastcoder.layers.kv_cache import RING_SLACK
    # Each round decodes from the same position again: at most the ring's rollback slack.
    return bench_window(str(model_path), contexts, min(args.gen_tokens, RING_SLACK), threads)


def run_spec_suite(args: argparse.Namespace, threads: int) -> dict:
    from fastcoder.bench.spec_bench import bench_spec, format_row
    from fastcoder.cli.common import ensure_pulled
    from fastcoder.spec.config import SpeculativeConfig
    methods = args.speculative or ["ngram"]
    for method in methods:                              # fail on a bad value before loading
        config = SpeculativeConfig.parse(method)
        if config is not None and config.method == "draft":
            ensure_pulled(config.draft_model)
    progress = None if args.json else (lambda row: print(format_row(row), flush=True))
    return bench_spec(str(ensure_pulled(args.model)), methods, args.files, args.max_lines,
                      threads, progress)


def run_moe_suite(args: argparse.Namespace, threads: int) -> dict:
    from fastcoder.bench.moe_bench import run_moe_bench
    return run_moe_bench(threads, moe_layers=args.moe_layers)


SUITE_RUNNERS = {"moe": run_moe_suite,
                 "model": run_model_suite, "kernels": run_kernel_suite, "serve": run_serve_suite,
                 "window": run_window_suite, "spec": run_spec_suite}


def print_table(report: dict) -> None:
    if report.get("suite") == "moe":
        from fastcoder.bench.moe_bench import format_moe
        print(format_moe(report))
        return
    if "rows" in report:                                 # spec: per-file rows printed already
        report = {k: v for k, v in report.items() if k != "rows"}
        print(json.dumps(report, indent=2))
        return
    if "fastcoder" in report or "contexts" in report:    # serve, window: nested rows
        print(json.dumps(report, indent=2))
        return
    rows = report.pop("kernels", None)
    peer = report.pop("llama_cpp", None)
    width = max(len(k) for k in report)
    for key, value in report.items():
        print(f"{key:<{width}}  {value}")
    if peer:
        print("llama.cpp (same GGUF, same threads):")
        for key, value in peer.items():
            print(f"  {key:<{width - 2}}  {value}")
    if rows:
        from fastcoder.bench.kernels import format_results
        print(format_results(rows))
    sys.stdout.flush()
