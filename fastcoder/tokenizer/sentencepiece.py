"""SentencePiece-style BPE (`tokenizer.ggml.model == "llama"`): Gemma, Llama 2, Mistral...

Spaces are spelled "▁" and bytes missing from the vocabulary fall back to "<0xNN>" tokens. A
GGUF of this kind stores scores but no merges, so the merges are rebuilt from the vocabulary:
every split of a token into two tokens is a merge, ranked by the position of the merged token
(earlier = merged first). That is how transformers' GGUF converter rebuilds Gemma, and on
Gemma 3 it reproduces the merges of the original tokenizer.json."""
from __future__ import annotations

import re

from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers

from fastcoder.tokenizer.backend import BuiltTokenizer
from fastcoder.tokenizer.vocab import GgufVocab, TokenType

SPACE = "\u2581"
_BYTE_TOKEN = re.compile(r"<0x([0-9A-Fa-f]{2})>")


def _respell(token: str) -> str:
    # A run of spaces is stored as real spaces, but the BPE only ever sees "▁" (the normalizer
    # replaced them), so it must be spelled that way to be reachable.
    return SPACE * len(token) if token and not token.strip(" ") else token


def rebuild_merges(tokens: list[str], token_to_id: dict[str, int]) -> list[tuple[str, str]]:
    """Best first: by the merged token's id, then the longer left part first."""
    merges = []
    for token in tokens:
        for i in range(len(token) - 1, 0, -1):
            left, right = token[:i], token[i:]
            if left in token_to_id and right in token_to_id:
                merges.append((left, right))
    return merges


def piece_bytes(piece: str) -> bytes:
    """Token text -> raw bytes, as the ByteFallback + "▁"->" " decoders do it."""
    match = _BYTE_TOKEN.fullmatch(piece)
    if match:
        return bytes((int(match.group(1), 16),))
    return piece.replace(SPACE, " ").encode("utf-8")


def build_sentencepiece(vocab: GgufVocab) -> BuiltTokenizer:
    tokens = [_respell(t) for t in vocab.tokens]
    token_to_id = dict(zip(tokens, range(len(tokens))))
    unk_id = vocab.special_id("unknown")
    backend = Tokenizer(models.BPE(
        vocab=token_to_id, merges=rebuild_merges(tokens, token_to_id), fuse_unk=True, byte_fallback=True,
        unk_token=vocab.tokens[unk_id] if unk_id is not None else None))
    replace = normalizers.Replace(" ", SPACE)
    # llama.cpp prefixes a space to every piece of text that starts the input or follows a
    # special token, and drops it again from the first decoded token.
    backend.normalizer = (normalizers.Sequence([normalizers.Prepend(SPACE), replace])
                          if vocab.add_space_prefix else replace)
    steps = [decoders.Replace(SPACE, " "), decoders.ByteFallback(), decoders.Fuse()]
    if vocab.add_space_prefix:
        steps.append(decoders.Strip(" ", 1, 0))
    backend.decoder = decoders.Sequence(steps)
    # Control tokens are special; user-defined ones (Gemma's "\n\n", "<table>") are matched whole
    # where their text is a vocabulary entry as stored.
    control, user_defined = [], []
    for token, token_type in zip(vocab.tokens, vocab.token_types):
        if token_type == TokenType.CONTROL:
            control.append(AddedToken(token, normalized=False, special=True))
        elif token_type == TokenType.USER_DEFINED and token in token_to_id:
            user_defined.append(AddedToken(token, normalized=False, special=False))
    backend.add_special_tokens(control)
    backend.add_tokens(user_defined)
    return BuiltTokenizer(backend=backend, piece_bytes=piece_bytes, strip_leading_space=vocab.add_space_prefix)
