"""fastcoder.tokenizer on real GGUF vocabularies (Qwen2.5-Coder byte-level BPE, Gemma 3
sentencepiece), against transformers' ids and chat renderings recorded in
tests/fixtures/tokenizer_<architecture>.json by scripts/make_tokenizer_golden.py (this test does
not need transformers)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from fastcoder.loader.metadata import read_metadata
from fastcoder.tokenizer import GgufVocab, NoChatTemplateError, Tokenizer
from tests.conftest import FIXTURES, model_path

# fixture architecture -> catalog model; both must be pulled (Gemma is the sentencepiece case).
MODELS = {"qwen2": "qwen2.5-coder-0.5b-instruct", "gemma3": "gemma-3-270m"}


class Case:
    """One model: its metadata, tokenizer and golden fixture."""

    def __init__(self, arch: str):
        self.arch = arch
        self.metadata = read_metadata(model_path(MODELS[arch]))
        self.tok = Tokenizer.from_metadata(self.metadata)
        self.golden = json.loads((FIXTURES / f"tokenizer_{arch}.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module", params=sorted(MODELS))
def case(request) -> Case:
    return Case(request.param)


@pytest.fixture(scope="module")
def qwen() -> Case:
    return Case("qwen2")


@pytest.fixture(scope="module")
def gemma() -> Case:
    return Case("gemma3")


def _first_diff(a: list[int], b: list[int]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def test_fixture_is_for_this_vocabulary(case):
    golden = case.golden
    assert len(golden["entries"]) >= 300
    assert GgufVocab.from_metadata(case.metadata).fingerprint == golden["vocab_fingerprint"], (
        f"tokenizer_{case.arch}.json was made from another vocabulary ({golden['gguf_file']}); "
        f"regenerate it: {golden['command']}")


def test_ids_match_transformers(case):
    failures = []
    for n, entry in enumerate(case.golden["entries"]):
        got = case.tok.encode(entry["text"])
        if got != entry["ids"]:
            i = _first_diff(got, entry["ids"])
            failures.append(f"entry {n} ({entry['category']}) {entry['text'][:60]!r}: first diff at token {i}: "
                            f"got {got[i:i + 5]} expected {entry['ids'][i:i + 5]}")
    assert not failures, f"{len(failures)} mismatches:\n" + "\n".join(failures[:10])


def test_encode_batch_matches_encode(case):
    entries = case.golden["entries"]
    assert case.tok.encode_batch([e["text"] for e in entries]) == [e["ids"] for e in entries]


def test_decode_round_trips(case):
    tok = case.tok
    bad = [e["text"][:60] for e in case.golden["entries"]
           if tok.decode(tok.encode(e["text"], add_special_tokens=False)) != e["text"]]
    assert not bad, f"{len(bad)} texts do not round-trip, e.g. {bad[:3]!r}"


def test_decode_skip_special_matches_transformers(case):
    entries = [e for e in case.golden["entries"] if "decode_skip_special" in e]
    assert entries
    for entry in entries:
        assert case.tok.decode(entry["ids"], skip_special_tokens=True) == entry["decode_skip_special"], \
            entry["text"]


def test_special_tokens_are_single_ids(qwen):
    tok = qwen.tok
    assert tok.encode("<|im_start|>user\nhi<|im_end|>") == [151644, 872, 198, 6023, 151645]
    assert tok.encode("<tool_call>") == [tok.token_to_id("<tool_call>")]   # user-defined: whole too
    assert tok.decode([151644, 872], skip_special_tokens=True) == "user"
    assert tok.decode([tok.token_to_id("<tool_call>")], skip_special_tokens=True) == "<tool_call>"


def test_incremental_decoder_equals_decode(case):
    tok = case.tok
    for entry in case.golden["entries"]:
        decoder = tok.incremental_decoder()
        deltas = [decoder.push(i) for i in entry["ids"]]
        assert "".join(deltas) + decoder.finish() == tok.decode(entry["ids"]), entry["text"][:60]
        assert not any("\ufffd" in d for d in deltas) or "\ufffd" in entry["text"]


def test_incremental_decoder_holds_back_split_emoji(qwen):
    tok = qwen.tok
    for text in ("🫠", "𠀀"):                       # each spans several byte-level tokens
        ids = tok.encode(text)
        assert len(ids) > 1
        decoder = tok.incremental_decoder()
        deltas = [decoder.push(i) for i in ids]
        assert deltas == [""] * (len(ids) - 1) + [text]
    ids = tok.encode("ok 🫠")
    decoder = tok.incremental_decoder()
    deltas = [decoder.push(i) for i in ids[:-1]]
    assert "".join(deltas) == "ok " and decoder.has_pending
    assert decoder.finish() == "\ufffd"                # stream ended mid-character, like decode()
    assert tok.decode(ids[:-1]) == "ok \ufffd"


def test_chat_template_matches_transformers(qwen):
    tok = qwen.tok
    assert qwen.golden["chats"]
    for chat in qwen.golden["chats"]:
        kwargs = {"tools": chat["tools"]} if "tools" in chat else {}
        rendered = tok.apply_chat_template(chat["messages"], add_generation_prompt=chat["add_generation_prompt"],
                                           **kwargs)
        assert rendered == chat["rendered"]
        assert tok.encode(rendered, add_special_tokens=False) == chat["ids"]


def test_fim_prompt(qwen):
    tok, golden = qwen.tok, qwen.golden
    assert tok.fim is not None
    assert (tok.fim.prefix_id, tok.fim.suffix_id, tok.fim.middle_id) == tuple(
        tok.token_to_id(t) for t in ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"))
    for case in golden["fim"]:
        assert tok.build_fim_prompt(case["prefix"], case["suffix"]) == case["ids"]


def test_stop_ids_follow_llama_cpp(qwen):
    tok = qwen.tok
    # llama.cpp's end-of-generation set for this vocabulary: eos, the EOT-looking texts, and the
    # FIM pad / repo / file-separator tokens.
    expected = {tok.token_to_id(t) for t in ("<|im_end|>", "<|endoftext|>", "<|fim_pad|>", "<|repo_name|>",
                                             "<|file_sep|>")}
    assert tok.stop_token_ids == frozenset(expected)
    assert tok.eos_token_id == 151645 and tok.eos_token_id in tok.stop_token_ids
    assert tok.bos_token_id == 151643 and not tok.add_bos_token
    assert tok.vocab_size == 151936



def test_gemma_sentencepiece_specifics(gemma):
    tok = gemma.tok
    assert tok.add_bos_token and tok.encode("hi")[0] == tok.bos_token_id == tok.token_to_id("<bos>")
    assert tok.stop_token_ids == frozenset({tok.token_to_id("<eos>"), tok.token_to_id("<end_of_turn>")})
    assert tok.fim is None                                   # Gemma 3 270M has no FIM tokens
    assert tok.encode("\n\n\n", add_special_tokens=False) == [tok.token_to_id("\n\n\n")]
    ids = tok.encode("  x", add_special_tokens=False)        # a run of spaces is one "▁▁" token
    assert tok.decode(ids) == "  x" and len(ids) == 2
    with pytest.raises(NoChatTemplateError):                 # the base model ships no template
        tok.apply_chat_template([{"role": "user", "content": "hi"}])


def test_gemma_incremental_decoder_byte_fallback(gemma):
    tok = gemma.tok
    text = "rare: \U0001F9CC"                                 # not in the vocabulary: four <0x..> tokens
    ids = tok.encode(text, add_special_tokens=False)
    assert sum(1 for i in ids if tok.id_to_token(i).startswith("<0x")) == 4
    decoder = tok.incremental_decoder()
    deltas = [decoder.push(i) for i in ids]
    assert deltas[-4:] == ["", "", "", "\U0001F9CC"] and "".join(deltas) == text
