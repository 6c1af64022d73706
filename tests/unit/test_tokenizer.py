"""fastcoder.tokenizer on a tiny hand-built byte-level vocabulary (no model file)."""
from __future__ import annotations

import pytest

from fastcoder.errors import FastcoderError, ModelFileError
from fastcoder.tokenizer import (FimNotSupportedError, FimTokens, IncrementalDecoder, Tokenizer, TokenType,
                                 UnsupportedTokenizerError)
from fastcoder.tokenizer.byte_level import bytes_to_unicode

BYTE_CHARS = [bytes_to_unicode()[b] for b in range(256)]          # id = byte value
MERGES = ["h e", "l l", "he ll", "hell o", "Ġ w", "Ġw o"]
MERGED = ["he", "ll", "hell", "hello", "Ġw", "Ġwo"]                # ids 256..261
SPECIAL = [("<|endoftext|>", TokenType.CONTROL), ("<|im_start|>", TokenType.CONTROL),
           ("<|im_end|>", TokenType.CONTROL), ("<|fim_prefix|>", TokenType.CONTROL),
           ("<|fim_suffix|>", TokenType.CONTROL), ("<|fim_middle|>", TokenType.CONTROL),
           ("<|fim_pad|>", TokenType.CONTROL), ("<tool_call>", TokenType.USER_DEFINED)]


def tiny_metadata(**overrides) -> dict:
    tokens = BYTE_CHARS + MERGED + [text for text, _ in SPECIAL]
    types = [TokenType.NORMAL] * (256 + len(MERGED)) + [kind for _, kind in SPECIAL]
    metadata = {
        "tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "qwen2",
        "tokenizer.ggml.tokens": tokens, "tokenizer.ggml.token_type": [int(t) for t in types],
        "tokenizer.ggml.merges": MERGES,
        "tokenizer.ggml.bos_token_id": tokens.index("<|endoftext|>"),
        "tokenizer.ggml.eos_token_id": tokens.index("<|im_end|>"),
        "tokenizer.ggml.add_bos_token": False,
    }
    metadata.update(overrides)
    return {k: v for k, v in metadata.items() if v is not None}


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return Tokenizer.from_metadata(tiny_metadata())


def ids_of(tok: Tokenizer, *texts: str) -> list[int]:
    return [tok.token_to_id(t) for t in texts]


def test_merges_and_pretokenizer(tok):
    assert tok.encode("hello world") == ids_of(tok, "hello", "Ġwo", "r", "l", "d")
    assert tok.encode("12") == [ord("1"), ord("2")]              # qwen2 splits digits one by one
    assert tok.vocab_size == 256 + len(MERGED) + len(SPECIAL)


def test_special_tokens_matched_whole(tok):
    assert tok.encode("<|im_start|>hello<|im_end|>") == ids_of(tok, "<|im_start|>", "hello", "<|im_end|>")
    assert tok.encode("<tool_call>") == ids_of(tok, "<tool_call>")
    ids = tok.encode("<|im_start|>hello<tool_call><|im_end|>")
    assert tok.decode(ids) == "<|im_start|>hello<tool_call><|im_end|>"
    assert tok.decode(ids, skip_special_tokens=True) == "hello<tool_call>"   # user-defined is kept


def test_unicode_round_trip_through_byte_tokens(tok):
    text = "naïve 🎉 \t\r\n  中文"
    ids = tok.encode(text)
    assert len(ids) > len(text)                                   # no merges: one token per byte
    assert tok.decode(ids) == text
    assert tok.token_bytes(tok.encode("🎉")[0]) == b"\xf0"


def test_bos_only_when_the_file_asks(tok):
    assert tok.encode("he")[0] != tok.bos_token_id
    with_bos = Tokenizer.from_metadata(tiny_metadata(**{"tokenizer.ggml.add_bos_token": True}))
    assert with_bos.encode("he") == [with_bos.bos_token_id, with_bos.token_to_id("he")]
    assert with_bos.encode("he", add_special_tokens=False) == [with_bos.token_to_id("he")]


