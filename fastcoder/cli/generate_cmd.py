"""`fastcoder generate`: raw completion of a prompt, no chat template."""
from __future__ import annotations

import argparse
import sys

from fastcoder.cli.common import (add_model_args, add_sampling_args, load_llm, print_stream,
                                  sampling_params_from_args)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "generate", help="stream a raw completion (no chat template)",
        description="Continue PROMPT with the model, streaming tokens to stdout. "
                    "With PROMPT '-' or omitted, the prompt is read from stdin.")
    parser.add_argument("prompt", nargs="?", default="-", help="text to continue ('-': stdin)")
    add_model_args(parser)
    add_sampling_args(parser, default_temperature=0.0)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    params = sampling_params_from_args(args)       # validate flags before loading the model
    prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
    llm = load_llm(args)
    sys.stdout.write(prompt if args.verbose else "")
    print_stream(llm.stream(prompt, params), args.verbose, lambda: llm.spec_stats)
    return 0
