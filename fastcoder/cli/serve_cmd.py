"""`fastcoder serve`: an OpenAI-compatible server with continuous batching."""
from __future__ import annotations

import argparse
import os
import sys


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
    parser.add_argument("--max-num-seqs", type=int, default=16,
                        help="requests decoded together per step")
    parser.add_argument("--kv-cache-mb", type=int, default=512, help="paged KV cache size")
    parser.add_argument("--max-queue", type=int, default=256,
                        help="waiting requests beyond which new ones get 429")
    parser.add_argument("--kernels", default="quant", choices=("quant", "reference"))
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from fastcoder.cli.common import ensure_pulled
    from fastcoder.engine.async_engine import AsyncEngine
    from fastcoder.engine.linear_backends import linear_factory
    from fastcoder.engine.llm import DEFAULT_MAX_MODEL_LEN
    from fastcoder.engine.llm_engine import EngineConfig, LLMEngine
    from fastcoder.engine.threads import set_threads
    from fastcoder.loader.gguf_file import open_gguf
    from fastcoder.server.app import create_app
    from fastcoder.server.context import ServerContext
    from fastcoder.tokenizer.tokenizer import Tokenizer

    path = ensure_pulled(args.model)
    num_threads = set_threads(args.threads)
    gguf = open_gguf(path)
    max_model_len = min(args.max_model_len or DEFAULT_MAX_MODEL_LEN, gguf.config.context_length)
    tokenizer = Tokenizer.from_metadata(gguf.metadata)
    engine = LLMEngine(gguf, tokenizer, linear_factory(args.kernels, num_threads), EngineConfig(
        max_model_len=max_model_len, max_num_seqs=args.max_num_seqs,
        kv_cache_mb=args.kv_cache_mb))
    async_engine = AsyncEngine(engine, max_queue=args.max_queue)
    name = args.served_model_name or args.model
    app = create_app(ServerContext(async_engine, tokenizer, name), api_key=args.api_key)
    print(f"fastcoder serving {name} on http://{args.host}:{args.port}/v1 "
          f"(context {max_model_len}, {num_threads} threads)", file=sys.stderr)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    finally:
        async_engine.shutdown()
    return 0