def test_incremental_decoder_never_emits_partial_characters(tok):
    ids = tok.encode("a🎉b")                                      # 'a', 4 emoji bytes, 'b'
    decoder = tok.incremental_decoder()
    deltas = [decoder.push(i) for i in ids]
    assert deltas == ["a", "", "", "", "🎉", "b"]
    assert decoder.finish() == ""


def test_incremental_decoder_truncated_and_invalid_bytes_match_decode(tok):
    ids = tok.encode("x中")[:-1]                                  # 'x' + 2 of the 3 bytes of 中
    decoder = tok.incremental_decoder()
    assert decoder.extend(ids) == "x" and decoder.has_pending
    assert decoder.finish() == "\ufffd" == tok.decode(ids)[1:]
    stray = [0x80, ord("a")]                                      # a lone continuation byte
    decoder = tok.incremental_decoder()
    assert decoder.extend(stray) + decoder.finish() == tok.decode(stray) == "\ufffda"


def test_incremental_decoder_skips_special_tokens(tok):
    ids = tok.encode("<|im_start|>hello<|im_end|>")
    assert tok.incremental_decoder(skip_special_tokens=True).extend(ids) == "hello"
    assert tok.incremental_decoder().extend(ids) == "<|im_start|>hello<|im_end|>"


def test_incremental_decoder_strips_spm_leading_space():
    pieces = {1: b" hi", 2: b" there"}
    decoder = IncrementalDecoder(pieces.__getitem__, strip_leading_space=True)
    assert [decoder.push(1), decoder.push(2)] == ["hi", " there"]


def test_stop_ids_by_text(tok):
    assert tok.stop_token_ids == frozenset(ids_of(tok, "<|im_end|>", "<|endoftext|>", "<|fim_pad|>"))


def test_fim_found_by_token_text(tok):
    assert tok.fim == FimTokens(prefix_id=tok.token_to_id("<|fim_prefix|>"),
                                suffix_id=tok.token_to_id("<|fim_suffix|>"),
                                middle_id=tok.token_to_id("<|fim_middle|>"),
                                pad_id=tok.token_to_id("<|fim_pad|>"))
    assert tok.build_fim_prompt("he", "hello") == ids_of(
        tok, "<|fim_prefix|>", "he", "<|fim_suffix|>", "hello", "<|fim_middle|>")


def test_fim_ids_from_metadata_win():
    tokens = tiny_metadata()["tokenizer.ggml.tokens"]
    a, b, c = tokens.index("he"), tokens.index("ll"), tokens.index("hell")
    tok = Tokenizer.from_metadata(tiny_metadata(**{"tokenizer.ggml.fim_pre_token_id": a,
                                                   "tokenizer.ggml.fim_suf_token_id": b,
                                                   "tokenizer.ggml.fim_mid_token_id": c}))
    assert (tok.fim.prefix_id, tok.fim.suffix_id, tok.fim.middle_id) == (a, b, c)


def test_no_fim_tokens():
    metadata = tiny_metadata()
    tokens = [t if "fim" not in t else f"<unused{i}>" for i, t in enumerate(metadata["tokenizer.ggml.tokens"])]
    tok = Tokenizer.from_metadata({**metadata, "tokenizer.ggml.tokens": tokens})
    assert tok.fim is None
    with pytest.raises(FimNotSupportedError):
        tok.build_fim_prompt("a", "b")


@pytest.mark.parametrize("overrides", [{"tokenizer.ggml.model": "bert"}, {"tokenizer.ggml.pre": "no-such-pre"}])
def test_unsupported_tokenizers_raise_typed_errors(overrides):
    with pytest.raises(UnsupportedTokenizerError) as info:
        Tokenizer.from_metadata(tiny_metadata(**overrides))
    assert isinstance(info.value, FastcoderError) and info.value.http_status == 500


def test_missing_vocabulary_is_a_model_file_error():
    with pytest.raises(ModelFileError):
        Tokenizer.from_metadata({"general.architecture": "qwen2"})
