"""`tokenizer.ggml.pre` -> how text is split into words before BPE. The patterns are the
original `tokenizer.json` regexes, the same ones llama.cpp's llama-vocab.cpp adapts and
transformers' GGUF converter uses. Several patterns apply in sequence, each splitting the
pieces the previous one left ("isolated": matches and the text between them both stay)."""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

from fastcoder.tokenizer.errors import UnsupportedTokenizerError


@dataclass(frozen=True, slots=True)
class PreTokenizerSpec:
    patterns: tuple[str, ...]
    ignore_merges: bool = False        # a word already in the vocab is one token (llama3 style)


GPT2 = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
QWEN2 = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
         r"""|\s*[\r\n]+|\s+(?!\S)|\s+""")
QWEN35 = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}"""
          r"""| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""")
LLAMA3 = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"""
          r"""| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""")

_QWEN2 = PreTokenizerSpec((QWEN2,))
_LLAMA3 = PreTokenizerSpec((LLAMA3,), ignore_merges=True)
_GPT2 = PreTokenizerSpec((GPT2,))
_STARCODER = PreTokenizerSpec((r"\p{N}", GPT2))

PRE_TOKENIZERS: Mapping[str, PreTokenizerSpec] = MappingProxyType({
    "qwen2": _QWEN2, "deepseek-r1-qwen": _QWEN2, "stablelm2": _QWEN2, "hunyuan": _QWEN2, "megrez": _QWEN2,
    "qwen35": PreTokenizerSpec((QWEN35,)),
    "llama3": _LLAMA3, "llama-v3": _LLAMA3, "llama-bpe": _LLAMA3, "falcon3": _LLAMA3, "dbrx": _LLAMA3,
    "smaug-bpe": _LLAMA3, "pixtral": _LLAMA3,
    "gpt2": _GPT2, "gpt-2": _GPT2, "mpt": _GPT2, "olmo": _GPT2, "jais": _GPT2,
    "starcoder": _STARCODER, "refact": _STARCODER, "command-r": _STARCODER, "smollm": _STARCODER,
    "codeshell": _STARCODER, "exaone": _STARCODER, "minerva-7b": _STARCODER,
})


def pre_tokenizer_spec(pre: str | None) -> PreTokenizerSpec:
    """A file without `tokenizer.ggml.pre` predates the key and used GPT-2's split."""
    if pre is None:
        return _GPT2
    spec = PRE_TOKENIZERS.get(pre)
    if spec is None:
        raise UnsupportedTokenizerError(
            f"unknown pre-tokenizer tokenizer.ggml.pre={pre!r}; known: {', '.join(sorted(PRE_TOKENIZERS))}")
    return spec
