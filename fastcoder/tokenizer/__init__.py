"""Tokenizers built from GGUF metadata: byte-level BPE via `tokenizers`, the Jinja chat
template, FIM tokens, stop tokens and streaming detokenization. Families are registered by
`tokenizer.ggml.model` in `families.TOKENIZER_FAMILIES`."""
from fastcoder.tokenizer.chat_template import ChatTemplate
from fastcoder.tokenizer.errors import (ChatTemplateError, FimNotSupportedError, InvalidChatTemplateError,
                                        NoChatTemplateError, UnsupportedTokenizerError)
from fastcoder.tokenizer.fim import FimTokens
from fastcoder.tokenizer.incremental import IncrementalDecoder
from fastcoder.tokenizer.tokenizer import Tokenizer
from fastcoder.tokenizer.vocab import GgufVocab, TokenType

__all__ = [
    "ChatTemplate", "ChatTemplateError", "FimNotSupportedError", "FimTokens", "GgufVocab", "IncrementalDecoder",
    "InvalidChatTemplateError", "NoChatTemplateError", "Tokenizer", "TokenType", "UnsupportedTokenizerError",
]
