"""What a tokenizer family builds from a GGUF vocabulary, and the registry keyed by
`tokenizer.ggml.model`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import tokenizers


@dataclass(frozen=True, slots=True)
class BuiltTokenizer:
    backend: tokenizers.Tokenizer          # encodes without adding BOS/EOS; Tokenizer adds them
    piece_bytes: Callable[[str], bytes]    # one token's text (as the backend spells it) -> raw bytes
    # SentencePiece drops the space it prefixed to the text from the first decoded token.
    strip_leading_space: bool = False
