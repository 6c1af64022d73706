"""Registry: `tokenizer.ggml.model` -> builder of the `tokenizers` object for that family."""
from __future__ import annotations

from types import MappingProxyType
from typing import Callable, Mapping

from fastcoder.tokenizer.backend import BuiltTokenizer
from fastcoder.tokenizer.byte_level import build_byte_level
from fastcoder.tokenizer.errors import UnsupportedTokenizerError
from fastcoder.tokenizer.sentencepiece import build_sentencepiece
from fastcoder.tokenizer.vocab import GgufVocab

TOKENIZER_FAMILIES: Mapping[str, Callable[[GgufVocab], BuiltTokenizer]] = MappingProxyType({
    "gpt2": build_byte_level,
    "llama": build_sentencepiece,
})


def build_backend(vocab: GgufVocab) -> BuiltTokenizer:
    builder = TOKENIZER_FAMILIES.get(vocab.model)
    if builder is None:
        raise UnsupportedTokenizerError(
            f"tokenizer.ggml.model={vocab.model!r} is not supported; known: {', '.join(sorted(TOKENIZER_FAMILIES))}")
    return builder(vocab)
