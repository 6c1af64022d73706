"""`fastcoder` console entry point: a registry of subcommands, typed errors -> one line, exit 2."""
from __future__ import annotations

import argparse
import importlib
import sys

from fastcoder.errors import FastcoderError

# subcommand name -> module exposing `register(subparsers)`; each sets `func(args) -> int`.
SUBCOMMAND_MODULES = {
    "pull": "fastcoder.cli.pull_cmd",
    "list": "fastcoder.cli.list_cmd",
    "run": "fastcoder.cli.run_cmd",
    "generate": "fastcoder.cli.generate_cmd",
    "bench": "fastcoder.cli.bench_cmd",
    "serve": "fastcoder.cli.serve_cmd",
    "eval": "fastcoder.cli.eval_cmd",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastcoder",
        description="Fast local engine for code models from GGUF files.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in SUBCOMMAND_MODULES.values():
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except FastcoderError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
