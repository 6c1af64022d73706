"""On the real 0.5B model with the quantized kernels: greedy tokens of 8 requests batched
together equal each request run alone (the kernels are batch-invariant bit for bit)."""
from __future__ import annotations

from fastcoder.engine.linear_backends import linear_factory
from fastcoder.engine.llm_engine import EngineConfig, LLMEngine
from fastcoder.loader.gguf_file import open_gguf
from fastcoder.sampling_params import SamplingParams

PROMPTS = ["def quicksort(arr):", "import numpy as np\n", "class Stack:\n    def",
           "// C function to reverse a string\n", "SELECT name FROM", "#!/bin/bash\n",
           "fn main() {", "def fib(n):\n    \"\"\""]


def test_batched_equals_alone(qwen_path, qwen_llm):
    gguf = open_gguf(qwen_path)
    engine = LLMEngine(gguf, qwen_llm.tokenizer, linear_factory("quant", 2),
                       EngineConfig(max_model_len=256, kv_cache_mb=64))
    params = SamplingParams(temperature=0, max_tokens=16, ignore_eos=True)
    for i, prompt in enumerate(PROMPTS):
        engine.add_request(str(i), qwen_llm.tokenizer.encode(prompt), params)
    batched: dict[str, list[int]] = {str(i): [] for i in range(len(PROMPTS))}
    while engine.has_unfinished_requests():
        for delta in engine.step():
            batched[delta.request_id].extend(delta.new_token_ids)
    for i, prompt in enumerate(PROMPTS):
        alone = list(qwen_llm.generate(prompt, params)[0].outputs[0].token_ids)
        assert batched[str(i)] == alone, (i, prompt)
