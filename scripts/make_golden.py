"""Regenerates tests/fixtures/golden_<model>.npz: transformers (fp32, the same GGUF dequantized)
as the reference for fastcoder's model. Run with `make golden` (needs the `reference` extra).

For each prompt the reference greedily generates NUM_NEW tokens; the fixture keeps the prompt
ids, those tokens, and per generated position the reference's top-K log-probs and their ids, so
tests can compute top-1 agreement and KL(reference || fastcoder) without transformers."""
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
CHAT_PROMPT = [{"role": "user", "content": "Write a Python function that checks if a string is a palindrome."}]


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
    prompts = [tokenizer(p, add_special_tokens=False).input_ids for p in CODE_PROMPTS]
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
    out_path = Path(args.out or f"tests/fixtures/golden_{args.model}.npz")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    import transformers
    record["meta"] = np.array(json.dumps({
        "command": f"python scripts/make_golden.py --model {args.model}",
        "reference": f"transformers {transformers.__version__}, torch {torch.__version__}, fp32",
        "num_new": NUM_NEW, "top_k": TOP_K, "gguf_sha256_file": gguf_path.name}))
    np.savez_compressed(out_path, **record)
    print(f"wrote {out_path} ({out_path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
