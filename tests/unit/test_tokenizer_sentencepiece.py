"""The sentencepiece family (`tokenizer.ggml.model == "llama"`) on a tiny vocabulary: merges
rebuilt from token order, byte fallback, and llama.cpp's space prefix (no model file)."""
from __future__ import annotations

import pytest

from fastcoder.tokenizer import Tokenizer, TokenType
from fastcoder.tokenizer.sentencepiece import rebuild_merges

BYTES = [f"<0x{b:02X}>" for b in range(256)]
PIECES = ["▁", "h", "i", "hi", "▁hi", "\n\n"]


def spm_metadata(add_space_prefix: bool) -> dict:
    tokens = ["<unk>", "<s>", "</s>", *BYTES, *PIECES, "  "]
    types = ([TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL] + [TokenType.BYTE] * 256
             + [TokenType.NORMAL] * (len(PIECES) - 1) + [TokenType.USER_DEFINED, TokenType.USER_DEFINED])
    return {"tokenizer.ggml.model": "llama", "tokenizer.ggml.pre": "default", "tokenizer.ggml.tokens": tokens,
            "tokenizer.ggml.token_type": [int(t) for t in types], "tokenizer.ggml.scores": [0.0] * len(tokens),
            "tokenizer.ggml.bos_token_id": 1, "tokenizer.ggml.eos_token_id": 2, "tokenizer.ggml.unknown_token_id": 0,
            "tokenizer.ggml.add_space_prefix": add_space_prefix}


@pytest.fixture(scope="module", params=[False, True], ids=["gemma-style", "llama-style"])
def space_prefix(request) -> bool:
    return request.param


@pytest.fixture(scope="module")
def tok(space_prefix) -> Tokenizer:
    return Tokenizer.from_metadata(spm_metadata(space_prefix))


def test_merges_ranked_by_merged_token_position():
    tokens = ["a", "b", "c", "ab", "bc", "abc"]
    index = {t: i for i, t in enumerate(tokens)}
    assert rebuild_merges(tokens, index) == [("a", "b"), ("b", "c"), ("ab", "c"), ("a", "bc")]


def test_bos_by_default_and_space_prefix(tok, space_prefix):
    assert tok.encode("hi")[0] == tok.bos_token_id == 1            # SPM files add BOS unless they say not to
    expected = "▁hi" if space_prefix else "hi"
    assert tok.encode("hi", add_special_tokens=False) == [tok.token_to_id(expected)]
    # Decoding drops the prefix space only at the very start of the text (after "<s>" it stays).
    assert tok.decode(tok.encode("hi")) == ("<s> hi" if space_prefix else "<s>hi")


def test_llama_style_prefixes_after_special_tokens():
    tok = Tokenizer.from_metadata(spm_metadata(add_space_prefix=True))
    hi, eos = tok.token_to_id("▁hi"), tok.token_to_id("</s>")
    assert tok.encode("hi</s>hi", add_special_tokens=False) == [hi, eos, hi]
    assert tok.decode([hi, eos, hi]) == "hi</s> hi"                   # only the first prefix is dropped
    assert tok.incremental_decoder().extend([hi, eos, hi]) == "hi</s> hi"


def test_byte_fallback_round_trip(tok):
    text = "hi é🎉"
    ids = tok.encode(text, add_special_tokens=False)
    assert tok.token_to_id("<0xC3>") in ids                            # é is not in the vocabulary
    assert tok.decode(ids) == text
    decoder = tok.incremental_decoder()
    assert "".join(decoder.push(i) for i in ids) + decoder.finish() == text


def test_user_defined_tokens_matched_whole(tok):
    ids = tok.encode("\n\nhi", add_special_tokens=False)
    assert ids[0] == tok.token_to_id("\n\n")
    # A stored run of spaces is respelled "▁▁" and reached through the merges instead.
    spaces = tok.token_to_id("▁▁")
    assert spaces == len(spm_metadata(False)["tokenizer.ggml.tokens"]) - 1
    assert tok.encode("hi  ", add_special_tokens=False)[1] == spaces
    assert tok.decode([tok.token_to_id("hi"), spaces]) == "hi  "
