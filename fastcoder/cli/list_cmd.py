"""`fastcoder list`: catalog models (pulled or not) and other .gguf files in the cache."""
from __future__ import annotations

import argparse
import json

from fastcoder.store.cache import models_dir
from fastcoder.store.listing import ModelInfo, list_models

_COLUMNS = ("NAME", "SIZE", "PULLED", "PATH")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "list",
        help="list catalog models and local .gguf files",
        description=(
            "List the catalog models (whether each is pulled, and where its file is) and any "
            "other .gguf files in the cache models folder ($FASTCODER_HOME/models, default "
            "~/.cache/fastcoder/models). Any of these names, or a path to a .gguf file, can "
            "be given as MODEL to other commands."))
    parser.add_argument(
        "--json", action="store_true",
        help="print a JSON list of objects with keys name, source (catalog|local), "
             "description, size_bytes (null if unknown), pulled, path")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    infos = list_models()
    if args.json:
        print(json.dumps([info.to_json() for info in infos], indent=2))
        return 0
    print(format_table(infos))
    if not any(info.pulled for info in infos):
        print(f"\nno models in {models_dir()} yet: run `fastcoder pull`")
    return 0


def format_table(infos: list[ModelInfo]) -> str:
    rows = [_COLUMNS] + [
        (info.name, format_size(info.size_bytes), "yes" if info.pulled else "no", info.path)
        for info in infos]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS) - 1)]
    lines = ["  ".join([cell.ljust(width) for cell, width in zip(row, widths)] + [row[-1]])
             for row in rows]
    return "\n".join(lines)


def format_size(num_bytes: int | None) -> str:
    """Human-readable binary size ("468.6 MiB"); "?" when unknown."""
    if num_bytes is None:
        return "?"
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    size, unit_index = float(num_bytes), 0
    while size >= 1024 and unit_index < len(units) - 1:
        size /= 1024
        unit_index += 1
    return f"{num_bytes} B" if unit_index == 0 else f"{size:.1f} {units[unit_index]}"
