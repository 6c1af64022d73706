"""The Python API, in the shape vLLM users know:

    llm = fastcoder.LLM("qwen2.5-coder-0.5b-instruct")
    llm.generate(["def fib(n):"], SamplingParams(temperature=0, max_tokens=64))
    llm.chat([{"role": "user", "content": "Write fizzbuzz"}])
    for delta in llm.stream("def fib(n):"): print(delta.text, end="")
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterator, Sequence

from fastcoder.engine.generation import stream_tokens
from fastcoder.engine.runner import ModelRunner
from fastcoder.engine.speculative import as_config, build_proposer
from fastcoder.engine.threads import set_threads
from fastcoder.engine.linear_backends import KV_DTYPES, linear_factory
from fastcoder.loader.gguf_file import open_gguf
from fastcoder.outputs import CompletionOutput, RequestOutput, StreamDelta
from fastcoder.sampling_params import SamplingParams
from fastcoder.spec.config import SpeculativeConfig
from fastcoder.spec.proposer import SpecCounters, SpecStats
from fastcoder.store.cache import resolve_model_path
from fastcoder.store.catalog import DEFAULT_MODEL
from fastcoder.tokenizer.tokenizer import Tokenizer

DEFAULT_MAX_MODEL_LEN = 8192
Prompt = str | Sequence[int]
Messages = list[dict]


@dataclass(frozen=True, slots=True)
class LoadStats:
    load_s: float
    num_threads: int
    max_model_len: int


class LLM:
    def __init__(self, model: str = DEFAULT_MODEL, *, max_model_len: int | None = None,
                 threads: int | None = None, kernels: str = "quant",
                 speculative: str | SpeculativeConfig | None = None):
        """kernels: "quant" computes on the GGUF blocks with an fp16 KV cache (fast);
        "reference" dequantizes every weight to fp32 once, keeps K/V in fp32 and uses torch
        matmuls (the path checked against transformers).
        speculative: "ngram" (prompt lookup) or "draft:MODEL" (a small model with the same
        tokenizer) drafts tokens that one forward verifies; greedy output is unchanged."""
        started = time.perf_counter()
        self.speculative = as_config(speculative)       # a bad spec fails before the load
        num_threads = set_threads(threads)
        self.model_path = resolve_model_path(model)
        gguf = self.gguf = open_gguf(self.model_path)   # tensors stay memory-mapped views
        self.config = gguf.config
        self.tokenizer = Tokenizer.from_metadata(gguf.metadata)
        max_model_len = min(max_model_len or DEFAULT_MAX_MODEL_LEN, gguf.config.context_length)
        linear = linear_factory(kernels, num_threads)
        # The draft model first: an incompatible one is refused before the target loads.
        self.proposer = build_proposer(self.speculative, gguf, max_model_len, linear)
        self.runner = ModelRunner(gguf, max_model_len, linear, KV_DTYPES[kernels])
        self.spec_counters = SpecCounters()
        self.load_stats = LoadStats(time.perf_counter() - started, num_threads, max_model_len)

    # ---- streaming ------------------------------------------------------------------------
    def stream(self, prompt: Prompt, sampling_params: SamplingParams | None = None
               ) -> Iterator[StreamDelta]:
        """Raw completion (no chat template), one delta per generated token."""
        return self._stream(self._prompt_ids(prompt), sampling_params or SamplingParams())

    def chat_stream(self, messages: Messages, sampling_params: SamplingParams | None = None
                    ) -> Iterator[StreamDelta]:
        return self.stream(self.chat_prompt_ids(messages), sampling_params)

    # ---- batch API --------------------------------------------------------------------------
    def generate(self, prompts: Prompt | Sequence[Prompt],
                 sampling_params: SamplingParams | None = None) -> list[RequestOutput]:
        if isinstance(prompts, str) or (prompts and isinstance(prompts[0], int)):
            prompts = [prompts]
        return [self._complete(p, sampling_params or SamplingParams()) for p in prompts]

    def chat(self, messages: Messages | Sequence[Messages],
             sampling_params: SamplingParams | None = None) -> list[RequestOutput]:
        conversations = [messages] if messages and isinstance(messages[0], dict) else messages
        return [self._complete(self.chat_prompt_ids(c), sampling_params or SamplingParams(),
                               prompt_text=None) for c in conversations]

    # ---- helpers ----------------------------------------------------------------------------
    def chat_prompt_ids(self, messages: Messages) -> list[int]:
        text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True)
        return self.tokenizer.encode(text, add_special_tokens=False)

    @property
    def spec_stats(self) -> SpecStats:
        """Drafted / accepted token totals since load (all zero without speculation)."""
        return self.spec_counters.snapshot()

    def _stream(self, prompt_ids: list[int], params: SamplingParams) -> Iterator[StreamDelta]:
        return stream_tokens(self.runner, self.tokenizer, prompt_ids, params, self.proposer,
                             self.spec_counters)

    def _prompt_ids(self, prompt: Prompt) -> list[int]:
        return self.tokenizer.encode(prompt) if isinstance(prompt, str) else list(prompt)

    def _complete(self, prompt: Prompt, params: SamplingParams,
                  prompt_text: str | None = None) -> RequestOutput:
        prompt_ids = self._prompt_ids(prompt)
        texts, token_ids, finish_reason = [], [], None
        for delta in self._stream(prompt_ids, params):
            texts.append(delta.text)
            if delta.token_id is not None:
                token_ids.append(delta.token_id)
            finish_reason = delta.finish_reason
        completion = CompletionOutput(0, "".join(texts), tuple(token_ids), finish_reason)
        return RequestOutput(prompt if isinstance(prompt, str) else prompt_text,
                             tuple(prompt_ids), (completion,))
