"""`fastcoder run`: chat with a model, like `ollama run`."""
from __future__ import annotations

import argparse
import sys

from fastcoder.cli.common import (add_model_args, add_sampling_args, load_llm, print_stream,
                                  sampling_params_from_args)

EXIT_WORDS = {"/bye", "/exit", "/quit"}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "run", help="chat with a model (interactive without a prompt)",
        description="Send PROMPT as a chat message and stream the reply. Without PROMPT: an "
                    "interactive chat on a terminal (/bye to leave, /clear to forget), or the "
                    "prompt read from piped stdin.")
    parser.add_argument("prompt", nargs="?", default=None, help="message to send")
    parser.add_argument("--system", default=None, help="system message")
    add_model_args(parser)
    add_sampling_args(parser, default_temperature=0.7)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    params = sampling_params_from_args(args)
    system = [{"role": "system", "content": args.system}] if args.system else []
    if args.prompt is None and not sys.stdin.isatty():
        args.prompt = sys.stdin.read()
    llm = load_llm(args)
    if args.prompt is not None:
        messages = system + [{"role": "user", "content": args.prompt}]
        print_stream(llm.chat_stream(messages, params), args.verbose,
                     lambda: llm.spec_stats)
        return 0
    return interactive(llm, system, params, args.verbose)


def interactive(llm, system: list[dict], params, verbose: bool) -> int:
    print(f"fastcoder chat with {llm.model_path.name}: /bye to leave, /clear to forget",
          file=sys.stderr)
    history = list(system)
    while True:
        try:
            line = input(">>> ")
        except EOFError:
            print(file=sys.stderr)
            return 0
        if line.strip() in EXIT_WORDS:
            return 0
        if line.strip() == "/clear":
            history = list(system)
            continue
        if not line.strip():
            continue
        history.append({"role": "user", "content": line})
        try:
            reply = print_stream(llm.chat_stream(history, params), verbose,
                                 lambda: llm.spec_stats)
        except KeyboardInterrupt:       # stop this reply, keep the chat
            print(file=sys.stderr)
            history.pop()
            continue
        history.append({"role": "assistant", "content": reply})
