"""Regenerates tests/fixtures/golden_<model>.npz: transformers (fp32, the same GGUF dequantized)
as the reference for fastcoder's model. Run with `make golden` (needs the `reference` extra).

For each prompt the reference greedily generates NUM_NEW tokens; the fixture keeps the prompt
ids, those tokens, and per generated position the reference's top-K log-probs and their ids, so
tests can compute top-1 agreement and KL(reference || fastcoder) without transformers.
Prompts get the special tokens the GGUF asks for (BOS for gemma, none for qwen); the chat prompt
is skipped for a base model without a chat template. For a model with sliding-window layers the
fixture also keeps LONG_PROMPT (longer than the window) and the reference's top-K log-probs at
its last LONG_NUM_LOGITS positions (keys long_prompt, long_top_ids, long_top_logprobs)."""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

NUM_NEW = 128
TOP_K = 64
CODE_PROMPTS = [
    "def quicksort(arr):\n    \"\"\"Sort a list of integers.\"\"\"\n",
    "import json\n\n\ndef load_config(path: str) -> dict:\n",
    "class LRUCache:\n    def __init__(self, capacity: int):\n",
    "// Binary search in a sorted array\nint binary_search(const int *a, int n, int key) {\n",
    "#!/usr/bin/env bash\n# Back up every .py file in the current directory\n",
]
LONG_NUM_LOGITS = 128
CHAT_PROMPT = [{"role": "user", "content": "Write a Python function that checks if a string is a palindrome."}]
# Longer than gemma-3-270m's 512-token window; its end needs definitions from the start.
LONG_PROMPT = '''"""Inventory service: items, stock levels, reservations and a small report."""
from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict


@dataclasses.dataclass
class Item:
    sku: str
    name: str
    price_cents: int
    weight_grams: int = 0
    tags: tuple[str, ...] = ()


@dataclasses.dataclass
class Reservation:
    order_id: str
    sku: str
    quantity: int
    expires_at: dt.datetime


class OutOfStockError(Exception):
    def __init__(self, sku: str, wanted: int, available: int):
        super().__init__(f"{sku}: wanted {wanted}, only {available} available")
        self.sku = sku
        self.wanted = wanted
        self.available = available


class Inventory:
    def __init__(self) -> None:
        self.items: dict[str, Item] = {}
        self.stock: dict[str, int] = defaultdict(int)
        self.reservations: dict[str, list[Reservation]] = defaultdict(list)

    def add_item(self, item: Item, quantity: int = 0) -> None:
        if item.sku in self.items:
            raise ValueError(f"duplicate sku {item.sku}")
        self.items[item.sku] = item
        self.stock[item.sku] += quantity

    def restock(self, sku: str, quantity: int) -> int:
        if quantity <= 0:
            raise ValueError("quantity must be positive")
        self.stock[sku] += quantity
        return self.stock[sku]

    def reserved(self, sku: str, now: dt.datetime) -> int:
        return sum(r.quantity for r in self.reservations[sku] if r.expires_at > now)

    def available(self, sku: str, now: dt.datetime) -> int:
        return self.stock[sku] - self.reserved(sku, now)

    def reserve(self, order_id: str, sku: str, quantity: int, now: dt.datetime,
                ttl: dt.timedelta = dt.timedelta(minutes=15)) -> Reservation:
        available = self.available(sku, now)
        if quantity > available:
            raise OutOfStockError(sku, quantity, available)
        reservation = Reservation(order_id, sku, quantity, now + ttl)
        self.reservations[sku].append(reservation)
        return reservation

    def commit(self, order_id: str, now: dt.datetime) -> list[tuple[str, int]]:
        shipped = []
        for sku, reservations in self.reservations.items():
            for r in reservations:
                if r.order_id == order_id and r.expires_at > now:
                    self.stock[sku] -= r.quantity
                    shipped.append((sku, r.quantity))
        self.reservations = {sku: [r for r in rs if r.order_id != order_id]
                             for sku, rs in self.reservations.items()}
        return shipped

    def total_value_cents(self) -> int:
        return sum(self.items[sku].price_cents * count for sku, count in self.stock.items())

    def low_stock(self, threshold: int, now: dt.datetime) -> list[str]:
        return sorted(sku for sku in self.items if self.available(sku, now) < threshold)


def test_reserve_and_commit():
    now = dt.datetime(2024, 1, 1, 12, 0)
    inventory = Inventory()
    inventory.add_item(Item("A-1", "Widget", 250, weight_grams=120, tags=("tools",)), 10)
    inventory.add_item(Item("B-2", "Gadget", 1200, weight_grams=800, tags=("tools", "gifts")), 3)
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--path", default=None, help="GGUF path (default: the pulled model)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if args.path:
        gguf_path = Path(args.path)
    else:
        from fastcoder.store.cache import resolve_model_path
        gguf_path = resolve_model_path(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        link = Path(tmp) / gguf_path.name
        link.symlink_to(gguf_path)
        tokenizer = AutoTokenizer.from_pretrained(tmp, gguf_file=link.name)
        model = AutoModelForCausalLM.from_pretrained(tmp, gguf_file=link.name,
                                                     dtype=torch.float32)
    model.eval()
    prompts = [tokenizer(p).input_ids for p in CODE_PROMPTS]
    if tokenizer.chat_template:
        chat_text = tokenizer.apply_chat_template(CHAT_PROMPT, tokenize=False,
                                                  add_generation_prompt=True)
        prompts.append(tokenizer(chat_text, add_special_tokens=False).input_ids)
    record: dict[str, np.ndarray] = {}
    for i, prompt_ids in enumerate(prompts):
        with torch.no_grad():
            out = model.generate(torch.tensor([prompt_ids]), max_new_tokens=NUM_NEW,
                                 do_sample=False, min_new_tokens=NUM_NEW)
            full = out[0]
            logits = model(full[None, :-1]).logits[0, len(prompt_ids) - 1:].float()
        logprobs = torch.log_softmax(logits, dim=-1)                 # [NUM_NEW, vocab]
        top = torch.topk(logprobs, TOP_K, dim=-1)
        record[f"prompt_{i}"] = np.array(prompt_ids, dtype=np.int64)
        record[f"generated_{i}"] = full[len(prompt_ids):].numpy().astype(np.int64)
        record[f"top_ids_{i}"] = top.indices.numpy().astype(np.int32)
        record[f"top_logprobs_{i}"] = top.values.numpy().astype(np.float32)
        print(f"prompt {i}: {len(prompt_ids)} prompt tokens, continuation "
              f"{tokenizer.decode(full[len(prompt_ids):len(prompt_ids) + 24])!r}")
    meta_extra = {}
    if "sliding_attention" in (getattr(model.config, "layer_types", None) or []):
        meta_extra = record_long_context(model, tokenizer, record)
    out_path = Path(args.out or f"tests/fixtures/golden_{args.model}.npz")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    import transformers
    record["meta"] = np.array(json.dumps({
        "command": f"python scripts/make_golden.py --model {args.model}",
        "reference": f"transformers {transformers.__version__}, torch {torch.__version__}, fp32",
        "num_new": NUM_NEW, "top_k": TOP_K, "gguf_sha256_file": gguf_path.name, **meta_extra}))
    np.savez_compressed(out_path, **record)
    print(f"wrote {out_path} ({out_path.stat().st_size} bytes)")


def record_long_context(model, tokenizer, record: dict[str, np.ndarray]) -> dict:
    """Teacher-forced reference log-probs at the last LONG_NUM_LOGITS positions of LONG_PROMPT,
    all past the sliding window, so local layers must drop the keys that left it."""
    prompt_ids = tokenizer(LONG_PROMPT).input_ids
    window = model.config.sliding_window
    if len(prompt_ids) < window + LONG_NUM_LOGITS:
        raise SystemExit(f"LONG_PROMPT has {len(prompt_ids)} tokens; needs {window} + "
                         f"{LONG_NUM_LOGITS} to put every compared position past the window")
    with torch.no_grad():
        logits = model(torch.tensor([prompt_ids]), logits_to_keep=LONG_NUM_LOGITS).logits[0]
    logprobs = torch.log_softmax(logits.float(), dim=-1)           # [LONG_NUM_LOGITS, vocab]
    top = torch.topk(logprobs, TOP_K, dim=-1)
    record["long_prompt"] = np.array(prompt_ids, dtype=np.int64)
    record["long_top_ids"] = top.indices.numpy().astype(np.int32)
    record["long_top_logprobs"] = top.values.numpy().astype(np.float32)
    print(f"long prompt: {len(prompt_ids)} tokens (window {window}), "
          f"log-probs at the last {LONG_NUM_LOGITS} positions")
    return {"long_num_logits": LONG_NUM_LOGITS, "sliding_window": window}


if __name__ == "__main__":
    main()
