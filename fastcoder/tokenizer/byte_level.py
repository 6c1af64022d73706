"""Byte-level BPE (`tokenizer.ggml.model == "gpt2"`): GPT-2, Qwen, Llama 3, StarCoder...

Every byte is spelled as one printable character (GPT-2's `bytes_to_unicode`), so the GGUF
token texts are already in the BPE's alphabet ("Ġhello" is " hello")."""
from __future__ import annotations

from typing import Callable

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers

from fastcoder.tokenizer.backend import BuiltTokenizer
from fastcoder.tokenizer.pretokenize import pre_tokenizer_spec
from fastcoder.tokenizer.vocab import GgufVocab, TokenType


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table (printable Latin-1 bytes map to themselves)."""
    kept = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    byte_to_char = {b: chr(b) for b in kept}
    shifted = 0
    for b in range(256):
        if b not in byte_to_char:
            byte_to_char[b] = chr(256 + shifted)
            shifted += 1
    return byte_to_char


def make_piece_bytes() -> Callable[[str], bytes]:
    """Token text -> raw bytes, exactly as `tokenizers`' ByteLevel decoder does it: a text made
    only of byte characters is mapped back; anything else (an added token like "<think> ")
    is its own UTF-8."""
    char_to_byte = {c: b for b, c in bytes_to_unicode().items()}

    def piece_bytes(piece: str) -> bytes:
        try:
            return bytes(char_to_byte[c] for c in piece)
        except KeyError:
            return piece.encode("utf-8")

    return piece_bytes


def build_byte_level(vocab: GgufVocab) -> BuiltTokenizer:
    spec = pre_tokenizer_spec(vocab.pre)
    byte_to_char = bytes_to_unicode()
    alphabet = frozenset(byte_to_char.values())
    # A token outside the byte alphabet is stored as raw text (llama.cpp does this for some added
    # tokens); respell it so the BPE sees its bytes. transformers' GGUF converter does the same.
    if alphabet.issuperset("".join(vocab.tokens)):   # the usual case, checked in one pass
        bpe_vocab = dict(zip(vocab.tokens, range(vocab.num_tokens)))
    else:
        bpe_vocab = {token if alphabet.issuperset(token)
                     else "".join(byte_to_char[b] for b in token.encode("utf-8")): token_id
                     for token_id, token in enumerate(vocab.tokens)}
    merges = [tuple(merge.split(" ", 1)) for merge in vocab.merges]
    backend = Tokenizer(models.BPE(vocab=bpe_vocab, merges=merges, fuse_unk=False, byte_fallback=False,
                                   ignore_merges=spec.ignore_merges))
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex(p), behavior="isolated") for p in spec.patterns]
        + [pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    backend.decoder = decoders.ByteLevel()
    # Control tokens are matched whole in text and skipped by skip_special_tokens; user-defined
    # ones are matched whole but kept. A control token outside the byte alphabet is a llama.cpp
    # mislabel that no text could produce; it stays an ordinary (unreachable) vocab entry.
    control, user_defined = [], []
    for token, token_type in zip(vocab.tokens, vocab.token_types):
        if token_type == TokenType.CONTROL and alphabet.issuperset(token):
            control.append(AddedToken(token, normalized=False, special=True))
        elif token_type == TokenType.USER_DEFINED and alphabet.issuperset(token):
            user_defined.append(AddedToken(token, normalized=False, special=False))
    backend.add_special_tokens(control)
    backend.add_tokens(user_defined)
    return BuiltTokenizer(backend=backend, piece_bytes=make_piece_bytes())
