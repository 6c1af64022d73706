"""`fastcoder serve`: an OpenAI-compatible HTTP server (chat, completions, FIM, metrics)."""
from __future__ import annotations

import argparse
import os
import sys

DEFAULT_ENGINE = "batched"          # the engine `serve` runs unless --engine says otherwise
GRACEFUL_SHUTDOWN_S = 10            # open requests may finish this long after Ctrl-C / SIGTERM


def _batched_engine(args: argparse.Namespace, gguf, tokenizer, linear, max_model_len):
    from fastcoder.engine.llm_engine import EngineConfig, LLMEngine
    return LLMEngine(gguf, tokenizer, linear, EngineConfig(
        max_model_len=max_model_len, max_num_seqs=args.max_num_seqs,
        kv_cache_mb=args.kv_cache_mb, block_size=args.block_size), speculative_config(args))


def speculative_config(args: argparse.Namespace):
    """--speculative, with a catalog draft model pulled first."""
    from fastcoder.cli.common import ensure_pulled
    from fastcoder.spec.config import SpeculativeConfig
    config = SpeculativeConfig.parse(args.speculative)
    if config is not None and config.method == "draft":
        config = SpeculativeConfig("draft", str(ensure_pulled(config.draft_model)))
    return config


def _serial_engine(args: argparse.Namespace, gguf, tokenizer, linear, max_model_len):
    from fastcoder.engine.runner import ModelRunner
    from fastcoder.engine.serial_engine import SerialEngine
    return SerialEngine(ModelRunner(gguf, max_model_len, linear), tokenizer)


# name -> builder(args, gguf, tokenizer, linear factory, max_model_len) -> engine_api.Engine
ENGINES = {"batched": _batched_engine, "serial": _serial_engine}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve", help="OpenAI-compatible HTTP server (chat, completions, FIM)",
        description="Serves /v1/chat/completions, /v1/completions (suffix = fill-in-the-middle), "
                    "/v1/models, /health and /metrics, batching concurrent requests.")
    from fastcoder.cli.common import add_model_args
    add_model_args(parser)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--api-key", default=os.environ.get("FASTCODER_API_KEY"),
                        help="require 'Authorization: Bearer KEY' (default: $FASTCODER_API_KEY)")
    parser.add_argument("--served-model-name", default=None,
                        help="name clients use in 'model' (default: the -m value)")
    parser.add_argument("--engine", default=DEFAULT_ENGINE, choices=sorted(ENGINES),
                        help="batched: continuous batching on a paged KV cache; serial: one "
                             f"request at a time (default: {DEFAULT_ENGINE})")
    parser.add_argument("--max-num-seqs", type=int, default=16,
                        help="requests decoded together per step (batched engine)")
    parser.add_argument("--kv-cache-mb", type=int, default=512,
                        help="paged KV cache size in MiB (batched engine)")
    from fastcoder.kv.kv_cache_manager import DEFAULT_BLOCK_SIZE
    parser.add_argument("--block-size", type=int, default=DEFAULT_BLOCK_SIZE,
                        help="tokens per KV cache block, the prefix cache's unit: a resent "
                             "conversation recomputes at most block-size - 1 cached tokens "
                             f"(batched engine; default {DEFAULT_BLOCK_SIZE})")
    parser.add_argument("--max-queue", type=int, default=256,
                        help="waiting requests beyond which new ones get 429")
    parser.add_argument("--kernels", default="quant", choices=("quant", "reference"))
    parser.set_defaults(func=run)


def check_args(args: argparse.Namespace) -> None:
    from fastcoder.errors import InvalidParameterError
    for name in ("max_num_seqs", "kv_cache_mb", "max_queue", "block_size"):
        if getattr(args, name) < 1:
            flag = "--" + name.replace("_", "-")
            raise InvalidParameterError(f"{flag} must be >= 1", param=name)
    if args.max_model_len is not None and args.max_model_len < 2:
        raise InvalidParameterError("--max-model-len must be >= 2", param="max_model_len")
    if not 0 <= args.port <= 65535:
        raise InvalidParameterError("--port must be in [0, 65535]", param="port")
    from fastcoder.spec.config import SpeculativeConfig
    if SpeculativeConfig.parse(args.speculative) is not None and args.engine != "batched":
        raise InvalidParameterError("--speculative needs --engine batched", param="speculative")


def run(args: argparse.Namespace) -> int:
    check_args(args)
    import uvicorn

    from fastcoder.cli.common import ensure_pulled
    from fastcoder.engine.async_engine import AsyncEngine
    from fastcoder.engine.linear_backends import linear_factory
    from fastcoder.engine.llm import DEFAULT_MAX_MODEL_LEN
    from fastcoder.engine.threads import set_threads
    from fastcoder.loader.gguf_file import open_gguf
    from fastcoder.server.app import create_app
    from fastcoder.tokenizer.tokenizer import Tokenizer

    path = ensure_pulled(args.model)
    num_threads = set_threads(args.threads)
    gguf = open_gguf(path)
    max_model_len = min(args.max_model_len or DEFAULT_MAX_MODEL_LEN, gguf.config.context_length)
    tokenizer = Tokenizer.from_metadata(gguf.metadata)
    engine = ENGINES[args.engine](args, gguf, tokenizer, linear_factory(args.kernels, num_threads),
                                  max_model_len)
    async_engine = AsyncEngine(engine, max_queue=args.max_queue)
    name = args.served_model_name or args.model
    app = create_app(async_engine, tokenizer, name, api_key=args.api_key)
    print(f"fastcoder serving {name} on http://{args.host}:{args.port}/v1 "
          f"({args.engine} engine, context {max_model_len}, {num_threads} threads"
          f"{', API key required' if args.api_key else ''})", file=sys.stderr)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning",
                    timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S)
    finally:
        async_engine.shutdown()
    return 0
